// The app's frame: the error banner and connection state, then the screen for the phase —
// login/register, "link this device", or the chat (conversations, contacts, one conversation).

import { useEffect, useState } from "preact/hooks";
import { Account } from "./Account.js";
import { Admin, useIsAdmin } from "./Admin.js";
import { Auth } from "./Auth.js";
import { CallHistory, CallOverlay } from "./Calls.js";
import { Contacts } from "./Contacts.js";
import { ConversationView } from "./ConversationView.js";
import { Conversations } from "./Conversations.js";
import { Linking } from "./Linking.js";
import { acknowledge, attempt, banner, connection, init, logout, me, phase, selected, totalUnread } from "./store.js";

export function App() {
  useEffect(() => {
    void init();
  }, []);
  return (
    <>
      <Banner />
      {phase.value === "loading" && <main class="auth muted">Opening SecureVox…</main>}
      {phase.value === "auth" && <Auth />}
      {phase.value === "link" && <Linking />}
      {phase.value === "app" && <Chat />}
    </>
  );
}

function Banner() {
  const b = banner.value;
  if (b === undefined) return null;
  return (
    <div class="banner error" role="alert">
      <span class="grow">
        <strong>{b.code}</strong>: {b.message}
      </span>
      <button type="button" class="ghost" onClick={() => { banner.value = undefined; }} aria-label="Dismiss">
        ✕
      </button>
    </div>
  );
}

function ConnectionState() {
  const state = connection.value;
  if (state === "connected") return <span class="conn ok" title="live">● live</span>;
  const text = state === "offline" ? "offline" : state === "connecting" ? "connecting…" : "reconnecting…";
  return (
    <span class="conn warn" role="status">
      ● {text}
    </span>
  );
}

type Tab = "chats" | "contacts" | "calls" | "account" | "admin";
/** The sections, in order: id, label, for admins only. */
const TABS: readonly (readonly [Tab, string, boolean])[] = [
  ["chats", "Chats", false],
  ["contacts", "Contacts", false],
  ["calls", "Calls", false],
  ["account", "Account", false],
  ["admin", "Admin", true],
];

function Chat() {
  const [tab, setTab] = useState<Tab>("chats");
  const open = selected.value;
  const admin = useIsAdmin();
  const wide = tab === "admin" || open !== undefined;
  // Opening a conversation leaves the admin pages.
  useEffect(() => {
    if (open !== undefined) setTab((t) => (t === "admin" ? "chats" : t));
  }, [open]);
  // The tab's title counts what is unread.
  const unread = totalUnread();
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) SecureVox` : "SecureVox";
  }, [unread]);
  // Coming back to the tab reads what arrived meanwhile.
  useEffect(() => {
    const seen = () => {
      if (document.visibilityState === "visible" && selected.value !== undefined) void acknowledge(selected.value);
    };
    document.addEventListener("visibilitychange", seen);
    return () => { document.removeEventListener("visibilitychange", seen); };
  }, []);
  return (
    <div class={`layout ${wide ? "has-chat" : ""}`}>
      <header class="top row">
        <h1 class="grow">SecureVox</h1>
        <ConnectionState />
        <span class="me" data-username={me.value?.username}>
          {me.value?.username}
        </span>
        <button type="button" onClick={() => void attempt(() => logout())}>
          Log out
        </button>
      </header>
      <aside class="side">
        <nav class="tabs" aria-label="Sections">
          {TABS.filter(([, , adminOnly]) => admin || !adminOnly).map(([id, label]) => (
            <button type="button" key={id} aria-pressed={tab === id} onClick={() => { setTab(id); }}>
              {label}
            </button>
          ))}
        </nav>
        {tab === "chats" || tab === "admin" ? <Conversations /> : tab === "contacts" ? <Contacts /> : tab === "calls" ? <CallHistory /> : <Account />}
      </aside>
      <CallOverlay />
      <div class="main">
        {tab === "admin" ? (
          <Admin onClose={() => { setTab("chats"); }} />
        ) : open === undefined ? (
          <p class="muted center empty">Choose a conversation, or start one with a contact.</p>
        ) : (
          <ConversationView id={open} />
        )}
      </div>
    </div>
  );
}
