// Linking devices (docs/E2EE.md, "Linking a device"). `Linking`: a new browser of an account
// that has devices shows its 16-digit link code and waits until a signed-in device approves
// it — or, behind a warning, starts a new identity. `LinkDevices` (on the Account page): the
// requests of new devices, each approved only when the user types the code its screen shows.

import { useEffect, useRef, useState } from "preact/hooks";
import { Client, digitsOf, type LinkRequest, type PendingLink } from "../core/index.js";
import { attempt, cancelLink, currentClient, describe, linked, liveSocket, maybeClient, requestLink, startNewIdentity } from "./store.js";

/** `digits` in groups of four, as both screens show a link code. */
export function grouped(digits: string): string {
  return (digits.match(/.{1,4}/g) ?? []).join(" ");
}

type Status = "asking" | "waiting" | "approved" | "failed";

/** The screen of a new device that must be linked. */
export function Linking() {
  const [pending, setPending] = useState<PendingLink | undefined>(undefined);
  const [status, setStatus] = useState<Status>("asking");
  const [problem, setProblem] = useState("");
  const [round, setRound] = useState(0);
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const waiting = useRef<AbortController | undefined>(undefined);
  const trigger = useRef<HTMLButtonElement>(null);
  const keepLinking = useRef<HTMLButtonElement>(null);
  /** Focus goes back to the trigger when the warning closes (not when the screen leaves). */
  const refocus = useRef(false);

  useEffect(() => {
    const stop = new AbortController();
    waiting.current = stop;
    setStatus("asking");
    setPending(undefined);
    // A function, not the property: it changes across the awaits below.
    const stopped = () => stop.signal.aborted;
    void (async () => {
      try {
        const request = await requestLink();
        if (request instanceof Client) {
          // An earlier approval saved this device before its set-up failed: finish it.
          if (!stopped()) await linked(request, true);
          return;
        }
        if (stopped()) {
          await request.cancel();
          return;
        }
        setPending(request);
        setStatus("waiting");
        let unfinished = false;
        const client = await request.wait({
          signal: stop.signal,
          intervalMs: 1500,
          onApproved: () => { setStatus("approved"); },
          onSetupFailed: () => { unfinished = true; },
        });
        // Cancelled while the approval was being set up: the device is linked (logging in
        // again opens it), but the user asked to leave this screen.
        if (stopped()) return;
        await linked(client, unfinished);
      } catch (e) {
        if (stopped()) return;
        setProblem(describe(e).message);
        setStatus("failed");
      }
    })();
    return () => { stop.abort(); };
  }, [round]);

  useEffect(() => {
    if (confirming) keepLinking.current?.focus();
    else if (refocus.current) trigger.current?.focus();
    refocus.current = false;
  }, [confirming]);
  const closeWarning = () => {
    refocus.current = true;
    setConfirming(false);
  };

  // Both stop the wait first, so that the withdrawn request is not reported as expired.
  const cancel = () => {
    waiting.current?.abort();
    void pending?.cancel().catch(() => undefined);
    cancelLink();
  };
  const newIdentity = async () => {
    setBusy(true);
    waiting.current?.abort();
    // Waits out a look under way; if it brought an approval, this device is linked, and the
    // login below opens it rather than making a new identity.
    await pending?.cancel().catch(() => undefined);
    if (!(await attempt(startNewIdentity))) {
      setProblem("No new identity was started, and the link request was withdrawn.");
      setStatus("failed");
      closeWarning();
    }
    setBusy(false);
  };

  return (
    <main class="auth" aria-label="Link this device">
      <h1>Link this device</h1>
      <p>
        This account already has devices. Your conversations are encrypted for them only, so this browser has to be linked
        to your identity from a device that is signed in.
      </p>
      <ol class="small">
        <li>On a signed-in device, open <strong>Account → Link a device</strong> (or run <code>securevox-cli link approve</code>).</li>
        <li>Type the code below there, and approve.</li>
      </ol>
      <div class="card safety center">
        <div role="group" aria-labelledby="link-code-label">
          <div id="link-code-label" class="muted small">
            Link code
          </div>
          <p class="digits" data-code={pending?.code}>
            {pending === undefined ? "…" : grouped(pending.code)}
          </p>
        </div>
        <p role="status" class="small">
          {status === "asking" && "Asking the server…"}
          {status === "waiting" && "Waiting for approval on your other device…"}
          {status === "approved" && "Approved: setting up this device…"}
          {status === "failed" && <span class="warning">{problem}</span>}
        </p>
      </div>
      <div class="row">
        <button type="button" onClick={cancel} disabled={status === "approved"}>
          Cancel
        </button>
        {status === "failed" && (
          <button type="button" class="primary" onClick={() => { setRound((r) => r + 1); }}>
            Ask again
          </button>
        )}
      </div>
      <p class="small">
        Lost your other devices?{" "}
        <button ref={trigger} type="button" class="link" onClick={() => { setConfirming(true); }} disabled={confirming}>
          Start a new identity instead
        </button>
      </p>
      {confirming && (
        <div
          class="card"
          role="alertdialog"
          aria-label="Start a new identity"
          aria-describedby="new-identity-warning"
          onKeyDown={(e) => {
            if (e.key === "Escape" && !busy) closeWarning();
          }}
        >
          <p id="new-identity-warning" class="warning">
            <strong>Only if you lost your other devices.</strong> A new identity replaces your identity key: your other
            devices are signed out of chat, this browser cannot read your past conversations, and your contacts see a new
            safety number.
          </p>
          <div class="row">
            {/* aria-disabled, not disabled: the focus stays in the dialog while the login runs. */}
            <button ref={keepLinking} type="button" aria-disabled={busy} onClick={() => { if (!busy) closeWarning(); }}>
              Keep linking
            </button>
            <button type="button" class="danger" aria-disabled={busy} onClick={() => { if (!busy) void newIdentity(); }}>
              Start a new identity
            </button>
          </div>
        </div>
      )}
    </main>
  );
}

/** New devices asking to be linked, on the Account page; `onLinked` after an approval. */
export function LinkDevices({ onLinked }: { onLinked: () => void }) {
  const [requests, setRequests] = useState<LinkRequest[]>([]);
  const [typed, setTyped] = useState<ReadonlyMap<string, string>>(new Map());
  const [refusals, setRefusals] = useState<ReadonlyMap<string, string>>(new Map());
  const [done, setDone] = useState("");
  /** Requests being approved: a second submit (a double Enter) must not try again. */
  const [approving, setApproving] = useState<ReadonlySet<string>>(new Set());
  const inFlight = useRef(new Set<string>());
  const socket = liveSocket.value;

  // Polled (a missed hint costs at most a few seconds), and refreshed on the socket's hints;
  // a failed poll is not worth a banner.
  const refresh = () => maybeClient()?.linkRequests().then(setRequests, () => undefined);
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), 4000);
    const events = ["device_link_request", "device_link_approved", "device_link_rejected"];
    const hint = () => void refresh();
    for (const event of events) socket?.on(event, hint);
    return () => {
      clearInterval(timer);
      for (const event of events) socket?.off(event, hint);
    };
  }, [socket]);

  const refuse = (id: string, message: string) => { setRefusals(new Map(refusals).set(id, message)); };
  const approve = async (request: LinkRequest) => {
    if (inFlight.current.has(request.id)) return;
    const code = digitsOf(typed.get(request.id) ?? "");
    if (code !== request.code) {
      refuse(
        request.id,
        code.length !== 16
          ? "Type all 16 digits the new device shows."
          : "This code does not match the request: check the code on the new device. Approve only the device you are linking.",
      );
      return;
    }
    inFlight.current.add(request.id);
    setApproving(new Set(inFlight.current));
    refuse(request.id, "");
    try {
      const ok = await attempt(() => currentClient().approveLink(code, request.id));
      if (ok) {
        setTyped((t) => {
          const next = new Map(t);
          next.delete(request.id);
          return next;
        });
        setDone(`Linked ${request.name ?? "the new device"}. It joins your conversations now.`);
        onLinked();
      }
      await refresh();
    } finally {
      inFlight.current.delete(request.id);
      setApproving(new Set(inFlight.current));
    }
  };
  const reject = async (request: LinkRequest) => {
    await attempt(() => currentClient().rejectLink(request.id));
    await refresh();
  };

  return (
    <section aria-label="Link a device">
      <h2>Link a device</h2>
      <p class="muted small">
        Log in on the new device: it shows a 16-digit code. Type that code here to give it your identity. Never approve a
        request you did not make yourself.
      </p>
      {done !== "" && <p role="status" class="small">{done}</p>}
      {requests.length === 0 && <p class="muted small">No device is waiting.</p>}
      <ul class="list" aria-label="Link requests">
        {requests.map((r) => {
          const name = r.name ?? "unnamed device";
          const refusal = refusals.get(r.id) ?? "";
          return (
            <li key={r.id} class="item link-request" data-id={r.id}>
              <span class="grow">
                {name}
                <br />
                <span class="muted small">asked {new Date(r.createdAt).toLocaleTimeString([], { timeStyle: "short" })}</span>
              </span>
              <form style={{ flexBasis: "100%" }} onSubmit={(e) => { e.preventDefault(); void approve(r); }} aria-label={`Approve ${name}`}>
                <label class="small">
                  Code shown on the new device
                  <input
                    class="digits"
                    inputMode="numeric"
                    autocomplete="off"
                    placeholder="0000 0000 0000 0000"
                    value={typed.get(r.id) ?? ""}
                    onInput={(e) => { setTyped(new Map(typed).set(r.id, e.currentTarget.value)); }}
                  />
                </label>
                {refusal !== "" && (
                  <p role="alert" class="warning small">
                    {refusal}
                  </p>
                )}
                <div class="row">
                  <button type="submit" class="primary" disabled={approving.has(r.id)}>
                    Approve
                  </button>
                  <button type="button" class="danger" onClick={() => void reject(r)}>
                    Reject
                  </button>
                </div>
              </form>
            </li>
          );
        })}
      </ul>
    </section>
  );
}
