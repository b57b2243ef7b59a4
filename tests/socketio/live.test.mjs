// Ordering under load, reconnecting inside the grace period, and presence.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SDP_ANSWER, SDP_OFFER, api, callInProgress, connect, errorCode, newUser, sleep, startCall } from './lib.mjs';

test("each sender's signaling arrives in order, hundreds of interleaved events", async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  const N = 400;
  const kinds = ['offer', 'answer', 'ice_candidate'];
  const received = { a: [], b: [] };
  for (const [name, client] of [['a', ca], ['b', cb]]) {
    for (const kind of kinds) client.socket.on(kind, (data) => received[name].push([kind, data]));
  }
  const payload = (kind, target, seq) =>
    kind === 'ice_candidate'
      ? { sessionId, targetUserId: target, candidate: { candidate: `candidate:${seq} 1 udp 1 127.0.0.1 ${1000 + seq} typ host`, sdpMid: '0', sdpMLineIndex: 0 } }
      : { sessionId, targetUserId: target, sdp: (kind === 'offer' ? SDP_OFFER : SDP_ANSWER) + `a=seq:${seq}\r\n` };
  // Both send at once; the first event after join_call is sent without waiting for anything.
  for (let seq = 0; seq < N; seq++) {
    const kind = kinds[seq % 3];
    ca.emit(kind, payload(kind, b.id, seq));
    cb.emit(kind, payload(kind, a.id, seq));
  }
  const deadline = Date.now() + 15000;
  while ((received.a.length < N || received.b.length < N) && Date.now() < deadline) await sleep(20);
  for (const name of ['a', 'b']) {
    assert.equal(received[name].length, N, `${name} received everything`);
    const seqs = received[name].map(([kind, data]) =>
      Number(kind === 'ice_candidate' ? data.candidate.candidate.split(' ')[0].slice(10) : data.sdp.match(/a=seq:(\d+)/)[1]));
    assert.deepEqual(seqs, [...seqs.keys()], `${name} got them in the order they were sent`);
    assert.deepEqual(received[name].map(([kind]) => kind), seqs.map((s) => kinds[s % 3]));
  }
  const metrics = await fetch(new URL('/metrics', process.env.SECUREVOX_URL)).then((r) => r.text());
  const relayed = [...metrics.matchAll(/^securevox_signaling_relayed_total\{name="[a-z_]+"\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  assert.ok(relayed >= 2 * N, `metrics count relays: ${relayed}`);
  ca.close(); cb.close();
});

test('join then relay at once: the relay waits for the join', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const sessionId = await startCall(a, [b]);
  const cb = await connect(b.token);
  assert.equal((await cb.ack('join_call', { sessionId })).ok, true);
  const ca = await connect(a.token);
  ca.emit('join_call', { sessionId });
  ca.emit('offer', { sessionId, targetUserId: b.id, sdp: SDP_OFFER }); // no wait for call_joined
  assert.equal((await cb.next('offer')).fromUserId, a.id);
  await ca.none('error', 100);
  ca.close(); cb.close();
});

test('a participant who reconnects inside the grace period stays in the call', async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  cb.close();
  await sleep(500);
  const back = await connect(b.token);
  const rejoined = await back.ack('join_call', { sessionId });
  assert.equal(rejoined.ok, true);
  assert.equal(rejoined.participants.length, 2);
  await ca.none('participant_left', 2500);
  ca.emit('offer', { sessionId, targetUserId: b.id, sdp: SDP_OFFER });
  assert.equal((await back.next('offer')).fromUserId, a.id);
  // Gone for longer than the grace period: they leave, and a 1:1 call ends.
  back.close();
  assert.deepEqual(await ca.next('participant_left', () => true, 5000), { sessionId, userId: b.id, reason: 'disconnected' });
  assert.equal((await ca.next('call_ended')).reason, 'completed');
  ca.close();
});

test('hanging up while reconnecting: leave_call {sessionId} from a new socket leaves at once', async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  const outsider = await newUser('outsider');
  const co = await connect(outsider.token);
  assert.equal(errorCode(await co.ack('leave_call', { sessionId })), 'not_a_participant');
  // a's socket is in the call: a second socket of a's leaves nothing (a is not dropped).
  const second = await connect(a.token);
  assert.equal((await second.ack('leave_call', { sessionId })).left, false);
  await cb.none('participant_left', 300);
  // b's socket drops; b hangs up from the new one before the grace period ends.
  cb.close();
  await sleep(200);
  const back = await connect(b.token);
  assert.deepEqual(await back.ack('leave_call', { sessionId }), { ok: true, sessionId, left: true });
  assert.deepEqual(await ca.next('participant_left', () => true, 1000), { sessionId, userId: b.id, reason: 'left' });
  assert.equal((await ca.next('call_ended')).reason, 'completed');
  assert.equal(errorCode(await back.ack('leave_call', { sessionId })), 'call_not_found');
  for (const s of [ca, co, second, back]) s.close();
});

test('presence goes to contacts (people one shares a call with), not to strangers', async () => {
  const a = await newUser('watcher');
  const b = await newUser('friend');
  const stranger = await newUser('stranger');
  const sessionId = await startCall(a, [b]);
  const ca = await connect(a.token);
  const cs = await connect(stranger.token);
  const cb = await connect(b.token);
  const online = await ca.next('presence', (p) => p.userId === b.id);
  assert.equal(online.status, 'online');
  assert.ok(!Number.isNaN(Date.parse(online.lastSeen)));
  // b hears that a is online when connecting.
  assert.equal((await cb.next('presence', (p) => p.userId === a.id)).status, 'online');
  assert.equal((await cb.ack('set_presence', { status: 'away' })).status, 'away');
  assert.equal((await ca.next('presence', (p) => p.userId === b.id)).status, 'away');
  const second = await connect(b.token);
  await ca.none('presence', 200, (p) => p.userId === b.id && p.status === 'online');
  second.close();
  await ca.none('presence', 200, (p) => p.userId === b.id && p.status === 'offline');
  cb.close();
  const offline = await ca.next('presence', (p) => p.userId === b.id && p.status === 'offline');
  assert.ok(Date.parse(offline.lastSeen) <= Date.now() + 1000);
  await cs.none('presence', 100, (p) => p.userId === b.id);
  assert.equal((await api('GET', '/api/v1/calls', null, a.token)).body.calls[0].session_id, sessionId);
  ca.close(); cs.close();
});
