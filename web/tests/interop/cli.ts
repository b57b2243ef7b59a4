// What the interop tests share: the server and the `securevox-cli` binary they were given
// (crates/securevox-client/tests/common/web.rs sets SECUREVOX_URL and SECUREVOX_CLI; without
// them the tests skip themselves), and running the CLI with `--json`.
import { execFile } from "node:child_process";
import { expect } from "vitest";

export const SERVER = process.env.SECUREVOX_URL;
export const CLI = process.env.SECUREVOX_CLI;
export const PASSWORD = "correct horse battery";
/** The CLI's environment: the password it reads instead of prompting. */
export const cliEnv = { ...process.env, SECUREVOX_PASSWORD: PASSWORD };

export interface CliResult {
  ok: boolean;
  value: unknown;
  stderr: string;
}

/** Runs `securevox-cli --server URL --profile DIR --json ARGS…`; its output as JSON when it
 *  is JSON, else as text. */
export function cli(profile: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(CLI ?? "securevox-cli", ["--server", SERVER ?? "", "--profile", profile, "--json", ...args], { env: cliEnv }, (error, stdout, stderr) => {
      let value: unknown = stdout;
      try {
        value = JSON.parse(stdout);
      } catch {
        // not JSON: kept as text
      }
      resolve({ ok: error === null, value, stderr });
    });
  });
}

/** Runs the CLI and returns its JSON answer; fails the test on an error or anything on
 *  stderr (`messages` reports sync errors and unvouched members, "WARNING: …", there). */
export async function cliOk<T>(profile: string, args: string[]): Promise<T> {
  const result = await cli(profile, args);
  expect(result.ok, `securevox-cli ${args.join(" ")}: ${result.stderr}`).toBe(true);
  expect(result.stderr, `securevox-cli ${args.join(" ")}`).toBe("");
  return result.value as T;
}
