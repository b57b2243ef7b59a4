// The conversations list (unread counts, last message) and the form that starts a 1:1
// conversation or a group with contacts.

import { useState } from "preact/hooks";
import { attempt, blockedIds, contacts, conversations, createConversation, history, me, selected, titleOf } from "./store.js";
import { fold, preview } from "./timeline.js";
import { missedUnread } from "./calllog.js";

export function Conversations() {
  const [creating, setCreating] = useState(false);
  const self = me.value;
  const hidden = blockedIds();
  return (
    <section class="conversations" aria-label="Conversations">
      <div class="row">
        <h2 class="grow">Chats</h2>
        <button type="button" onClick={() => { setCreating(!creating); }} aria-expanded={creating}>
          New chat
        </button>
      </div>
      {creating && <NewConversation onDone={() => { setCreating(false); }} />}
      <ul class="list" aria-label="Your conversations">
        {conversations.value.length === 0 && <li class="muted">No conversations yet.</li>}
        {conversations.value.map((c) => {
          const timeline = fold(history.value.get(c.id) ?? [], self?.id ?? "", hidden);
          const title = titleOf(c);
          // Missed calls count like unread messages until the conversation is seen.
          const unread = timeline.unread + missedUnread(c.id, conversations.value);
          return (
            <li key={c.id}>
              <button
                type="button"
                class={`conversation ${selected.value === c.id ? "active" : ""}`}
                aria-current={selected.value === c.id}
                data-conversation={c.id}
                onClick={() => { selected.value = c.id; }}
              >
                <span class="title">
                  {title}
                  {c.kind === "group" && <span class="muted small"> · group</span>}
                </span>
                <span class="preview muted small">{preview(timeline)}</span>
                {unread > 0 && (
                  <span class="badge" aria-label={`${unread.toString()} unread`}>
                    {unread}
                  </span>
                )}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function NewConversation({ onDone }: { onDone: () => void }) {
  const [name, setName] = useState("");
  const [chosen, setChosen] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const available = contacts.value.filter((c) => c.state === "contact");
  const toggle = (username: string) => {
    const next = new Set(chosen);
    if (next.has(username)) next.delete(username);
    else next.add(username);
    setChosen(next);
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    const ok = await attempt(() => createConversation(name.trim(), [...chosen]));
    setBusy(false);
    if (ok) onDone();
  };
  return (
    <form class="card" onSubmit={(e) => void submit(e)} aria-label="New conversation">
      {available.length === 0 ? (
        <p class="muted">Add contacts first (Contacts tab).</p>
      ) : (
        <fieldset>
          <legend>With</legend>
          {available.map((c) => (
            <label key={c.user.id} class="check">
              <input type="checkbox" name="member" value={c.user.username} checked={chosen.has(c.user.username)} onChange={() => { toggle(c.user.username); }} />
              {c.user.username}
            </label>
          ))}
        </fieldset>
      )}
      <label>
        Group name <span class="muted small">(leave empty for a 1:1 chat with one person)</span>
        <input name="name" value={name} onInput={(e) => { setName(e.currentTarget.value); }} />
      </label>
      <div class="row">
        <button type="button" onClick={onDone}>
          Cancel
        </button>
        <button type="submit" class="primary" disabled={busy || chosen.size === 0}>
          {busy ? "Creating…" : "Start chat"}
        </button>
      </div>
    </form>
  );
}
