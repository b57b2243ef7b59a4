#!/usr/bin/env node
// Markdown summary of scripts/bench-signaling.sh's JSON lines: medians per scenario, placement
// and server, the ours/node ratio of server CPU per message (or per connection), and the
// issue's targets. usage: node signaling-summary.mjs results.jsonl [more.jsonl …]
import { readFileSync } from 'node:fs';

const OTHER_MAX = Number(process.env.OTHER_MAX || 0.15);
const allRows = process.argv.slice(2).flatMap((f) => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)));
// A run during which other processes used more than OTHER_MAX cores is "contaminated": a row's
// medians use only the clean runs when it has any (the runs column says "clean/all").
const contaminated = (r) => (r.other_cpu_cores_during_run || 0) > OTHER_MAX;
const rows = [];
{
  const byKey = new Map();
  for (const r of allRows) { const k = `${r.scenario}|${r.pin}|${r.server}`; if (!byKey.has(k)) byKey.set(k, []); byKey.get(k).push(r); }
  for (const rs of byKey.values()) { const clean = rs.filter((r) => !contaminated(r)); rows.push(...(clean.length ? clean : rs)); }
}
const allCount = (k) => allRows.filter((r) => `${r.scenario}|${r.pin}|${r.server}` === k).length;
const median = (xs) => {
  const a = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((x, y) => x - y);
  if (!a.length) return null;
  const m = a.length >> 1;
  return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
};
const sum = (xs) => xs.reduce((s, x) => s + (typeof x === 'number' ? x : 0), 0);
const max = (xs) => Math.max(0, ...xs.filter((x) => typeof x === 'number'));
const fmt = (x, d = 1) => (x == null ? '–' : Number(x).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }).replace(/,/g, ' '));
const OURS = 'securevox';
const order = ['relay-a', 'relay-b', 'relay-paced', 'relay-a-procs2', 'connect-2k', 'connect-10k'];
const groups = new Map();
for (const r of rows) {
  const k = `${r.scenario}|${r.pin}|${r.server}`;
  if (!groups.has(k)) groups.set(k, []);
  groups.get(k).push(r);
}
const keys = [...new Set(rows.map((r) => `${r.scenario}|${r.pin}`))]
  .sort((a, b) => (order.indexOf(a.split('|')[0]) - order.indexOf(b.split('|')[0])) || a.localeCompare(b));
const cpu = (r) => (r.mode === 'connect' ? r.server_cpu_us_per_conn : r.server_cpu_us_per_msg);
const errs = (rs) => {
  const o = {};
  for (const r of rs) for (const [k, v] of Object.entries(r.server_errors || {})) o[k] = (o[k] || 0) + v;
  return Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k}×${v}`).join(' ') : '0';
};

const auths = [...new Set(rows.map((r) => r.auth))].join(', ');
console.log(`Runs: ${allRows.length} (${allRows.filter((r) => !contaminated(r)).length} clean); auth mode: ${auths}; medians over the runs of each row (a fresh server per run). "other CPU": cores used by other processes while load.js ran (should be ~0); rows use their clean runs (other CPU ≤ ${OTHER_MAX}) when they have any; "runs" = used/all.\n`);
console.log('| scenario | placement | server | runs | msgs/s (conn/s) | p50 ms | p99 ms | lost (max) | dup / misrouted / reordered | conn+join failed | server errors | server CPU µs/msg (µs/conn) | CPU ours/node | server CPU util | RSS idle MB | RSS peak MB | KB/idle conn | load CPU util | other CPU (max) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const k of keys) {
  const [sc, pin] = k.split('|');
  const node = groups.get(`${k}|node`) || [];
  for (const server of [OURS, 'node']) {
    const rs = groups.get(`${k}|${server}`);
    if (!rs) continue;
    const m = (f) => median(rs.map(f));
    const connect = rs[0].mode === 'connect';
    const nodeCpu = median(node.map(cpu));
    const ratio = server === OURS && nodeCpu ? m(cpu) / nodeCpu : null;
    const fails = sum(rs.map((r) => (r.connect_failed || 0) + (r.join_failed || 0) + (r.failed || 0)));
    console.log(`| ${sc} | ${pin} | ${server === OURS ? '**securevox**' : 'node'} | ${rs.length}/${allCount(`${k}|${server}`)} | ${fmt(m((r) => r.msgs_per_s), 0)} | ${fmt(m((r) => r.p50_ms), 2)} | ${fmt(m((r) => r.p99_ms), 2)} | `
      + `${fmt(m((r) => r.lost), 0)} (${fmt(max(rs.map((r) => r.lost)), 0)}) | ${connect ? '–' : `${sum(rs.map((r) => r.duplicates))} / ${sum(rs.map((r) => r.misrouted))} / ${sum(rs.map((r) => r.reordered))}`} | ${fails} | ${errs(rs)} | `
      + `${connect ? `(${fmt(m(cpu), 0)})` : fmt(m(cpu), 1)} | ${ratio == null ? '' : `**${ratio.toFixed(2)}×**`} | ${connect ? '–' : fmt(m((r) => r.server_cpu_util), 2)} | `
      + `${fmt(m((r) => r.server_rss_idle_mb))} | ${fmt(m((r) => r.server_rss_peak_mb))} | ${connect ? fmt(m((r) => r.server_kb_per_conn)) : '–'} | ${connect ? '–' : fmt(m((r) => r.load_cpu_util), 2)} | ${fmt(max(rs.map((r) => r.other_cpu_cores_during_run)), 2)} |`);
  }
}

// ------------------------------------------------------------ idle connections
const conn = rows.filter((r) => r.mode === 'connect');
if (conn.length) {
  console.log('\nIdle authenticated connections (RSS just after start → when all are connected → after the hold):\n');
  console.log('| scenario | placement | server | runs | RSS at start MB | RSS when connected MB | RSS after hold MB | KB/conn (load.js: vs RSS at its start) | KB/conn (vs RSS just after start) | connected | alive after hold | /health connectedUsers |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const k of keys.filter((k) => k.startsWith('connect'))) {
    for (const server of [OURS, 'node']) {
      const rs = groups.get(`${k}|${server}`);
      if (!rs) continue;
      const m = (f) => median(rs.map(f));
      const [sc, pin] = k.split('|');
      console.log(`| ${sc} | ${pin} | ${server} | ${rs.length} | ${fmt(m((r) => r.server_rss_idle_mb))} | ${fmt(m((r) => r.server_rss_connected_mb))} | ${fmt(m((r) => r.server_rss_mb))} | ${fmt(m((r) => r.server_kb_per_conn))} | ${fmt(m((r) => r.server_kb_per_idle_conn_vs_start))} | `
        + `${rs.map((r) => r.connected).join(' / ')} | ${rs.map((r) => r.alive_after_hold).join(' / ')} | ${rs.map((r) => r.health_connected_users).join(' / ')} |`);
    }
  }
}

// ------------------------------------------------------------ targets
const ours = rows.filter((r) => r.server === OURS);
const nodeRows = rows.filter((r) => r.server === 'node');
const lines = [];
const check = (name, ok, detail) => lines.push(`- ${ok == null ? '?' : ok ? 'MET' : 'MISSED'}: ${name} — ${detail}`);
for (const pin of [...new Set(rows.map((r) => r.pin))]) {
  for (const sc of ['relay-a', 'relay-b']) {
    const o = median(ours.filter((r) => r.scenario === sc && r.pin === pin).map(cpu));
    const n = median(nodeRows.filter((r) => r.scenario === sc && r.pin === pin).map(cpu));
    if (o != null && n != null) check(`server CPU per relayed message ≤ 0.4× node (${sc}, ${pin})`, o / n <= 0.4, `${o.toFixed(1)} vs ${n.toFixed(1)} µs/msg = ${(o / n).toFixed(2)}×`);
  }
  const o = median(ours.filter((r) => r.scenario === 'relay-paced' && r.pin === pin).map((r) => r.p99_ms));
  const n = median(nodeRows.filter((r) => r.scenario === 'relay-paced' && r.pin === pin).map((r) => r.p99_ms));
  if (o != null && n != null) check(`lower p99 than node at paced 5k msg/s (${pin})`, o < n, `${o.toFixed(2)} vs ${n.toFixed(2)} ms`);
}
const relayOurs = ours.filter((r) => r.mode === 'relay');
if (relayOurs.length) {
  const lost = sum(relayOurs.map((r) => r.lost));
  const reo = sum(relayOurs.map((r) => r.reordered));
  const dm = sum(relayOurs.map((r) => (r.duplicates || 0) + (r.misrouted || 0)));
  const checked = sum(relayOurs.map((r) => r.order_checked));
  check('0 lost, 0 reordered', lost === 0 && reo === 0 && dm === 0, `over ${relayOurs.length} relay runs: lost ${lost}, reordered ${reo} (of ${checked} checked per sender), duplicates+misrouted ${dm}`);
}
const c10 = ours.filter((r) => r.scenario === 'connect-10k');
if (c10.length) {
  const kb = median(c10.map((r) => r.server_kb_per_idle_conn_vs_start));
  check('≤ 16 KB per idle authenticated connection at 10k', kb <= 16, `median ${kb} KB/conn (RSS after the hold − RSS just after start) / connected`);
  const held = c10.every((r) => r.connected === 10000 && r.alive_after_hold === 10000);
  check('10 000 idle authenticated connections held', held, c10.map((r) => `${r.connected} connected, ${r.alive_after_hold} alive after ${r.hold_s}s`).join('; '));
}
if (ours.length) {
  const idle = median(ours.map((r) => r.server_rss_idle_mb));
  check('idle RSS ≤ 20 MB', idle <= 20, `median ${idle} MB 1 s after start (max ${max(ours.map((r) => r.server_rss_idle_mb))})`);
}
console.log('\nTargets (from the issue):\n');
console.log(lines.join('\n'));
const shut = rows.filter((r) => r.server_panics_at_shutdown);
if (shut.length) console.log(`\nServer panics at shutdown (SIGTERM after the run): ${shut.length} run(s), ${sum(shut.map((r) => r.server_panics_at_shutdown))} panics (${[...new Set(shut.map((r) => r.scenario))].join(', ')}); see the logs.`);
const bad = rows.filter((r) => r.error || r.finish_reason !== 'complete' || r.connect_failed || r.join_failed || r.failed || r.server_alive_at_end === false || r.server_panics_during_run);
if (bad.length) {
  console.log(`\n${bad.length} run(s) incomplete, with failures, or with a server panic/crash:`);
  for (const r of bad) console.log(`- ${r.server}/${r.scenario}/${r.pin}/rep${r.rep}: finish ${r.finish_reason || r.error}, conn/join failed ${(r.connect_failed || 0) + (r.failed || 0)}/${r.join_failed || 0}, server alive at end ${r.server_alive_at_end}, exit ${r.server_exit_code}, panics during the run ${r.server_panics_during_run}`);
}
