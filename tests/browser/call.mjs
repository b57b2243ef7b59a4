// Two headless Chromium pages place a real WebRTC video call through SecureVox's Socket.IO
// signaling only, and prove media flows (getStats). Usage:
//   node tests/browser/call.mjs http://127.0.0.1:PORT      (or SECUREVOX_URL=...)
// Needs a server with open registration (or an empty one: the first user needs no invite).
// Env: CHROMIUM (default /usr/bin/chromium), SECUREVOX_ARTIFACTS (screenshots; default
// target/browser-artifacts under the workspace), SECUREVOX_TURN_TRANSPORT=udp|tcp (both pages
// relay-only through the server's TURN, reached over that transport, with credentials from
// /api/v1/turn/credentials; default: direct host candidates). Prints one JSON summary line;
// exit 0 = passed.
import { chromium } from 'playwright-core';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CALL_FLAGS } from './app.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] ?? process.env.SECUREVOX_URL ?? '').replace(/\/$/, '');
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const artifacts = process.env.SECUREVOX_ARTIFACTS ?? join(here, '../../target/browser-artifacts');
const TOTAL_MS = 60_000;
const PASSWORD = 'correct horse battery';
const turnTransport = process.env.SECUREVOX_TURN_TRANSPORT ?? '';
// Screenshots of each mode side by side: caller.png, caller-relay-udp.png, …
const tag = turnTransport ? `-relay-${turnTransport}` : '';

if (!base.startsWith('http')) {
  console.error('usage: node call.mjs <server base URL, e.g. http://127.0.0.1:8080>');
  process.exit(2);
}

const started = Date.now();
const elapsed = () => Date.now() - started;
const step = (what) => console.error(`[${(elapsed() / 1000).toFixed(1)}s] ${what}`);
let browser;
const pages = {};

// The whole run is bounded; a hang fails with the pages' state for diagnosis.
const watchdog = setTimeout(async () => {
  console.error(`FAIL: not done within ${TOTAL_MS / 1000} s`);
  await dumpState().catch(() => {});
  process.exit(1);
}, TOTAL_MS);

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function register(username) {
  const response = await fetch(`${base}/api/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password: PASSWORD }),
  }).catch((e) => {
    throw new Error(`cannot reach ${base}: ${e.cause?.message ?? e.message}`);
  });
  const body = await response.json().catch(() => null);
  check(response.status === 201, `register ${username}: ${response.status} ${JSON.stringify(body)}`);
  return { username, token: body.access_token, id: body.user.id };
}

// The ICE server entry a client builds from /api/v1/turn/credentials, kept to the TURN URI of
// the transport under test.
async function iceServersFor(user) {
  if (!turnTransport) return [];
  const response = await fetch(`${base}/api/v1/turn/credentials`, {
    headers: { authorization: `Bearer ${user.token}` },
  });
  const creds = await response.json();
  check(response.status === 200, `turn credentials: ${response.status} ${JSON.stringify(creds)}`);
  const urls = creds.uris.filter((u) => u.startsWith('turn:') && u.endsWith(`transport=${turnTransport}`));
  check(urls.length === 1, `no turn: URI for ${turnTransport} in ${JSON.stringify(creds.uris)}`);
  return [{ urls, username: creds.username, credential: creds.password }];
}

async function openPage(context, name) {
  const page = await context.newPage();
  page.on('console', (m) => {
    // The server has no favicon: the browser's own request for it is no failure.
    if (m.type() === 'error' && !m.location().url.endsWith('/favicon.ico')) {
      console.error(`[${name} console] ${m.text()} (${m.location().url})`);
    }
  });
  page.on('response', (r) => r.status() >= 400 && console.error(`[${name}] ${r.status()} ${r.url()}`));
  page.on('pageerror', (e) => console.error(`[${name} page error] ${e.message}`));
  // The server's own origin: fetch and Socket.IO need no CORS, and it is a secure context.
  await page.goto(`${base}/health`);
  await page.addScriptTag({ path: join(here, 'node_modules/socket.io-client/dist/socket.io.min.js') });
  await page.addScriptTag({ path: join(here, 'peer.js') });
  pages[name] = page;
  return page;
}

// Polls `probe` in both pages until `done` holds for both; returns the last values.
async function pollBoth(what, probe, done, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    const values = await Promise.all([pages.caller.evaluate(probe), pages.callee.evaluate(probe)]);
    if (values.every(done)) return values;
    if (Date.now() > deadline) {
      throw new Error(`${what} not reached within ${ms} ms: ${JSON.stringify(values)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function dumpState() {
  for (const [name, page] of Object.entries(pages)) {
    const state = await page
      .evaluate(() => ({
        pc: peer.pc && {
          connection: peer.pc.connectionState,
          ice: peer.pc.iceConnectionState,
          signaling: peer.pc.signalingState,
        },
        sent: peer.candidatesSent,
        received: peer.candidatesReceived,
        errors: peer.errors,
        events: peer.events.map((e) => e.name),
      }))
      .catch((e) => String(e));
    console.error(`[${name} state] ${JSON.stringify(state)}`);
    await page.screenshot({ path: join(artifacts, `${name}${tag}-failure.png`) }).catch(() => {});
  }
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  for (const name of ['caller', 'callee']) {
    for (const suffix of ['', '-failure']) rmSync(join(artifacts, `${name}${tag}${suffix}.png`), { force: true });
  }
  const suffix = Math.random().toString(36).slice(2, 8);
  const caller = await register(`caller_${suffix}`);
  const callee = await register(`callee_${suffix}`);
  step(`registered ${caller.username} and ${callee.username}`);

  browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      // Fake media; real host candidates instead of unresolvable mDNS .local names, and
      // loopback ones too (the only ones on a machine whose sole interface is lo); pages kept
      // rendering and sending while headless and unfocused.
      ...CALL_FLAGS,
    ],
  });
  const callerPage = await openPage(await browser.newContext(), 'caller');
  const calleePage = await openPage(await browser.newContext(), 'callee');
  const start = async (page, me, other) => {
    const iceServers = await iceServersFor(me);
    const args = { base, token: me.token, peerId: other.id, iceServers, relayOnly: !!turnTransport };
    return page.evaluate((a) => window.startPeer(a), args);
  };
  const [callerHello, calleeHello] = await Promise.all([
    start(callerPage, caller, callee),
    start(calleePage, callee, caller),
  ]);
  check(callerHello.userId === caller.id, `caller authenticated as ${callerHello.userId}`);
  check(calleeHello.userId === callee.id, `callee authenticated as ${calleeHello.userId}`);
  step('both pages connected to Socket.IO and have camera + microphone');

  // "Click call" on one page; the other rings and joins.
  const [placed] = await Promise.all([
    callerPage.evaluate(() => peer.placeCall()),
    calleePage.evaluate(() => peer.answerCall()),
  ]);
  step(`call ${placed.sessionId} placed, callee joined, offer sent`);

  const connection = () => ({ state: peer.pc.connectionState, at: peer.connectedAt });
  await pollBoth('both peer connections "connected"', connection, (c) => c.state === 'connected', 20_000);
  step('both peer connections are connected');

  const media = (s) => s.framesDecoded > 0 && s.audioPacketsReceived > 0;
  let stats = await pollBoth('media on both sides', () => peer.stats(), media, 20_000);
  const mediaAt = Date.now();
  step('video frames decoded and audio packets received on both sides');

  // Direct mode: a path between two host candidates of this machine (no relay, no mDNS names).
  // Relay mode: between the two relayed addresses our TURN allocated. Either way the two
  // selected pairs mirror each other. The remote may be peer-reflexive: learned from the
  // other side's connectivity check before its candidate arrived over signaling. ICE may still
  // switch to a better pair just after connecting (its stats briefly "in-progress"), so the two
  // sides get a moment to settle.
  const ends = (pair, other) =>
    pair.remotePort === other.localPort && [other.localAddress, ''].includes(pair.remoteAddress);
  const settled = ([x, y]) =>
    [x, y].every((s) => s.pair.state === 'succeeded') && ends(x.pair, y.pair) && ends(y.pair, x.pair);
  for (let tries = 0; !settled(stats) && tries < 25; tries += 1) {
    await new Promise((r) => setTimeout(r, 200));
    stats = await Promise.all([callerPage, calleePage].map((p) => p.evaluate(() => peer.stats())));
  }
  const [a, b] = stats.map((s) => s.pair);
  for (const [name, pair, other] of [['caller', a, b], ['callee', b, a]]) {
    const where = `${name}'s selected pair ${JSON.stringify(pair)}`;
    check(pair.state === 'succeeded' && pair.nominated, `${where} is not succeeded and nominated`);
    if (turnTransport) {
      check(pair.localType === 'relay', `${where}: local is not a relay candidate`);
      check(pair.localRelayProtocol === turnTransport, `${where}: TURN not reached over ${turnTransport}`);
      check(['relay', 'prflx'].includes(pair.remoteType), `${where}: remote is neither relay nor prflx`);
    } else {
      check(pair.localType === 'host', `${where}: local is not a host candidate`);
      check(!pair.localAddress?.endsWith('.local'), `${where}: local is an mDNS name`);
      check(['host', 'prflx'].includes(pair.remoteType), `${where}: remote is neither host nor prflx`);
    }
    check(ends(pair, other), `${where} does not end at the other side's ${other.local}`);
  }

  const times = await Promise.all(
    [callerPage, calleePage].map((p) =>
      p.evaluate(() => ({ clickedAt: peer.clickedAt, joinedAt: peer.joinedAt, connectedAt: peer.connectedAt })),
    ),
  );
  const clickedAt = times[0].clickedAt;
  const joinedAt = times[1].joinedAt;
  const connectedAt = Math.max(times[0].connectedAt, times[1].connectedAt);
  await callerPage.screenshot({ path: join(artifacts, `caller${tag}.png`) });
  await calleePage.screenshot({ path: join(artifacts, `callee${tag}.png`) });

  // Hang up: the callee is told, and the call ends for both.
  await callerPage.evaluate(() => peer.leave());
  const isThisCall = placed.sessionId;
  const [left, endedCaller, endedCallee] = await Promise.all([
    calleePage.evaluate((id) => peer.waitFor('participant_left', (p) => p.sessionId === id), isThisCall),
    callerPage.evaluate((id) => peer.waitFor('call_ended', (p) => p.sessionId === id), isThisCall),
    calleePage.evaluate((id) => peer.waitFor('call_ended', (p) => p.sessionId === id), isThisCall),
  ]);
  check(left.userId === caller.id, `participant_left names ${left.userId}, not the caller`);
  step(`hung up: participant_left (${left.reason}), call_ended (${endedCaller.reason}, ${endedCallee.reason})`);

  const errors = await Promise.all([callerPage, calleePage].map((p) => p.evaluate(() => peer.errors)));
  check(errors.flat().length === 0, `signaling errors: ${JSON.stringify(errors)}`);
  const candidates = await Promise.all(
    [callerPage, calleePage].map((p) =>
      p.evaluate(() => ({
        sent: peer.candidatesSent.length,
        received: peer.candidatesReceived,
        addresses: [...new Set(peer.candidatesSent)],
      })),
    ),
  );

  console.log(
    JSON.stringify({
      ok: true,
      sessionId: placed.sessionId,
      turnTransport: turnTransport || null,
      caller: { id: caller.id, username: caller.username },
      callee: { id: callee.id, username: callee.username },
      clickToConnectedMs: connectedAt - clickedAt,
      clickToMediaMs: mediaAt - clickedAt,
      joinToConnectedMs: connectedAt - joinedAt,
      framesDecoded: { caller: stats[0].framesDecoded, callee: stats[1].framesDecoded },
      frameWidth: { caller: stats[0].frameWidth, callee: stats[1].frameWidth },
      videoBytesReceived: { caller: stats[0].videoBytesReceived, callee: stats[1].videoBytesReceived },
      audioPacketsReceived: { caller: stats[0].audioPacketsReceived, callee: stats[1].audioPacketsReceived },
      candidates: { caller: candidates[0], callee: candidates[1] },
      selectedPair: { caller: `${stats[0].pair.local} -> ${stats[0].pair.remote}`, callee: `${stats[1].pair.local} -> ${stats[1].pair.remote}` },
      selectedTypes: {
        caller: { local: stats[0].pair.localType, remote: stats[0].pair.remoteType, relayProtocol: stats[0].pair.localRelayProtocol ?? null },
        callee: { local: stats[1].pair.localType, remote: stats[1].pair.remoteType, relayProtocol: stats[1].pair.localRelayProtocol ?? null },
      },
      rttMs: { caller: stats[0].pair.rttMs, callee: stats[1].pair.rttMs },
      endReason: endedCaller.reason,
      totalMs: elapsed(),
      screenshots: artifacts,
    }),
  );
}

try {
  await main();
  await browser.close();
  clearTimeout(watchdog);
} catch (e) {
  console.error(`FAIL: ${e.message}`);
  await dumpState().catch(() => {});
  await browser?.close().catch(() => {});
  process.exit(1);
}
