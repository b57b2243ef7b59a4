// Calls end to end: the seed's signaling flow, ringing several devices, decline, cancel,
// timeout, history, and the state machine's refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN, CANDIDATE, SDP_ANSWER, SDP_OFFER, api, callInProgress, connect, errorCode, newUser, startCall } from './lib.mjs';

async function history(user) {
  const r = await api('GET', '/api/v1/calls', null, user.token);
  assert.equal(r.status, 200);
  return r.body.calls;
}

test("the seed's flow: join, offer/answer/ICE, mute, connected, leave", async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  const joined = await cb.next('call_joined');
  assert.equal(joined.sessionId, sessionId);
  assert.deepEqual(joined.participants.map((p) => p.userId).sort(), [a.id, b.id].sort());

  ca.emit('offer', { sessionId, targetUserId: b.id, sdp: { type: 'offer', sdp: SDP_OFFER } });
  const offer = await cb.next('offer');
  assert.deepEqual(offer, { sessionId, fromUserId: a.id, sdp: { type: 'offer', sdp: SDP_OFFER } });
  assert.equal((await cb.ack('answer', { sessionId, targetUserId: a.id, sdp: SDP_ANSWER })).ok, true);
  assert.deepEqual(await ca.next('answer'), { sessionId, fromUserId: b.id, sdp: SDP_ANSWER });
  cb.emit('ice_candidate', { sessionId, targetUserId: a.id, candidate: CANDIDATE });
  assert.deepEqual(await ca.next('ice_candidate'), { sessionId, fromUserId: b.id, candidate: CANDIDATE });
  await cb.none('ice_candidate', 100, () => true);

  assert.deepEqual(await ca.ack('mute_audio', { muted: true }), { ok: true, sessionId, audioMuted: true });
  assert.deepEqual(await cb.next('mute_audio'), { sessionId, userId: a.id, muted: true });
  assert.equal((await ca.ack('mute_video')).videoMuted, true, 'no payload toggles');
  assert.equal((await cb.next('mute_video')).muted, true);

  assert.equal((await cb.ack('call_connected', { sessionId })).state, 'connected');
  const stats = await api('GET', '/api/call/stats', null, ADMIN);
  const live = stats.body.activeCalls.find((c) => c.sessionId === sessionId);
  assert.equal(live.state, 'connected');
  assert.equal(live.participants.length, 2);
  assert.equal(live.participants.find((p) => p.userId === a.id).audioMuted, true);
  const health = await api('GET', '/health');
  assert.ok(health.body.activeCalls >= 1 && health.body.connectedUsers >= 2, JSON.stringify(health.body));

  assert.equal((await cb.ack('leave_call')).left, true);
  assert.deepEqual(await ca.next('participant_left'), { sessionId, userId: b.id, reason: 'left' });
  assert.equal((await ca.next('call_ended')).reason, 'completed');
  assert.equal((await cb.next('call_ended')).reason, 'completed');
  const [call] = await history(a);
  assert.equal(call.session_id, sessionId);
  assert.equal(call.outcome, 'completed');
  assert.equal(call.direction, 'outgoing');
  assert.ok(call.duration_s >= 0 && call.answered_at && call.ended_at, JSON.stringify(call));
  assert.equal((await history(b))[0].direction, 'incoming');
  ca.close(); cb.close();
});

test('ringing reaches every device; one accepts, the others stop', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const ca = await connect(a.token);
  const phone = await connect(b.token);
  const laptop = await connect(b.token, { auth: 'event' });
  const start = await ca.ack('call_start', { invitees: [b.id], media: 'video' });
  assert.equal(start.ok, true, JSON.stringify(start));
  const { sessionId } = start;
  assert.equal((await ca.next('call_started')).sessionId, sessionId);
  for (const device of [phone, laptop]) {
    const ring = await device.next('incoming_call');
    assert.equal(ring.sessionId, sessionId);
    assert.equal(ring.callerId, a.id);
    assert.equal(ring.media, 'video');
    assert.ok(ring.callerName.startsWith('caller'));
  }
  // A device that comes online while it rings rings too.
  const tablet = await connect(b.token);
  assert.equal((await tablet.next('incoming_call')).sessionId, sessionId);

  const accepted = await laptop.ack('call_accept', { sessionId });
  assert.equal(accepted.ok, true);
  assert.equal((await laptop.next('call_joined')).sessionId, sessionId);
  assert.equal((await phone.next('call_answered_elsewhere')).sessionId, sessionId);
  assert.equal((await tablet.next('call_answered_elsewhere')).sessionId, sessionId);
  await laptop.none('call_answered_elsewhere', 100);
  assert.equal((await ca.next('call_accepted')).userId, b.id);
  assert.equal((await ca.next('participant_joined')).userId, b.id);
  // Signaling goes to the device that answered, not the others.
  ca.emit('offer', { sessionId, targetUserId: b.id, sdp: SDP_OFFER });
  assert.equal((await laptop.next('offer')).fromUserId, a.id);
  await phone.none('offer', 150);
  // Accepted: no cancelling any more, and the caller cannot "accept".
  assert.equal(errorCode(await ca.ack('call_cancel', { sessionId })), 'invalid_state');
  assert.equal(errorCode(await ca.ack('call_accept', { sessionId })), 'forbidden');
  assert.equal(errorCode(await laptop.ack('call_decline', { sessionId })), 'invalid_state');
  ca.close(); // the caller's connection drops: after the grace period the call ends
  assert.equal((await laptop.next('participant_left', () => true, 6000)).reason, 'disconnected');
  assert.equal((await phone.next('call_ended', () => true, 3000)).reason, 'completed');
  for (const c of [phone, laptop, tablet]) c.close();
});

test('declining ends a 1:1 call; both sides learn it', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const ca = await connect(a.token);
  const cb = await connect(b.token);
  const sessionId = await startCall(a, [b], 'video');
  await cb.next('incoming_call');
  assert.equal((await cb.ack('call_decline', { sessionId })).ok, true);
  assert.equal((await ca.next('call_declined')).userId, b.id);
  assert.equal((await ca.next('call_ended')).reason, 'declined');
  assert.equal((await cb.next('call_ended')).reason, 'declined');
  assert.equal((await history(a))[0].outcome, 'declined');
  assert.equal((await history(b))[0].outcome, 'declined');
  assert.equal(errorCode(await cb.ack('join_call', { sessionId })), 'call_not_found');
  ca.close(); cb.close();
});

test('in a group call one decline leaves the others ringing', async () => {
  const [a, b, c] = [await newUser('caller'), await newUser('b'), await newUser('c')];
  const [cb, cc] = [await connect(b.token), await connect(c.token)];
  const sessionId = await startCall(a, [b, c]);
  await cb.next('incoming_call');
  await cc.next('incoming_call');
  assert.equal((await cb.ack('call_decline', { sessionId })).ok, true);
  await cc.none('call_ended', 200);
  assert.equal((await cc.ack('call_decline', { sessionId })).ok, true);
  assert.equal((await cc.next('call_ended')).reason, 'declined');
  cb.close(); cc.close();
});

test('the caller cancels before an answer', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const ca = await connect(a.token);
  const cb = await connect(b.token);
  const sessionId = await startCall(a, [b]);
  await cb.next('incoming_call');
  assert.equal(errorCode(await cb.ack('call_cancel', { sessionId })), 'forbidden');
  assert.equal((await ca.ack('call_cancel', { sessionId })).ok, true);
  assert.equal((await cb.next('call_ended')).reason, 'cancelled');
  assert.equal((await history(a))[0].outcome, 'cancelled');
  assert.equal((await history(b))[0].outcome, 'missed');
  ca.close(); cb.close();
});

test('ringing times out as missed', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const cb = await connect(b.token);
  const sessionId = await startCall(a, [b]);
  assert.equal((await cb.next('incoming_call')).ringTimeoutS, 2);
  const ended = await cb.next('call_ended', () => true, 5000);
  assert.deepEqual(ended, { sessionId, reason: 'timeout' });
  assert.equal((await history(a))[0].outcome, 'missed');
  assert.equal((await history(b))[0].outcome, 'missed');
  cb.close();
});

test('history pages and refuses bad limits', async () => {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const ca = await connect(a.token);
  for (let i = 0; i < 3; i++) {
    const sessionId = await startCall(a, [b]);
    assert.equal((await ca.ack('call_cancel', { sessionId })).ok, true);
  }
  const page = await api('GET', '/api/v1/calls?limit=2', null, a.token);
  assert.equal(page.body.calls.length, 2);
  const rest = await api('GET', `/api/v1/calls?limit=2&before=${page.body.next_before}`, null, a.token);
  assert.equal(rest.body.calls.length, 1);
  assert.equal(rest.body.next_before, undefined);
  assert.equal((await api('GET', '/api/v1/calls?limit=0', null, a.token)).body.error.code, 'invalid_limit');
  assert.equal((await api('GET', '/api/v1/calls?limit=x', null, a.token)).status, 400);
  assert.equal((await api('GET', '/api/v1/calls')).status, 401);
  ca.close();
});

test('starting calls: bad invitees are refused', async () => {
  const a = await newUser('caller');
  const cases = [
    [{ invitees: [] }, 400, 'invalid_invitees'],
    [{ invitees: [a.id] }, 400, 'invalid_invitees'],
    [{ invitees: ['00000000-0000-0000-0000-000000000000'] }, 404, 'not_found'],
    [{ invitees: ['x'.repeat(100)] }, 400, 'invalid_invitees'],
    [{ invitees: ['a', 'b', 'c', 'd'] }, 400, 'too_many_participants'],
    [{ invitees: 'bob' }, 422, null],
    [{ invitees: [], media: 'smell' }, 422, null],
  ];
  for (const [body, status, code] of cases) {
    const r = await api('POST', '/api/v1/calls', body, a.token);
    assert.equal(r.status, status, JSON.stringify([body, r.body]));
    if (code) assert.equal(r.body.error.code, code);
  }
  assert.equal((await api('POST', '/api/v1/calls', { invitees: [a.id] })).status, 401);
  const ca = await connect(a.token);
  assert.equal(errorCode(await ca.ack('call_start', { invitees: [a.id] })), 'invalid_invitees');
  assert.equal(errorCode(await ca.ack('call_start', { media: 'audio' })), 'bad_request');
  ca.close();
});

test('an answer sent the moment the offer arrives moves the call on at once', async () => {
  // The offer and answer are relayed outside the call's owner task; its state must still
  // follow them in order, so a `call_connected` right behind the answer is accepted.
  const a = await newUser('caller');
  const b = await newUser('callee');
  const ca = await connect(a.token);
  const cb = await connect(b.token);
  for (let round = 0; round < 10; round++) {
    const sessionId = await startCall(a, [b]);
    assert.equal((await ca.ack('join_call', { sessionId })).ok, true);
    assert.equal((await cb.ack('join_call', { sessionId })).ok, true);
    ca.emit('offer', { sessionId, targetUserId: b.id, sdp: SDP_OFFER });
    await cb.next('offer');
    cb.emit('answer', { sessionId, targetUserId: a.id, sdp: SDP_ANSWER });
    assert.equal((await cb.ack('call_connected', { sessionId })).state, 'connected', `round ${round}`);
    assert.equal((await cb.ack('leave_call')).left, true);
    await ca.next('call_ended'); // a 1:1 call ends when either side leaves: capacity is free again
  }
  ca.close();
  cb.close();
});

test('state machine refusals: connected before an answer, events on ended calls', async () => {
  const { a, b, ca, cb, sessionId } = await callInProgress();
  assert.equal(errorCode(await ca.ack('call_connected', { sessionId })), 'invalid_state');
  ca.emit('offer', { sessionId, targetUserId: b.id, sdp: SDP_OFFER });
  await cb.next('offer');
  assert.equal(errorCode(await ca.ack('call_connected', { sessionId })), 'invalid_state', 'offered, not answered');
  cb.emit('answer', { sessionId, targetUserId: a.id, sdp: SDP_ANSWER });
  await ca.next('answer');
  assert.equal((await ca.ack('call_connected', { sessionId })).state, 'connected');
  assert.equal((await cb.ack('leave_call')).left, true);
  await ca.next('call_ended');
  assert.equal(errorCode(await ca.ack('ice_candidate', { sessionId, targetUserId: b.id, candidate: CANDIDATE })), 'invalid_state');
  assert.equal(errorCode(await ca.ack('mute_audio', { muted: true })), 'not_a_participant');
  assert.equal(errorCode(await ca.ack('call_connected', { sessionId })), 'call_not_found');
  assert.equal((await ca.ack('leave_call')).left, false);
  ca.close(); cb.close();
});
