// Opens Socket.IO connections with the official socket.io-client and prints every event each
// one receives as a JSON line: {"socket": name, "event": ..., "data": ...}. Driven by Rust
// tests (crates/securevox-client/tests/push.rs), which read the lines.
//   SECUREVOX_URL      the server
//   WATCH_SOCKETS      JSON: [{"name": "...", "auth": {...}}]
// Prints {"ready": true} once every socket is authenticated or refused; runs until killed.
import { io } from 'socket.io-client';

const sockets = JSON.parse(process.env.WATCH_SOCKETS);
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
let settled = 0;
const settle = () => { if (++settled === sockets.length) print({ ready: true }); };

for (const { name, auth } of sockets) {
  const socket = io(process.env.SECUREVOX_URL, { auth, transports: ['websocket'], reconnection: false });
  socket.onAny((event, data) => {
    print({ socket: name, event, data });
    if (event === 'authenticated') settle();
  });
  socket.on('connect_error', (err) => {
    print({ socket: name, event: 'connect_error', data: err.message });
    settle();
  });
}
