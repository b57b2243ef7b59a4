// Socket authentication: handshake token, the seed's `authenticate` event, refusals, the
// unauthenticated time limit, and sockets closed when their session or account ends.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { ADMIN, BASE, Client, api, connect, errorCode, forgeToken, newUser, sleep } from './lib.mjs';

function refusal(auth) {
  return new Promise((resolve, reject) => {
    const socket = io(BASE, { auth, transports: ['websocket'], forceNew: true, reconnection: false });
    socket.on('connect', () => { socket.close(); reject(new Error('connected with a bad token')); });
    socket.on('connect_error', (err) => { socket.close(); resolve(err.message); });
  });
}

test('a handshake token authenticates at once', async () => {
  const u = await newUser();
  const c = await connect(u.token);
  const hello = await api('GET', '/api/v1/me', null, u.token);
  assert.equal(hello.status, 200);
  c.close();
});

test('bad, expired and revoked handshake tokens are refused with a code', async () => {
  assert.match(await refusal({ token: 'not-a-jwt' }), /^invalid_token: /);
  const u = await newUser();
  const now = Math.floor(Date.now() / 1000);
  const expired = forgeToken({ sub: u.id, sid: u.sessionId, iat: now - 100, exp: now - 10, typ: 'access' });
  assert.match(await refusal({ token: expired }), /^token_expired: /);
  assert.equal((await api('POST', '/api/v1/auth/logout', null, u.token)).status, 204);
  assert.match(await refusal({ token: u.token }), /^session_revoked: /);
});

test('the seed flow: connect, then authenticate by event, emitted immediately', async () => {
  const u = await newUser();
  // Emitted from the connect callback, before the server could have finished anything else:
  // the event must not be dropped.
  const c = await connect(u.token, { auth: 'event' });
  const ack = await c.ack('authenticate', { token: u.token });
  assert.deepEqual([ack.ok, ack.userId], [true, u.id], 'authenticating again as the same user is fine');
  const other = await newUser();
  assert.equal(errorCode(await c.ack('authenticate', { token: other.token })), 'already_authenticated');
  c.close();
});

test('an emit queued before the connection opens is answered', async () => {
  const u = await newUser();
  const socket = io(BASE, { transports: ['websocket'], forceNew: true, reconnection: false });
  const c = new Client(socket);
  socket.emit('authenticate', { token: u.token }); // buffered by the client until connected
  const hello = await c.next('authenticated');
  assert.equal(hello.userId, u.id);
  c.close();
});

test('events before authentication get unauthenticated; a bad authenticate gets its code', async () => {
  const c = await connect(null);
  assert.equal(errorCode(await c.ack('join_call', { sessionId: 'x' })), 'unauthenticated');
  const err = await c.next('error');
  assert.equal(err.code, 'unauthenticated');
  assert.equal(errorCode(await c.ack('ice_candidate', { targetUserId: 'x', candidate: null })), 'unauthenticated');
  assert.equal(errorCode(await c.ack('authenticate', { token: 'garbage' })), 'invalid_token');
  assert.equal(errorCode(await c.ack('authenticate', {})), 'bad_request');
  assert.equal(errorCode(await c.ack('no_such_event', {})), 'unknown_event');
  c.close();
});

test('a socket that does not authenticate in time is disconnected', async () => {
  const c = await connect(null);
  const err = await c.next('error', (e) => e.code === 'auth_timeout', 4000);
  assert.equal(err.code, 'auth_timeout');
  assert.equal(await c.next('disconnect', () => true, 2000), 'io server disconnect');
});

test('polling transport with the upgrade works too', async () => {
  const u = await newUser();
  const c = await connect(u.token, { transports: ['polling', 'websocket'] });
  await new Promise((resolve) => (c.socket.io.engine.transport.name === 'websocket' ? resolve() : c.socket.io.engine.once('upgrade', resolve)));
  assert.equal(c.socket.io.engine.transport.name, 'websocket');
  assert.equal((await c.ack('set_presence', { status: 'away' })).status, 'away');
  c.close();
});

test('logout, session revocation, password change and disabling close the sockets', async () => {
  const u = await newUser();
  const c = await connect(u.token);
  assert.equal((await api('POST', '/api/v1/auth/logout', null, u.token)).status, 204);
  assert.equal(await c.next('disconnect'), 'io server disconnect');

  const v = await newUser();
  const login = await api('POST', '/api/v1/auth/login', { username: v.username, password: 'correct horse battery' });
  const phone = await connect(v.token);
  const laptop = await connect(login.body.access_token);
  assert.equal((await api('DELETE', `/api/v1/me/sessions/${v.sessionId}`, null, login.body.access_token)).status, 204);
  assert.equal(await phone.next('disconnect'), 'io server disconnect');
  await laptop.none('disconnect', 300);

  const again = await api('POST', '/api/v1/auth/login', { username: v.username, password: 'correct horse battery' });
  const tablet = await connect(again.body.access_token);
  const change = await api('POST', '/api/v1/me/password', { current_password: 'correct horse battery', new_password: 'another long password' }, login.body.access_token);
  assert.equal(change.status, 204);
  assert.equal(await tablet.next('disconnect'), 'io server disconnect', 'other sessions end');
  await laptop.none('disconnect', 300);

  const disabled = await api('PATCH', `/api/v1/admin/users/${v.id}`, { disabled: true }, ADMIN);
  assert.equal(disabled.status, 200);
  assert.equal(await laptop.next('disconnect'), 'io server disconnect');
  await sleep(50);
});
