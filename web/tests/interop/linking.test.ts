// Linking devices between this web core and the Rust `securevox-cli` through the real server
// (docs/E2EE.md, "Linking a device"): a CLI user's new web device is linked by the CLI
// approving its code, then reads what is sent afterwards and writes back; that web device then
// approves a new CLI device of the same user; a refused and a withdrawn request.
//
// Run by crates/securevox-client/tests/web_linking.rs, which starts the server and sets
//   SECUREVOX_URL  the server's base URL (no account on it yet: the CLI user registers first)
//   SECUREVOX_CLI  the path of the built `securevox-cli`
// Without them this test is skipped.
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, digitsOf, MemoryStorage, type Message } from "../../src/core/index.js";
import { CLI, cli, cliEnv, cliOk, PASSWORD, SERVER as GIVEN } from "./cli.js";

const SERVER = GIVEN ?? "";

interface CliMessage {
  conversation_id: string;
  sender_user_id: string;
  sender_device_id: string;
  content: { type: string; body?: string };
}

interface CliSyncReport {
  joined: string[];
  errors: string[];
  warnings: string[];
}

const texts = (messages: (Message | CliMessage)[]) =>
  messages.map((m) => m.content).flatMap((c) => (c.type === "text" && "body" in c && c.body !== undefined ? [c.body] : []));

/** `securevox-cli login USER` in a new profile: resolves with the link code it prints, and a
 *  promise of its final answer (once a signed-in device approved). */
function cliLogin(profile: string, username: string): Promise<{ code: string; done: Promise<{ device_id: string }> }> {
  const child = spawn(CLI ?? "securevox-cli", ["--server", SERVER, "--profile", profile, "--json", "login", username, "--wait", "60"], { env: cliEnv });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const exited = new Promise<number | null>((resolve) => child.on("close", resolve));
  return (async () => {
    const first = await lines.next();
    if (first.done === true) throw new Error(`securevox-cli login printed nothing: ${stderr}`);
    const { link_code } = JSON.parse(first.value) as { link_code: string };
    const done = (async () => {
      const last = await lines.next();
      const status = await exited;
      if (status !== 0 || last.done === true) throw new Error(`securevox-cli login failed (${String(status)}): ${stderr}`);
      return JSON.parse(last.value) as { device_id: string };
    })();
    return { code: link_code, done };
  })();
}

describe.skipIf(GIVEN === undefined || CLI === undefined)("device linking between the web core and securevox-cli", () => {
  let dir: string;
  let alice: string; // alice's first device: the CLI
  let bob: string;
  let team: string;
  let web: Client; // alice's second device: this web core
  let direct: string;
  let safetyBefore: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "securevox-linking-"));
    [alice, bob] = [join(dir, "alice"), join(dir, "bob")];
    await cliOk(alice, ["register", "alice"]);
    // alice is the first account, so admin: she invites bob.
    const login = await fetch(`${SERVER}/api/v1/auth/login`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "alice", password: PASSWORD }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const invite = await fetch(`${SERVER}/api/v1/admin/invites`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
      body: "{}",
    });
    const { code } = (await invite.json()) as { code: string };
    await cliOk(bob, ["register", "bob", "--invite", code]);
    team = (await cliOk<{ conversation_id: string }>(alice, ["group", "create", "Team", "bob"])).conversation_id;
    await cliOk(alice, ["send", team, "before the link"]);
    expect(texts(await cliOk<CliMessage[]>(bob, ["messages", team]))).toEqual(["before the link"]);
    safetyBefore = (await cliOk<{ safety_number: string }>(bob, ["safety-number", "alice"])).safety_number;
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("links a web device when the CLI approves the code it shows", async () => {
    const storage = new MemoryStorage();
    await expect(Client.login(SERVER, "alice", PASSWORD, { storage })).rejects.toMatchObject({ code: "link_required" });
    const pending = await Client.requestLink(SERVER, "alice", PASSWORD, { storage, deviceName: "alice's browser" });
    expect(pending.code).toMatch(/^[0-9]{16}$/);
    expect(await pending.poll()).toBeUndefined();

    const listed = await cliOk<{ id: string; name: string; code: string }[]>(alice, ["link", "list"]);
    expect(listed).toEqual([expect.objectContaining({ id: pending.id, name: "alice's browser", code: pending.code })]);
    const wrong = await cli(alice, ["link", "approve", "1234567812345678"]);
    expect(wrong.ok).toBe(false);
    expect(wrong.stderr).toMatch(/code/);
    const grouped = (pending.code.match(/.{4}/g) ?? []).join(" ");
    const device = await cliOk<{ id: string }>(alice, ["link", "approve", grouped]);

    web = await pending.wait({ intervalMs: 200 });
    expect(web.deviceId).toBe(device.id);
    expect(web.userId).toBe((await storage.loadProfile())?.userId);
    expect((await web.devices()).map((d) => d.id)).toContain(device.id);
    // In the group by external Commit, with no history from before (forward secrecy).
    expect(await storage.groupIds()).toEqual([team]);
    expect(await web.history()).toEqual([]);
  });

  it("the linked web device reads what is sent afterwards, and its messages reach both", async () => {
    await cliOk(bob, ["send", team, "after the link"]);
    const report = await web.sync();
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(texts(report.messages)).toEqual(["after the link"]);

    await web.sendText(team, "from alice's browser");
    const atBob = await cliOk<CliMessage[]>(bob, ["messages", team]);
    expect(texts(atBob).at(-1)).toBe("from alice's browser");
    expect(atBob.at(-1)?.sender_device_id).toBe(web.deviceId);
    const atAlice = await cliOk<CliMessage[]>(alice, ["messages", team]);
    expect(texts(atAlice).slice(-2)).toEqual(["after the link", "from alice's browser"]);
    // One identity, two devices: bob's safety number for alice is unchanged.
    const safetyAfter = await cliOk<{ safety_number: string }>(bob, ["safety-number", "alice"]);
    expect(safetyAfter.safety_number).toBe(safetyBefore);
    expect(await web.safetyNumber("bob")).toBe(safetyBefore);
  });

  it("the web device approves a new CLI device of the same user", async () => {
    // A conversation the web device made: its GroupInfo is the web's.
    direct = await web.createDirect("bob");
    expect((await cliOk<CliSyncReport>(bob, ["sync"])).joined).toEqual([direct]);
    // alice's other device, the CLI, is in it as well.
    expect((await cliOk<CliSyncReport>(alice, ["sync"])).joined).toEqual([direct]);

    const alice3 = join(dir, "alice3");
    const login = await cliLogin(alice3, "alice");
    const requests = await web.linkRequests();
    expect(requests).toHaveLength(1);
    const [request] = requests;
    expect(request?.code).toBe(digitsOf(login.code));
    await expect(web.approveLink("0000 0000 0000 0000", request?.id)).rejects.toMatchObject({ code: "link_code_mismatch" });
    const device = await web.approveLink(login.code, request?.id);
    expect((await login.done).device_id).toBe(device.id);

    await cliOk(bob, ["send", team, "hello all of alice"]);
    await cliOk(bob, ["send", direct, "hello in direct"]);
    const atAlice3 = await cliOk<CliMessage[]>(alice3, ["messages"]);
    expect(texts(atAlice3)).toEqual(["hello all of alice", "hello in direct"]);
    await cliOk(alice3, ["send", direct, "from alice's third device"]);

    const report = await web.sync();
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    expect(texts(report.messages)).toEqual(["hello all of alice", "hello in direct", "from alice's third device"]);
    expect(texts(await cliOk<CliMessage[]>(bob, ["messages", direct])).at(-1)).toBe("from alice's third device");
    await web.sendText(team, "the browser still writes");
    expect(texts(await cliOk<CliMessage[]>(alice3, ["messages", team])).at(-1)).toBe("the browser still writes");
  });

  it("a refused request ends the wait; a withdrawn one is gone", async () => {
    const refused = await Client.requestLink(SERVER, "alice", PASSWORD, { storage: new MemoryStorage() });
    await web.rejectLink(refused.id);
    await expect(refused.wait({ intervalMs: 100 })).rejects.toMatchObject({ code: "link_rejected" });

    const withdrawn = await Client.requestLink(SERVER, "alice", PASSWORD, { storage: new MemoryStorage() });
    const stop = new AbortController();
    const waiting = withdrawn.wait({ signal: stop.signal, intervalMs: 100 });
    stop.abort();
    await expect(waiting).rejects.toMatchObject({ code: "link_cancelled" });
    await withdrawn.cancel();
    expect(await web.linkRequests()).toEqual([]);
    expect(await cliOk<unknown[]>(alice, ["link", "list"])).toEqual([]);
  });
});
