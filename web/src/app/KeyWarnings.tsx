// Warnings when the people in a conversation change keys: a new safety number (a reinstall,
// a new identity — or someone in between: compare it again) or a device added under the same
// identity (a new phone or browser linked). Shown above the conversation until the person
// says they have seen it (core/trust.ts records what they accepted). Who is watched: the
// members the server lists and the members of this device's own MLS group state (the server
// could leave someone out of its list), checked when a conversation is shown, after every
// Commit this device applies (in any conversation), and when the server says `keys_changed`.

import { effect, signal } from "@preact/signals";
import { useEffect, useState } from "preact/hooks";
import { display, type KeyChange } from "../core/index.js";
import { attempt, commitsApplied, conversations, currentClient, liveSocket, maybeClient, me, nameOf } from "./store.js";

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

// After Commits (devices joined or left somewhere): every conversation's members again.
let commitsSeen = 0;
effect(() => {
  const applied = commitsApplied.value;
  if (applied === commitsSeen) return;
  commitsSeen = applied;
  void (async () => {
    const users = await Promise.all(conversations.peek().map((c) => membersOf(c.id, (c.members ?? []).map((m) => m.user_id))));
    await watchKeys(users.flat(), true);
  })();
});

/** The server's members of a conversation and those of this device's MLS group. */
async function membersOf(conversationId: string, listed: readonly string[]): Promise<string[]> {
  const inGroup = (await maybeClient()?.groupUsers(conversationId).catch(() => [])) ?? [];
  return [...new Set([...listed, ...inGroup])];
}

/** Looks at the keys of `userIds` (not this user's), at most every 10 s each unless `fresh`. */
export async function watchKeys(userIds: readonly string[], fresh = false): Promise<void> {
  const self = me.value?.id;
  const client = maybeClient();
  if (self === undefined || client === undefined) return;
  for (const userId of new Set(userIds)) {
    if (userId === self) continue;
    const last = lastChecked.get(userId) ?? 0;
    if (!fresh && Date.now() - last < SPACING_MS) continue;
    lastChecked.set(userId, Date.now());
    let change: KeyChange | undefined;
    try {
      change = await client.checkKeys(userId);
    } catch {
      // No identity published yet, or offline: nothing to compare now; look again later.
      lastChecked.delete(userId);
      continue;
    }
    // Logged out (or someone else logged in) meanwhile: not theirs to see.
    if (me.value?.id !== self) return;
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

/** The warnings for the members of one conversation; checks their keys when it is shown. */
export function KeyWarnings({ conversationId, listed }: { conversationId: string; listed: readonly string[] }) {
  const [members, setMembers] = useState<readonly string[]>(listed);
  const key = listed.join(",");
  useEffect(() => {
    let live = true;
    void membersOf(conversationId, listed).then((all) => {
      if (!live) return;
      setMembers(all);
      void watchKeys(all);
    });
    return () => { live = false; };
    // `key` stands for `listed`.
  }, [conversationId, key]);
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
  // The number of exactly the keys "I compared it" accepts.
  const digits = display(currentClient().safetyNumberOf(change));
  const [shown, setShown] = useState(change.identityChanged);
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
      {shown && (
        <p>
          <span class="small">Safety number with {name}:</span> <span class="digits">{digits}</span>
        </p>
      )}
      <div class="row">
        {!shown && (
          <button type="button" onClick={() => { setShown(true); }}>
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
