'use strict';
// Preload for the signaling load generator (load.js), which counts lost, duplicate and
// misrouted messages but does not check that each sender's messages arrive in order.
// Run as `NODE_OPTIONS="--require /abs/path/signaling-order-check.cjs" node load.js …` from the
// harness directory (so `socket.io-client` resolves to the copy load.js uses). It wraps
// Socket#emitEvent (where socket.io-client dispatches every incoming event) and, for each
// `ice_candidate` carrying load.js's `{src, seq}`, checks that seq grows per sender. At exit
// each process (the coordinator and any --procs children) appends one JSON line
// `{pid, checked, reordered, max_gap_back}` to $ORDER_CHECK_OUT.
const fs = require('fs');

const { Socket } = require(require.resolve('socket.io-client', { paths: [process.cwd()] }));
const last = new Map(); // src -> highest seq seen
let checked = 0;
let reordered = 0;
let maxGapBack = 0;

const original = Socket.prototype.emitEvent;
Socket.prototype.emitEvent = function emitEvent(args) {
  if (args && args[0] === 'ice_candidate') {
    const c = args[1] && args[1].candidate;
    if (c && typeof c.src === 'number' && typeof c.seq === 'number') {
      checked++;
      const prev = last.get(c.src);
      if (prev === undefined || c.seq > prev) last.set(c.src, c.seq);
      else if (c.seq < prev) { reordered++; maxGapBack = Math.max(maxGapBack, prev - c.seq); }
      // c.seq === prev is a duplicate; load.js counts those itself
    }
  }
  return original.call(this, args);
};

process.on('exit', () => {
  const out = process.env.ORDER_CHECK_OUT;
  if (!out) return;
  try {
    fs.appendFileSync(out, JSON.stringify({ pid: process.pid, checked, reordered, max_gap_back: maxGapBack }) + '\n');
  } catch (e) { /* best effort */ }
});
