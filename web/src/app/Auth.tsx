// Register (with an invite code) or log in. (A new device of an account that already has
// devices is linked on the screen of Linking.tsx.)

import { useState } from "preact/hooks";
import { attempt, forgetDevice, knownUser, login, register } from "./store.js";

export function Auth() {
  const params = new URLSearchParams(location.search);
  const invited = params.get("invite") ?? "";
  const [mode, setMode] = useState<"login" | "register">(invited !== "" || location.pathname.startsWith("/register") ? "register" : "login");
  const [username, setUsername] = useState(knownUser.value ?? "");
  const [password, setPassword] = useState("");
  const [invite, setInvite] = useState(invited);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const ok = await attempt(() => (mode === "login" ? login(username.trim(), password) : register(username.trim(), password, invite.trim())));
    setBusy(false);
    if (ok && location.pathname !== "/") history.replaceState(null, "", "/");
  };

  return (
    <main class="auth">
      <h1>SecureVox</h1>
      <p class="muted">End-to-end encrypted chat.</p>
      <div class="tabs" role="tablist">
        <button type="button" role="tab" aria-selected={mode === "login"} onClick={() => { setMode("login"); }}>
          Log in
        </button>
        <button type="button" role="tab" aria-selected={mode === "register"} onClick={() => { setMode("register"); }}>
          Register
        </button>
      </div>
      <form onSubmit={(e) => void submit(e)} aria-label={mode === "login" ? "Log in" : "Register"}>
        <label>
          Username
          <input name="username" autocomplete="username" required minLength={2} value={username} onInput={(e) => { setUsername(e.currentTarget.value); }} />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === "login" ? "current-password" : "new-password"}
            required
            minLength={8}
            value={password}
            onInput={(e) => { setPassword(e.currentTarget.value); }}
          />
        </label>
        {mode === "register" && (
          <label>
            Invite code <span class="muted">(not needed for the first account)</span>
            <input name="invite" value={invite} onInput={(e) => { setInvite(e.currentTarget.value); }} />
          </label>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Please wait…" : mode === "login" ? "Log in" : "Create account"}
        </button>
      </form>
      {knownUser.value !== undefined && (
        <p class="muted small">
          This browser keeps the keys of <strong>{knownUser.value}</strong>.{" "}
          <button
            type="button"
            class="link"
            onClick={() => {
              if (confirm("Delete this browser's SecureVox keys and history? Its conversations cannot be read here again.")) void attempt(forgetDevice);
            }}
          >
            Forget them
          </button>
        </p>
      )}
    </main>
  );
}
