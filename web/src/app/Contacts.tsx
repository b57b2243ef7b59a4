// Contacts: find users by username, add, remove, block and unblock; presence dots; the safety
// number shared with each contact.

import { useState } from "preact/hooks";
import type { UserView } from "../core/index.js";
import { keyChanges } from "./KeyWarnings.js";
import { attempt, contacts, presence, safetyNumberWith, searchUsers, setContact } from "./store.js";

export function PresenceDot({ userId }: { userId: string }) {
  const status = presence.value.get(userId) ?? "offline";
  return <span class={`dot ${status}`} role="img" aria-label={status} title={status} />;
}

export function Contacts() {
  const [query, setQuery] = useState("");
  const [found, setFound] = useState<UserView[] | undefined>(undefined);
  const [safety, setSafety] = useState<{ username: string; number: string } | undefined>(undefined);
  const known = new Map(contacts.value.map((c) => [c.user.id, c.state]));

  const search = async (e: Event) => {
    e.preventDefault();
    await attempt(async () => {
      setFound(await searchUsers(query.trim()));
    });
  };

  return (
    <section class="contacts" aria-label="Contacts">
      <form class="row" onSubmit={(e) => void search(e)} role="search">
        <label class="grow">
          <span class="sr-only">Find users by username</span>
          <input name="search" placeholder="Find users by username" minLength={2} required value={query} onInput={(e) => { setQuery(e.currentTarget.value); }} />
        </label>
        <button type="submit">Search</button>
      </form>
      {found !== undefined && (
        <ul class="list" aria-label="Search results">
          {found.length === 0 && <li class="muted">Nobody by that name.</li>}
          {found.map((u) => (
            <li key={u.id} class="item">
              <span class="grow">{u.username}</span>
              {known.get(u.id) === "contact" ? (
                <span class="muted small">in contacts</span>
              ) : (
                <button type="button" onClick={() => void attempt(() => setContact(u.id, "add"))} aria-label={`Add ${u.username} to contacts`}>
                  Add
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      <h2>Contacts</h2>
      <ul class="list" aria-label="Your contacts">
        {contacts.value.length === 0 && <li class="muted">No contacts yet: search for someone above.</li>}
        {contacts.value.map((c) => (
          <li key={c.user.id} class="item contact" data-username={c.user.username}>
            {c.state === "contact" ? <PresenceDot userId={c.user.id} /> : <span class="dot blocked" role="img" aria-label="blocked" />}
            <span class="grow">
              {c.user.username}
              {c.state === "blocked" && <span class="muted small"> (blocked)</span>}
              {keyChanges.value.get(c.user.id)?.identityChanged === true && <span class="warning small"> · safety number changed</span>}
            </span>
            {c.state === "contact" ? (
              <>
                <button
                  type="button"
                  onClick={() =>
                    void attempt(async () => {
                      setSafety({ username: c.user.username, number: await safetyNumberWith(c.user.username) });
                    })
                  }
                  aria-label={`Safety number with ${c.user.username}`}
                >
                  Safety number
                </button>
                <button type="button" onClick={() => void attempt(() => setContact(c.user.id, "remove"))} aria-label={`Remove ${c.user.username}`}>
                  Remove
                </button>
                <button type="button" class="danger" onClick={() => void attempt(() => setContact(c.user.id, "block"))} aria-label={`Block ${c.user.username}`}>
                  Block
                </button>
              </>
            ) : (
              <button type="button" onClick={() => void attempt(() => setContact(c.user.id, "unblock"))} aria-label={`Unblock ${c.user.username}`}>
                Unblock
              </button>
            )}
          </li>
        ))}
      </ul>
      {safety !== undefined && (
        <div class="card safety" role="dialog" aria-label={`Safety number with ${safety.username}`}>
          <h3>Safety number with {safety.username}</h3>
          <p class="digits">{safety.number}</p>
          <p class="muted small">Compare it with {safety.username}'s screen, in person or on a call. If they match, nobody is in between.</p>
          <button type="button" onClick={() => { setSafety(undefined); }} autoFocus>
            Close
          </button>
        </div>
      )}
    </section>
  );
}
