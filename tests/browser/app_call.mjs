// Two people call each other in the web app (served at `/`) in two headless Chromium pages with
// fake cameras and microphones: they register (the first is admin and invites the second), add
// each other, alice starts a 1:1 conversation and a video call from it, bob accepts on the
// incoming-call screen, both peer connections connect and decode video, a mute is seen by the
// other side, hanging up ends the call on both; bob declines a second (audio) call; both calls
// are in both call histories. With
// SECUREVOX_APP_RELAY=1 they call a second time relay-only (`?relay=1`) through the server's
// TURN. Usage:
//   node tests/browser/app_call.mjs http://127.0.0.1:PORT      (or SECUREVOX_URL=...)
// The server must be empty (the first user becomes admin). Env: CHROMIUM (default
// /usr/bin/chromium), SECUREVOX_ARTIFACTS (screenshots; default target/browser-artifacts).
// Prints one JSON summary line; exit 0 = passed.
import { appTest, CALL_FLAGS } from './app.mjs';

const relayToo = process.env.SECUREVOX_APP_RELAY === '1';
const t = appTest({ script: 'app_call.mjs', prefix: 'app-call', totalMs: relayToo ? 150_000 : 100_000 });
const { base, pages, step, check, screenshot, openPage, register, api, addContact, launch } = t;
const { registerInvited, startChat, openConversation, run } = t;

const callState = (page) => page.evaluate(() => window.__securevox.call());
const callStats = (page) => page.evaluate(() => window.__securevox.stats());

// Polls `probe` in both pages until `done` holds for both; returns the last values.
async function both(probe, done, what, ms = 30_000) {
  const until = Date.now() + ms;
  let values = [];
  for (;;) {
    values = await Promise.all([probe(pages.alice), probe(pages.bob)]);
    if (values.every(done)) return values;
    if (Date.now() > until) throw new Error(`${what}: not reached within ${ms / 1000} s: ${JSON.stringify(values)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}


/** One video call from alice to bob, checked on both sides; returns what it measured. */
async function videoCall(tag, relay) {
  const { alice, bob } = pages;
  step(`${tag}: alice starts a video call from the conversation`);
  const t = Date.now();
  await alice.getByRole('button', { name: 'Video call' }).click();
  await alice.getByRole('region', { name: 'Call' }).waitFor();
  const ring = bob.getByRole('dialog', { name: 'Incoming call' });
  await ring.getByText('alice').waitFor();
  const ringMs = Date.now() - t;
  if (tag === 'direct') await screenshot(bob, 'incoming');

  step(`${tag}: bob accepts; both connect and decode video`);
  await ring.getByRole('button', { name: 'Accept' }).click();
  await bob.getByRole('region', { name: 'Call' }).waitFor();
  const connected = (s) => s.active && s.participants.length === 1 && s.participants[0].state === 'connected' && s.participants[0].hasStream;
  await both(callState, connected, `${tag}: connected`);
  const connectMs = Date.now() - t;
  const stats = await both(callStats, (s) => s.length === 1 && s[0].framesDecoded > 0 && s[0].audioPacketsReceived > 0, `${tag}: frames decoded`);
  for (const [i, s] of stats.entries()) {
    const who = i === 0 ? 'alice' : 'bob';
    if (relay) {
      check(s[0].localType === 'relay', `${tag} ${who}: local candidate is ${s[0].localType}, not relay`);
    } else {
      check(s[0].localType === 'host', `${tag} ${who}: local candidate is ${s[0].localType}, not host`);
    }
  }
  // Both show the other's video tile, and the live duration.
  await alice.locator('figure.tile[data-user="bob"][data-state="connected"] video').waitFor();
  await bob.locator('figure.tile[data-user="alice"][data-state="connected"] video').waitFor();
  await alice.getByLabel('Call duration').filter({ hasText: /^0:0[1-9]|^0:[1-5]\d/ }).waitFor();
  await screenshot(alice, `in-call-${tag}`);
  await screenshot(bob, `in-call-${tag}-bob`);

  step(`${tag}: alice mutes her microphone and camera; bob sees both`);
  await alice.getByRole('button', { name: 'Mute' }).click();
  await bob.locator('figure.tile[data-user="alice"][data-audio-muted="true"]').waitFor();
  await alice.getByRole('button', { name: 'Camera off' }).click();
  await bob.locator('figure.tile[data-user="alice"][data-video-muted="true"]').waitFor();
  await bob.locator('figure.tile[data-user="alice"]').getByText('muted').waitFor();
  await alice.getByRole('button', { name: 'Unmute' }).click();
  await bob.locator('figure.tile[data-user="alice"][data-audio-muted="false"]').waitFor();
  await alice.getByRole('button', { name: 'Camera on' }).click();
  await bob.locator('figure.tile[data-user="alice"][data-video-muted="false"]').waitFor();

  if (tag === 'direct') {
    step(`${tag}: alice switches to her other microphone (replaceTrack); bob still receives audio`);
    const mic = alice.getByRole('combobox', { name: 'Microphone' });
    const options = await mic.locator('option').evaluateAll((os) => os.map((o) => o.value));
    check(options.length >= 2, `fewer than two fake microphones: ${JSON.stringify(options)}`);
    const [before] = await callStats(bob);
    await mic.selectOption(options[1]);
    await both(callStats, (s) => s.length === 1 && s[0].audioPacketsReceived > 0, `${tag}: audio after the switch`);
    const until = Date.now() + 10_000;
    for (;;) {
      const [after] = await callStats(bob);
      if (after.audioPacketsReceived > before.audioPacketsReceived + 20) break;
      check(Date.now() < until, `${tag}: bob gets no more audio after the switch: ${JSON.stringify([before, after])}`);
      await new Promise((r) => setTimeout(r, 250));
    }

    step(`${tag}: alice switches her camera (replaceTrack; a select when there are two); bob still decodes her video`);
    const cameras = await alice.evaluate(async () => (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput').map((d) => d.deviceId));
    check(cameras.length >= 1, 'no fake camera');
    check((await alice.getByRole('combobox', { name: 'Camera' }).count()) === (cameras.length >= 2 ? 1 : 0), `camera select for ${cameras.length} cameras`);
    const [beforeCamera] = await callStats(bob);
    await alice.evaluate((id) => window.__securevox.switchDevice('videoinput', id), cameras.at(-1));
    await alice.locator('figure.tile.self video').waitFor();
    const cameraUntil = Date.now() + 10_000;
    for (;;) {
      const [after] = await callStats(bob);
      if (after.framesDecoded > beforeCamera.framesDecoded + 10) break;
      check(Date.now() < cameraUntil, `${tag}: bob decodes no more video after the camera switch: ${JSON.stringify([beforeCamera, after])}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const state = await callState(alice);
    check(state.errors.length === 0, `call errors: ${JSON.stringify(state.errors)}`);
  }

  step(`${tag}: bob hangs up; the call ends on both sides`);
  await bob.getByRole('button', { name: 'Hang up' }).click();
  await alice.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  await bob.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  await alice.getByRole('status').filter({ hasText: 'Call ended' }).waitFor();
  const ended = await both(callState, (s) => !s.active && s.ended !== undefined, `${tag}: ended`);
  return { ringMs, connectMs, stats: stats.map((s) => s[0]), ended: ended.map((s) => s.ended) };
}

await run(async () => {
  await launch(CALL_FLAGS);
  const alice = await openPage('alice');
  const bob = await openPage('bob');

  step('alice registers (admin), invites bob, bob registers');
  await register(alice, 'alice');
  await registerInvited(bob, 'bob');
  await addContact(alice, 'bob');
  await addContact(bob, 'alice');

  step('alice starts a 1:1 conversation with bob');
  await startChat(alice, ['bob']);
  await bob.getByRole('button', { name: 'Chats', exact: true }).click();
  await bob.locator('button.conversation', { hasText: 'alice' }).waitFor();

  const runs = { direct: await videoCall('direct', false) };

  step('alice calls again (audio); bob declines; alice sees it');
  await alice.getByRole('button', { name: 'Audio call' }).click();
  await alice.getByRole('region', { name: 'Call' }).waitFor();
  const ring = bob.getByRole('dialog', { name: 'Incoming call' });
  await ring.getByText('Incoming audio call').waitFor();
  await ring.getByRole('button', { name: 'Decline' }).click();
  await ring.waitFor({ state: 'detached' });
  await alice.getByRole('region', { name: 'Call' }).waitFor({ state: 'detached' });
  await alice.getByRole('status').filter({ hasText: 'Call declined' }).waitFor();

  step('both see the calls in their history');
  for (const [page, other, direction] of [[alice, 'bob', 'outgoing'], [bob, 'alice', 'incoming']]) {
    await page.getByRole('button', { name: 'Calls', exact: true }).click();
    await page.locator(`li.call-entry[data-direction="${direction}"][data-outcome="completed"]`, { hasText: other }).first().waitFor();
    await page.locator(`li.call-entry[data-direction="${direction}"][data-outcome="declined"]`, { hasText: other }).first().waitFor();
  }
  await screenshot(alice, 'history');

  step('alice (admin) opens the admin pages: users, capacity, limits, live calls; bob has none');
  await alice.getByRole('button', { name: 'Admin', exact: true }).click();
  const adminPage = alice.getByRole('region', { name: 'Administration' });
  await adminPage.locator('li[data-username="bob"]').waitFor();
  await adminPage.getByRole('table', { name: 'Capacity' }).locator('tr[data-level]').first().waitFor();
  await adminPage.getByText('No calls in progress.').waitFor();
  await adminPage.getByLabel('max concurrent calls').fill('9');
  await adminPage.getByRole('button', { name: 'Save limits' }).click();
  await adminPage.getByText('(database)').waitFor();
  const limits = await api('GET', '/api/v1/admin/limits', t.adminToken);
  check(limits.limits.max_concurrent_calls === 9, `limits not saved: ${JSON.stringify(limits)}`);
  await screenshot(alice, 'admin');
  check((await bob.getByRole('button', { name: 'Admin', exact: true }).count()) === 0, 'bob sees the admin pages');
  await alice.getByRole('button', { name: 'Chats', exact: true }).click();
  await adminPage.waitFor({ state: 'detached' });

  if (relayToo) {
    step('relay-only: both reload with ?relay=1');
    for (const page of [alice, bob]) {
      await page.goto(`${base}/?relay=1`);
      await page.getByText('● live').waitFor();
    }
    await openConversation(alice, 'bob');
    runs.relay = await videoCall('relay', true);
  }

  return { runs };
});
