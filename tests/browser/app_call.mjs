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
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] ?? process.env.SECUREVOX_URL ?? '').replace(/\/$/, '');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = process.env.SECUREVOX_ARTIFACTS ?? join(here, '../../target/browser-artifacts');
const relayToo = process.env.SECUREVOX_APP_RELAY === '1';
const TOTAL_MS = relayToo ? 150_000 : 100_000;
const STEP_MS = 20_000;
const PASSWORD = 'correct horse battery';

if (!base.startsWith('http')) {
  console.error('usage: node app_call.mjs <app base URL, e.g. http://127.0.0.1:8080>');
  process.exit(2);
}

const started = Date.now();
const step = (what) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${what}`);
let browser;
const pages = {};
const consoleErrors = [];

const watchdog = setTimeout(async () => {
  console.error(`FAIL: not done within ${TOTAL_MS / 1000} s`);
  await shoot('timeout').catch(() => {});
  process.exit(1);
}, TOTAL_MS);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shoot(name) {
  mkdirSync(artifacts, { recursive: true });
  for (const [who, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(artifacts, `app-call-${name}-${who}.png`) }).catch(() => {});
  }
}

async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `app-call-${name}.png`) });
}

async function openPage(who) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(`${who}: ${m.text()}`);
  });
  page.on('pageerror', (e) => consoleErrors.push(`${who}: page error: ${e.message}`));
  pages[who] = page;
  return page;
}

async function register(page, username, invite) {
  await page.goto(invite === undefined ? `${base}/` : `${base}/register?invite=${encodeURIComponent(invite)}`);
  if (invite === undefined) await page.getByRole('tab', { name: 'Register' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.locator(`.me[data-username="${username}"]`).waitFor();
  await page.getByText('● live').waitFor();
}

async function api(method, path, token, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json().catch(() => null);
  check(response.ok, `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

async function addContact(page, username) {
  await page.getByRole('button', { name: 'Contacts', exact: true }).click();
  await page.getByLabel('Find users by username').fill(username);
  await page.getByRole('button', { name: 'Search' }).click();
  await page.getByRole('button', { name: `Add ${username} to contacts` }).click();
  await page.locator(`li.contact[data-username="${username}"]`).waitFor();
}

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

async function openConversation(page, title) {
  await page.getByRole('button', { name: 'Chats', exact: true }).click();
  await page.locator('button.conversation', { hasText: title }).click();
  await page.getByRole('region', { name: `Conversation ${title}` }).waitFor();
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

try {
  browser = await chromium.launch({
    executablePath,
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      '--allow-loopback-in-peer-connection',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
  const alice = await openPage('alice');
  const bob = await openPage('bob');

  step('alice registers (admin), invites bob, bob registers');
  await register(alice, 'alice');
  const session = await api('POST', '/api/v1/auth/login', undefined, { username: 'alice', password: PASSWORD, device_name: 'app_call.mjs' });
  const invite = await api('POST', '/api/v1/admin/invites', session.access_token, {});
  await register(bob, 'bob', invite.code);
  await addContact(alice, 'bob');
  await addContact(bob, 'alice');

  step('alice starts a 1:1 conversation with bob');
  await alice.getByRole('button', { name: 'Chats', exact: true }).click();
  await alice.getByRole('button', { name: 'New chat' }).click();
  await alice.getByRole('checkbox', { name: 'bob' }).check();
  await alice.getByRole('button', { name: 'Start chat' }).click();
  await alice.getByRole('region', { name: 'Conversation bob' }).waitFor();
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
  const limits = await api('GET', '/api/v1/admin/limits', session.access_token);
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

  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
  clearTimeout(watchdog);
  await browser.close();
  console.log(JSON.stringify({ ok: true, runs, totalMs: Date.now() - started }));
} catch (e) {
  console.error(`FAIL: ${e.stack ?? e}`);
  if (consoleErrors.length > 0) console.error(`console errors:\n${consoleErrors.join('\n')}`);
  await shoot('failure');
  await browser?.close().catch(() => {});
  process.exit(1);
}
