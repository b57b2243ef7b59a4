// Helpers for driving a running SecureVox with the official socket.io-client.
// The Rust test crates/securevox/tests/signaling.rs starts the server and sets:
//   SECUREVOX_URL         http://127.0.0.1:PORT
//   SECUREVOX_JWT_SECRET  the server's signing key (only to forge expired tokens)
//   SECUREVOX_ADMIN_TOKEN an admin's access token
import { io } from 'socket.io-client';
import { createHmac } from 'node:crypto';
import assert from 'node:assert/strict';

export const BASE = process.env.SECUREVOX_URL;
export const ADMIN = process.env.SECUREVOX_ADMIN_TOKEN;
if (!BASE || !ADMIN) throw new Error('run through crates/securevox/tests/signaling.rs');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function api(method, path, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const r = await fetch(BASE + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* empty body */ }
  return { status: r.status, body: json };
}

let counter = 0;
export async function newUser(name = 'user') {
  const username = `${name}${process.pid}n${++counter}`;
  const r = await api('POST', '/api/v1/auth/register', { username, password: 'correct horse battery' });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.user.id, token: r.body.access_token, sessionId: r.body.session_id, username };
}

export async function startCall(caller, invitees, media = 'audio') {
  const r = await api('POST', '/api/v1/calls', { invitees: invitees.map((u) => u.id), media }, caller.token);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.session_id;
}

/** A JWT signed with the server's key: for tokens the API will not issue (expired ones). */
export function forgeToken(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = createHmac('sha256', process.env.SECUREVOX_JWT_SECRET).update(body).digest('base64url');
  return `${body}.${sig}`;
}

/** A socket that records every event it receives, so tests can wait for or rule out events. */
export class Client {
  constructor(socket) {
    this.socket = socket;
    this.queues = new Map();
    this.waiters = [];
    socket.onAny((event, data) => this.#push(event, data));
    socket.on('disconnect', (reason) => this.#push('disconnect', reason));
    socket.on('connect_error', (err) => this.#push('connect_error', err));
  }

  #push(event, data) {
    const i = this.waiters.findIndex((w) => w.event === event && w.pred(data));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(data);
      return;
    }
    if (!this.queues.has(event)) this.queues.set(event, []);
    this.queues.get(event).push(data);
  }

  /** The next `event` (matching `pred`), already received or yet to come. */
  next(event, pred = () => true, ms = 4000) {
    const queue = this.queues.get(event) || [];
    const i = queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.timer !== timer);
        reject(new Error(`no ${event} within ${ms} ms`));
      }, ms);
      this.waiters.push({ event, pred, resolve, timer });
    });
  }

  /** Asserts that no `event` arrives within `ms`. */
  async none(event, ms = 300, pred = () => true) {
    await sleep(ms);
    const got = (this.queues.get(event) || []).filter(pred);
    assert.equal(got.length, 0, `unexpected ${event}: ${JSON.stringify(got)}`);
  }

  /** Emits with an ack and returns the ack's payload. */
  ack(event, data) {
    return data === undefined
      ? this.socket.timeout(4000).emitWithAck(event)
      : this.socket.timeout(4000).emitWithAck(event, data);
  }

  emit(event, data) {
    this.socket.emit(event, data);
  }

  close() {
    this.socket.close();
  }
}

/** Opens a socket; with `token`, authenticated in the handshake (or by event) before returning. */
export async function connect(token, { auth = 'handshake', transports = ['websocket'] } = {}) {
  const socket = io(BASE, {
    auth: token && auth === 'handshake' ? { token } : undefined,
    transports,
    forceNew: true,
    reconnection: false,
  });
  const client = new Client(socket);
  if (!token) {
    await new Promise((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    return client;
  }
  if (auth === 'event') {
    socket.on('connect', () => socket.emit('authenticate', { token }));
  }
  await client.next('authenticated');
  return client;
}

export function errorCode(ack) {
  assert.equal(ack.ok, false, `expected a refusal: ${JSON.stringify(ack)}`);
  return ack.error.code;
}

export const SDP_OFFER = 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n';
export const SDP_ANSWER = SDP_OFFER.replace('4611731400430051336', '1');
export const CANDIDATE = { candidate: 'candidate:842163049 1 udp 1677729535 127.0.0.1 50000 typ host generation 0', sdpMid: '0', sdpMLineIndex: 0 };

/** Two users in a call, both joined: returns { a, b, ca, cb, sessionId }. */
export async function callInProgress() {
  const a = await newUser('caller');
  const b = await newUser('callee');
  const sessionId = await startCall(a, [b]);
  const ca = await connect(a.token);
  const cb = await connect(b.token);
  assert.equal((await ca.ack('join_call', { sessionId })).ok, true);
  assert.equal((await cb.ack('join_call', { sessionId })).ok, true);
  await ca.next('participant_joined');
  return { a, b, ca, cb, sessionId };
}
