// Warnings when the people in a conversation change keys: a new safety number (a reinstall,
// a new identity — or someone in between: compare it again) or a device added under the same
// identity (a new phone or browser linked). Shown above the conversation until the person
// says they have seen it (core/trust.ts records what they accepted).

import { effect, signal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import type { KeyChange } from "../core/index.js";
import { attempt, commitsApplied, currentClient, liveSocket, me, nameOf, safetyNumberWith } from "./store.js";

/** Unacknowledged changes, by user id. */
export const keyChanges = signal<ReadonlyMap<string, KeyChange>>(new Map());

/** When each user's keys were last looked at (checks of a user are spaced). */
const lastChecked = new Map<string, number>();
const SPACING_MS = 10_000;

let owner: string | undefined;
effect(() => {
  const user = me.value?.id;
  if (user === owner) return;
  owner = user;
  lastChecked.clear();
  keyChanges.value = new Map();
});

// The server says when someone's devices or identity changed: look at once.
effect(() => {
  const socket = liveSocket.value;
  if (socket === undefined) return;
  const changed = (event: { userId?: unknown }) => {
    if (typeof event.userId === "string") void watchKeys([event.userId], true);
  };
  socket.on("keys_changed", changed);
  return () => { socket.off("keys_changed", changed); };
});

/** Looks at the keys of `userIds` (not this user's), at most every 10 s each unless `fresh`. */
export async function watchKeys(userIds: readonly string[], fresh = false): Promise<void> {
  const self = me.value?.id;
  for (const userId of new Set(userIds)) {
    if (userId === self) continue;
    const last = lastChecked.get(userId) ?? 0;
    if (!fresh && Date.now() - last < SPACING_MS) continue;
    lastChecked.set(userId, Date.now());
    let change: KeyChange | undefined;
    try {
      change = await currentClient().checkKeys(userId);
    } catch {
      // No identity published yet, or offline: nothing to compare now; look again later.
      lastChecked.delete(userId);
      continue;
    }
    const next = new Map(keyChanges.value);
    if (change === undefined) next.delete(userId);
    else next.set(userId, change);
    keyChanges.value = next;
  }
}

async function accept(change: KeyChange): Promise<void> {
  await currentClient().acceptKeys(change);
  const next = new Map(keyChanges.value);
  next.delete(change.userId);
  keyChanges.value = next;
}

/** The warnings for the members of one conversation; checks their keys when it is shown
 *  and again after each Commit (a device joining or leaving changes the group). */
export function KeyWarnings({ members }: { members: readonly string[] }) {
  const key = members.join(",");
  const applied = commitsApplied.value;
  useEffect(() => {
    void watchKeys(members, applied > 0);
    // `key` stands for `members`.
  }, [key, applied]);
  const changes = members.map((m) => keyChanges.value.get(m)).filter((c): c is KeyChange => c !== undefined);
  if (changes.length === 0) return null;
  return (
    <div class="key-warnings">
      {changes.map((c) => (
        <KeyWarning key={c.userId} change={c} />
      ))}
    </div>
  );
}

function KeyWarning({ change }: { change: KeyChange }) {
  const name = nameOf(change.userId);
  const [digits, setDigits] = useState<string | undefined>(undefined);
  const devices = change.addedDevices.length;
  return (
    <div class={`key-warning ${change.identityChanged ? "danger" : "notice"}`} role="alert" data-user={name}>
      {change.identityChanged ? (
        <p>
          <strong>Your safety number with {name} changed.</strong> They may have reinstalled or started a new identity, or
          someone may be in between. Compare the new number with {name} before you share anything sensitive.
        </p>
      ) : (
        <p>
          <strong>
            {name} added {devices === 1 ? "a new device" : `${devices.toString()} new devices`}.
          </strong>{" "}
          Messages here now also go to {devices === 1 ? "it" : "them"}. If {name} did not expect this, tell them.
        </p>
      )}
      {digits !== undefined && <p class="digits" aria-label={`Safety number with ${name}`}>{digits}</p>}
      <div class="row">
        {digits === undefined && (
          <button type="button" onClick={() => void attempt(async () => { setDigits(await safetyNumberWith(name)); })}>
            Show safety number
          </button>
        )}
        <button type="button" class="primary" onClick={() => void attempt(() => accept(change))}>
          {change.identityChanged ? "I compared it" : "OK"}
        </button>
      </div>
    </div>
  );
}
