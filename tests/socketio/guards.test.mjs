// What the server refuses: relays across calls, bad payloads, binary attachments, other
// people's calls, limits reached; and per-call tokens.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, CANDIDATE, SDP_OFFER, api, callInProgress, connect, errorCode, forgeToken, newUser, sleep, startCall } from './lib.mjs';

test('relays stay inside a call', async () => {
  const one = await callInProgress();
  const two = await callInProgress();
  const offer = (sessionId, target) => ({ sessionId, targetUserId: target.id, sdp: SDP_OFFER });
  // To someone in another call, naming my call: they are not in it.
  assert.equal(errorCode(await one.ca.ack('offer', offer(one.sessionId, two.b))), 'target_not_found');
  // Naming the other call: I am not in it.
  assert.equal(errorCode(await one.ca.ack('offer', offer(two.sessionId, two.b))), 'not_a_participant');
  assert.equal(errorCode(await one.ca.ack('join_call', { sessionId: two.sessionId })), 'not_a_participant');
  assert.equal(errorCode(await one.ca.ack('join_call', { sessionId: 'no-such-call' })), 'call_not_found');
  assert.equal(errorCode(await one.ca.ack('call_decline', { sessionId: two.sessionId })), 'not_a_participant');
  await two.cb.none('offer', 150);
  // A member who has not joined cannot relay, and the error event carries the code too.
  const outsider = await connect(one.b.token);
  assert.equal(errorCode(await outsider.ack('offer', offer(one.sessionId, one.a))), 'not_a_participant');
  assert.equal((await outsider.next('error')).code, 'not_a_participant');
  for (const c of [one.ca, one.cb, two.ca, two.cb, outsider]) c.close();
});

test('bad payloads are refused before relay, with codes', async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  const to = { sessionId, targetUserId: a.id };
  const bad = [
    ['offer', { ...to }, 'bad_request'],
    ['offer', { ...to, sdp: 'hello' }, 'invalid_signal'],
    ['offer', { ...to, sdp: { type: 'answer', sdp: SDP_OFFER } }, 'invalid_signal'],
    ['offer', { ...to, sdp: 'v=0\r\n' + 'a=x\r\n'.repeat(20000) }, 'invalid_signal'],
    ['answer', { ...to, sdp: 42 }, 'bad_request'],
    ['ice_candidate', { ...to, candidate: 'rm -rf /' }, 'invalid_signal'],
    ['ice_candidate', { ...to, candidate: { candidate: 'candidate:1 1 udp 1 1.2.3.4 5 typ host', sdpMLineIndex: 99999 } }, 'invalid_signal'],
    ['ice_candidate', { sessionId, candidate: CANDIDATE }, 'bad_request'],
    ['ice_candidate', 'just a string', 'bad_request'],
    ['join_call', { sessionId: 5 }, 'bad_request'],
    ['mute_audio', { muted: 'yes' }, 'bad_request'],
  ];
  for (const [event, data, code] of bad) {
    assert.equal(errorCode(await cb.ack(event, data)), code, `${event} ${JSON.stringify(data).slice(0, 80)}`);
  }
  // Binary attachments are refused, not relayed without their bytes.
  const ack = await cb.ack('ice_candidate', { ...to, candidate: Buffer.from([1, 2, 3]) });
  assert.equal(errorCode(ack), 'bad_request');
  await ca.none('offer', 100);
  await ca.none('ice_candidate', 50);
  // The connection survives all that.
  cb.emit('ice_candidate', { ...to, candidate: CANDIDATE });
  assert.equal((await ca.next('ice_candidate')).fromUserId, b.id);
  ca.close(); cb.close();
});

test('limits: concurrent calls, participants per call, participants in total', async () => {
  const set = (limits) => api('PUT', '/api/v1/admin/limits', limits, ADMIN);
  try {
    // Calls of earlier tests end within the grace period and ring timeout (2 s here).
    for (let i = 0; i < 100; i++) {
      const live = await api('GET', '/api/call/stats', null, ADMIN);
      if (live.body.totalActiveCalls === 0) break;
      await sleep(100);
    }
    const first = await callInProgress();
    const stats = await api('GET', '/api/call/stats', null, ADMIN);
    assert.deepEqual([stats.body.totalActiveCalls, stats.body.participants], [1, 2]);
    assert.equal((await set({ max_concurrent_calls: 1 })).status, 200);
    const a = await newUser('caller');
    const b = await newUser('callee');
    const r = await api('POST', '/api/v1/calls', { invitees: [b.id] }, a.token);
    assert.deepEqual([r.status, r.body.error.code], [403, 'capacity_reached']);
    const ca = await connect(a.token);
    assert.equal(errorCode(await ca.ack('call_start', { invitees: [b.id] })), 'capacity_reached');

    assert.equal((await set({ max_concurrent_calls: 0, max_participants_per_call: 4 })).status, 200);
    const c = await newUser('third');
    const sessionId = await startCall(a, [b, c]);
    assert.equal((await ca.ack('join_call', { sessionId })).ok, true);
    const cb = await connect(b.token);
    assert.equal((await cb.ack('join_call', { sessionId })).ok, true);
    // The admin lowers the per-call limit while the call runs: the third is refused.
    assert.equal((await set({ max_participants_per_call: 2 })).status, 200);
    const cc = await connect(c.token);
    assert.equal(errorCode(await cc.ack('join_call', { sessionId })), 'call_full');
    // Participants across all calls.
    assert.equal((await set({ max_participants_per_call: 4, max_call_participants_total: stats.body.participants + 2 })).status, 200);
    assert.equal(errorCode(await cc.ack('join_call', { sessionId })), 'capacity_reached');
    assert.equal((await set({ max_call_participants_total: 0 })).status, 200);
    assert.equal((await cc.ack('join_call', { sessionId })).ok, true);
    for (const s of [ca, cb, cc, first.ca, first.cb]) s.close();
  } finally {
    assert.equal((await api('DELETE', '/api/v1/admin/limits', null, ADMIN)).status, 200);
  }
});

test('per-call tokens admit to their call only', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const sessionId = await startCall(a, [b]);
  const other = await startCall(a, [b]);
  const issue = (who, body) => api('POST', '/api/call/token', body, who.token);

  const r = await issue(b, { userId: b.id, sessionId, role: 'callee' });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.ok(Date.parse(r.body.expiresAt) > Date.now());
  assert.equal((await issue(b, { userId: a.id, sessionId, role: 'callee' })).status, 403, 'not for others');
  assert.equal((await issue(b, { userId: b.id, sessionId, role: 'caller' })).status, 403, 'not the caller');
  assert.equal((await issue(a, { userId: a.id, sessionId, role: 'caller' })).status, 200);
  const stranger = await newUser('stranger');
  assert.equal((await issue(stranger, { userId: stranger.id, sessionId, role: 'participant' })).body.error.code, 'not_a_participant');
  assert.equal((await issue(b, { userId: b.id, sessionId: 'nope', role: 'callee' })).body.error.code, 'call_not_found');
  assert.equal((await issue(b, { userId: b.id, sessionId, role: 'king' })).status, 422);
  assert.equal((await api('POST', '/api/call/token', { userId: b.id, sessionId, role: 'callee' })).status, 401);

  // The seed flow with a call token: authenticate by event, join without naming the call.
  const cb = await connect(r.body.token, { auth: 'event' });
  assert.equal(errorCode(await cb.ack('join_call', { sessionId: other })), 'forbidden');
  assert.equal(errorCode(await cb.ack('call_start', { invitees: [a.id] })), 'forbidden');
  const joined = await cb.ack('join_call', {});
  assert.deepEqual([joined.ok, joined.sessionId], [true, sessionId]);
  // A call token is not an access token.
  assert.equal((await api('GET', '/api/v1/me', null, r.body.token)).status, 401);
  const now = Math.floor(Date.now() / 1000);
  const expired = forgeToken({ sub: b.id, sid: sessionId, role: 'callee', iat: now - 100, exp: now - 5, typ: 'call' });
  const late = await connect(null);
  assert.equal(errorCode(await late.ack('authenticate', { token: expired })), 'token_expired');
  cb.close(); late.close();
});
