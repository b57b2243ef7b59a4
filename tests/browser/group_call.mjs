// Three people call each other in the web app (served at `/`), in three headless Chromium pages
// with fake cameras and microphones, through the group conversation of the three:
// - alice rings the group and hangs up before anyone answers: bob and carol get a "Missed
//   audio call" in the conversation (counted as unread until seen), alice "No answer";
// - alice starts a video call, bob and carol accept: a mesh where every page decodes video and
//   audio from the two others (getStats per peer connection);
// - carol's connection drops for a few seconds (the engine.io transport closes, as a network
//   loss would): she sees "Reconnecting…", rejoins within the server's grace period, and
//   media flows again both ways with the others, who saw nothing;
// - carol hangs up: the others see her leave and keep talking; alice hangs up: the call ends
//   for bob too; the call is in the conversation's timeline;
// - alice calls again, bob accepts, carol declines; bob's connection stays down longer than the
//   grace period: the server ends his part, so the call ends; when bob is back his page says
//   so;
// - a fourth call: bob hangs up while his connection is down; the call ends as soon as he is
//   back (his `leave_call {sessionId}` goes out then), not after the grace period.
// Usage:
//   node tests/browser/group_call.mjs http://127.0.0.1:PORT      (or SECUREVOX_URL=...)
// The server must be empty (the first user becomes admin) and keep its default grace period
// (calls.rejoin_grace_s, 10 s). Env: CHROMIUM (default /usr/bin/chromium), SECUREVOX_ARTIFACTS
// (screenshots; default target/browser-artifacts). Prints one JSON summary line; exit 0 = passed.
import { appTest, CALL_FLAGS } from './app.mjs';

const t = appTest({ script: 'group_call.mjs', prefix: 'group-call', totalMs: 200_000 });
const { pages, step, check, screenshot, openPage, register, addContact, launch } = t;
const { registerInvited, startChat, openConversation, run } = t;
/** The server's default `calls.rejoin_grace_s`. */
const GRACE_MS = 10_000;

const callState = (page) => page.evaluate(() => window.__securevox.call());
const callStats = (page) => page.evaluate(() => window.__securevox.stats());
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `probe` in the pages of `who` until `done` holds for each; returns the last values.
async function until(who, probe, done, what, ms = 40_000) {
  const deadline = Date.now() + ms;
  let values = [];
  for (;;) {
    values = await Promise.all(who.map((w) => probe(pages[w])));
    if (values.every((v, i) => done(v, who[i]))) return values;
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${ms / 1000} s: ${JSON.stringify(values)}`);
    await sleep(250);
  }
}

/** User id → frames decoded from them, per page. */
const frames = (stats) => Object.fromEntries(stats.map((s) => [s.userId, s.framesDecoded]));

/** Waits until each page of `who` decodes more frames (and gets audio) from each of the others
 *  than in `before` (page → `frames`). */
async function moreFrames(who, before, what) {
  return until(
    who,
    callStats,
    (stats, w) =>
      stats.length === who.length - 1 &&
      stats.every((s) => s.framesDecoded > (before[w][s.userId] ?? 0) && s.audioPacketsReceived > 0),
    what,
  );
}


await run(async () => {
  await launch(CALL_FLAGS);
  const alice = await openPage('alice');
  const bob = await openPage('bob');
  const carol = await openPage('carol');

  step('alice registers (admin) and invites bob and carol; they add each other');
  await register(alice, 'alice');
  for (const [page, name] of [[bob, 'bob'], [carol, 'carol']]) {
    await registerInvited(page, name);
    await addContact(page, 'alice');
    await addContact(alice, name);
  }
  // Contacts of each other too (they would be named from the group's members anyway).
  await addContact(bob, 'carol');
  await addContact(carol, 'bob');

  step('alice starts the group "Team" with bob and carol');
  await startChat(alice, ['bob', 'carol'], 'Team');
  const team = alice.getByRole('region', { name: 'Conversation Team' });
  await bob.getByRole('button', { name: 'Chats', exact: true }).click();
  await bob.locator('button.conversation', { hasText: 'Team' }).waitFor();
  await openConversation(carol, 'Team');
  // Bob looks at his contacts meanwhile: a missed call counts as unread for him.
  await bob.getByRole('button', { name: 'Contacts', exact: true }).click();

  step('alice rings the group (audio) and hangs up before anyone answers');
  await team.getByRole('button', { name: 'Audio call' }).click();
  for (const page of [bob, carol]) await page.getByRole('dialog', { name: 'Incoming call' }).getByText('Incoming audio call (group of 3)').waitFor();
  await alice.getByRole('button', { name: 'Hang up' }).click();
  for (const page of [bob, carol]) await page.getByRole('dialog', { name: 'Incoming call' }).waitFor({ state: 'detached' });
  await carol.locator('li.call-line[data-outcome="missed"]', { hasText: 'Missed audio call' }).waitFor();
  await team.locator('li.call-line[data-direction="outgoing"]', { hasText: 'Audio call · No answer' }).waitFor();
  await bob.waitForFunction(() => document.title === '(1) SecureVox');
  await openConversation(bob, 'Team');
  await bob.locator('li.call-line[data-outcome="missed"]', { hasText: 'Missed audio call' }).waitFor();
  await bob.waitForFunction(() => document.title === 'SecureVox');
  await screenshot(bob, 'missed');

  step('alice starts a video call in the group; bob and carol accept');
  await team.getByRole('button', { name: 'Video call' }).click();
  await alice.getByRole('region', { name: 'Call' }).waitFor();
  for (const page of [bob, carol]) {
    const ring = page.getByRole('dialog', { name: 'Incoming call' });
    await ring.getByText('Incoming video call (group of 3)').waitFor();
    await ring.getByRole('button', { name: 'Accept' }).click();
    await page.getByRole('region', { name: 'Call' }).waitFor();
  }
  const all = ['alice', 'bob', 'carol'];
  const meshUp = (s) => s.active && s.participants.length === 2 && s.participants.every((p) => p.state === 'connected' && p.hasStream);
  await until(all, callState, meshUp, 'the mesh of three connected');
  const zero = { alice: {}, bob: {}, carol: {} };
  const mesh = await moreFrames(all, zero, 'each page decodes the two others');
  for (const name of all) {
    for (const other of all.filter((o) => o !== name)) {
      await pages[name].locator(`figure.tile[data-user="${other}"][data-state="connected"] video`).waitFor();
    }
  }
  await screenshot(alice, 'mesh');

  step("carol's connection drops for 3 s; she rejoins and media flows again both ways");
  const beforeDrop = Object.fromEntries((await Promise.all(all.map((n) => callStats(pages[n])))).map((s, i) => [all[i], frames(s)]));
  const dropped = Date.now();
  await carol.evaluate(() => window.__securevox.dropConnection(3000));
  await carol.getByRole('region', { name: 'Call' }).getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
  await screenshot(carol, 'reconnecting');
  await until(['carol'], callState, (s) => s.active && !s.reconnecting && s.rejoins === 1, 'carol rejoined');
  const rejoinedMs = Date.now() - dropped;
  // Frames counted after the rejoin, from the same or new peer connections.
  const afterRejoin = Object.fromEntries((await Promise.all(all.map((n) => callStats(pages[n])))).map((s, i) => [all[i], frames(s)]));
  await until(all, callState, meshUp, 'the mesh after the rejoin');
  await moreFrames(all, afterRejoin, 'media after the rejoin');
  const mediaBackMs = Date.now() - dropped;
  for (const name of ['alice', 'bob']) {
    const s = await callState(pages[name]);
    check(s.rejoins === 0 && !s.reconnecting, `${name} saw carol's drop: ${JSON.stringify(s)}`);
    check(s.errors.length === 0, `${name}'s call errors: ${JSON.stringify(s.errors)}`);
  }
  check((await callState(carol)).errors.length === 0, `carol's call errors: ${JSON.stringify((await callState(carol)).errors)}`);

  step('carol hangs up; alice and bob see her leave and keep talking');
  await carol.getByRole('button', { name: 'Hang up' }).click();
  await carol.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  for (const page of [alice, bob]) await page.locator('figure.tile[data-user="carol"]').waitFor({ state: 'detached' });
  const pair = ['alice', 'bob'];
  const afterCarol = Object.fromEntries((await Promise.all(pair.map((n) => callStats(pages[n])))).map((s, i) => [pair[i], frames(s)]));
  await until(pair, callState, (s) => s.active && s.participants.length === 1 && s.participants[0].state === 'connected', 'alice and bob still in the call');
  await moreFrames(pair, afterCarol, 'alice and bob still decode each other');

  step('alice hangs up: the call ends for bob too, and shows in the conversation');
  await alice.getByRole('button', { name: 'Hang up' }).click();
  await bob.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  await bob.getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
  await until(all, callState, (s) => !s.active, 'nobody in a call');
  await team.locator('li.call-line[data-direction="outgoing"][data-outcome="completed"]', { hasText: 'Outgoing video call' }).waitFor();
  await bob.locator('li.call-line[data-direction="incoming"][data-outcome="completed"]', { hasText: 'Incoming video call' }).waitFor();
  await screenshot(alice, 'timeline');

  step("alice calls again; bob accepts, carol declines; bob's connection stays down past the grace period");
  await team.getByRole('button', { name: 'Video call' }).click();
  const bobRing = bob.getByRole('dialog', { name: 'Incoming call' });
  await bobRing.getByRole('button', { name: 'Accept' }).click();
  await carol.getByRole('dialog', { name: 'Incoming call' }).getByRole('button', { name: 'Decline' }).click();
  await until(pair, callState, (s) => s.active && s.participants.length === 1 && s.participants[0].state === 'connected', 'alice and bob connected');
  await bob.evaluate((ms) => window.__securevox.dropConnection(ms), GRACE_MS + 3000);
  await bob.getByRole('region', { name: 'Call' }).getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
  // The server ends bob's part after the grace period: a call of two is then over.
  await alice.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached', timeout: GRACE_MS + 20_000 });
  await alice.getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
  await bob.getByRole('status').filter({ hasText: 'Call ended while you were disconnected' }).waitFor({ timeout: 30_000 });
  await bob.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  await bob.getByText('● live').waitFor();
  await screenshot(bob, 'ended-while-away');

  step('alice calls again; bob hangs up while his connection is down: the call ends when he is back, not after the grace period');
  await team.getByRole('button', { name: 'Video call' }).click();
  await bobRing.getByRole('button', { name: 'Accept' }).click();
  await carol.getByRole('dialog', { name: 'Incoming call' }).getByRole('button', { name: 'Decline' }).click();
  await until(pair, callState, (s) => s.active && s.participants.length === 1 && s.participants[0].state === 'connected', 'alice and bob connected again');
  await bob.evaluate(() => window.__securevox.dropConnection(3000));
  await bob.getByRole('region', { name: 'Call' }).getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
  await bob.getByRole('button', { name: 'Hang up' }).click();
  await bob.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  // bob's leave_call {sessionId} goes out on reconnecting (3 s); without it alice would wait
  // for the server's grace period (10 s from the drop).
  await alice.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached', timeout: GRACE_MS - 3000 });
  await alice.getByRole('status').filter({ hasText: 'Call ended' }).waitFor();

  const mesh0 = Object.fromEntries(mesh.map((s, i) => [all[i], s.map((p) => ({ from: p.userId, framesDecoded: p.framesDecoded, localType: p.localType }))]));
  return { mesh: mesh0, beforeDrop, rejoinedMs, mediaBackMs };
});
