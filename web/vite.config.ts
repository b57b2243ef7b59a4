import { defineConfig } from "vitest/config";

export default defineConfig({
  build: {
    // ts-mls and @noble need BigInt and top-level await.
    target: "es2022",
  },
  test: {
    // The interop test needs the real server and the Rust CLI: it is run by
    // crates/securevox-client/tests/web_interop.rs (which sets SECUREVOX_URL), and skips
    // itself without them.
    include: ["tests/**/*.test.ts"],
    testTimeout: 60_000,
  },
});
