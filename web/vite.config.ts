import { defineConfig } from "vitest/config";

// `npm run dev` serves the app with the API and Socket.IO proxied to a server started with
// `cargo run -- serve` (SECUREVOX_DEV_SERVER, default http://127.0.0.1:8080).
const server = process.env.SECUREVOX_DEV_SERVER ?? "http://127.0.0.1:8080";

export default defineConfig({
  // TSX with Preact's automatic runtime (tsconfig: jsx react-jsx, jsxImportSource preact).
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    // ts-mls and @noble need BigInt and top-level await.
    target: "es2022",
  },
  server: {
    proxy: {
      "/api": server,
      "/health": server,
      "/socket.io": { target: server, ws: true },
    },
  },
  test: {
    // The interop test needs the real server and the Rust CLI: it is run by
    // crates/securevox-client/tests/web_interop.rs (which sets SECUREVOX_URL), and skips
    // itself without them.
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
