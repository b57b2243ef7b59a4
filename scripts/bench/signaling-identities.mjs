#!/usr/bin/env node
// Identities for the signaling benchmark (scripts/bench-signaling.sh): SecureVox only accepts
// users it knows, calls it created and tokens it signed, so they are made through its own API
// and written in the format of load.js's `--tokens FILE`.
//
//   node signaling-identities.mjs users --url URL --count N --out users.json [--concurrency 4]
//       registers N users (POST /api/v1/auth/register; argon2, so ~25–45/s on 2 cores) and
//       writes [{username, userId, token}] (the access token from registration).
//   node signaling-identities.mjs calls --url URL --users users.json --calls C --participants P --out tokens.json
//       starts C calls (POST /api/v1/calls, caller = participant 0, the others invited), each
//       with its own P users, and writes {"calls":[{sessionId, participants:[{userId, token}]}]}.
//   node signaling-identities.mjs connections --users users.json --count N --out tokens.json
//       writes {"connections":[{userId, token}]}: N connections spread round-robin over the
//       users, each reusing its user's access token (one user, several devices).
import { readFileSync, writeFileSync } from 'node:fs';

function parseArgs(argv) {
  const o = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) { o._.push(a); continue; }
    const eq = a.indexOf('=');
    if (eq > 0) o[a.slice(2, eq)] = a.slice(eq + 1);
    else o[a.slice(2)] = argv[++i];
  }
  return o;
}

const args = parseArgs(process.argv.slice(2));
const cmd = args._[0];
const need = (k) => {
  if (args[k] === undefined) { console.error(`--${k} is required`); process.exit(2); }
  return args[k];
};
const base = () => need('url').replace(/\/$/, '');
const log = (...a) => console.error('[identities]', ...a);

async function post(path, body, token, tries = 5) {
  for (let attempt = 1; ; attempt++) {
    let res;
    try {
      res = await fetch(base() + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30000),
      });
    } catch (e) {
      if (attempt >= tries) throw e;
      await new Promise((r) => setTimeout(r, 200 * attempt));
      continue;
    }
    const text = await res.text();
    if (res.ok) return JSON.parse(text);
    if ((res.status === 429 || res.status >= 500) && attempt < tries) {
      await new Promise((r) => setTimeout(r, 200 * attempt));
      continue;
    }
    throw new Error(`POST ${path} -> ${res.status} ${text.slice(0, 300)}`);
  }
}

async function pool(n, limit, fn) {
  let next = 0;
  const worker = async () => { while (next < n) { const i = next++; await fn(i); } };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
}

async function users() {
  const count = Number(need('count'));
  const prefix = args.prefix || 'bench';
  const password = args.password || 'bench password 1234';
  const out = new Array(count);
  const t0 = performance.now();
  let done = 0;
  await pool(count, Number(args.concurrency || 4), async (i) => {
    const username = `${prefix}${String(i).padStart(5, '0')}`;
    const r = await post('/api/v1/auth/register', { username, password });
    if (!r.access_token || !r.user || !r.user.id) throw new Error('unexpected register answer: ' + JSON.stringify(r).slice(0, 300));
    out[i] = { username, userId: r.user.id, token: r.access_token };
    if (++done % 100 === 0) log(`registered ${done}/${count} (${(done / ((performance.now() - t0) / 1000)).toFixed(1)}/s)`);
  });
  writeFileSync(need('out'), JSON.stringify(out));
  log(`registered ${count} users in ${((performance.now() - t0) / 1000).toFixed(1)}s`);
}

async function calls() {
  const all = JSON.parse(readFileSync(need('users'), 'utf8'));
  const C = Number(need('calls'));
  const P = Number(need('participants'));
  if (C * P > all.length) throw new Error(`${C} calls x ${P} participants need ${C * P} users; ${all.length} given`);
  const out = new Array(C);
  const t0 = performance.now();
  await pool(C, Number(args.concurrency || 8), async (c) => {
    const members = all.slice(c * P, c * P + P);
    const r = await post('/api/v1/calls', { invitees: members.slice(1).map((u) => u.userId), media: 'audio' }, members[0].token);
    if (!r.session_id) throw new Error('unexpected call answer: ' + JSON.stringify(r).slice(0, 300));
    out[c] = { sessionId: r.session_id, participants: members.map((u) => ({ userId: u.userId, token: u.token })) };
  });
  writeFileSync(need('out'), JSON.stringify({ calls: out }));
  log(`started ${C} calls of ${P} in ${((performance.now() - t0) / 1000).toFixed(2)}s`);
}

function connections() {
  const all = JSON.parse(readFileSync(need('users'), 'utf8'));
  const N = Number(need('count'));
  const out = Array.from({ length: N }, (_, i) => ({ userId: all[i % all.length].userId, token: all[i % all.length].token }));
  writeFileSync(need('out'), JSON.stringify({ connections: out }));
  log(`${N} connections over ${Math.min(N, all.length)} users (access tokens reused)`);
}

const commands = { users, calls, connections };
if (!commands[cmd]) {
  console.error('usage: signaling-identities.mjs users|calls|connections [flags] (see the header)');
  process.exit(2);
}
try {
  await commands[cmd]();
} catch (e) {
  console.error('[identities] failed:', e.message);
  process.exit(1);
}
