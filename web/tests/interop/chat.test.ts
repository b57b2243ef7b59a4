// A user of this web core and a user of the Rust `securevox-cli` chat through the real
// server, both ways: groups made by either side, messages, files, Commits behind an epoch,
// a removal, safety numbers, and items pushed over Socket.IO to the web device.
//
// Run by crates/securevox-client/tests/web_interop.rs, which starts the server and sets
//   SECUREVOX_URL  the server's base URL (no account on it yet: the web user registers
//                  first and so becomes admin, and invites the CLI user)
//   SECUREVOX_CLI  the path of the built `securevox-cli`
// Without them this test is skipped.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Client, connectInbox, MemoryStorage, type InboxEvent, type Message, type SyncReport } from "../../src/core/index.js";
import { CLI, cli, cliOk, PASSWORD, SERVER } from "./cli.js";

interface CliMessage {
  conversation_id: string;
  seq: number | null;
  sender_user_id: string;
  sender_device_id: string;
  outgoing: boolean;
  content: { type: string; body?: string; attachment?: string; name?: string };
}

interface CliSyncReport {
  messages: CliMessage[];
  joined: string[];
  removed_from: string[];
  errors: string[];
  warnings: string[];
}

/** The requests the server refused with `stale_epoch`, as "METHOD /path-kind". */
const stale: string[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  const response = await fetch(input, init);
  if (response.status === 409) {
    const body = (await response.clone().json()) as { error?: { code?: string } };
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    if (body.error?.code === "stale_epoch") stale.push(`${init?.method ?? "GET"} ${url.split("/").at(-1) ?? ""}`);
  }
  return response;
};

const texts = (messages: { content: { type: string; body?: string } }[]) =>
  messages.filter((m) => m.content.type === "text").map((m) => m.content.body);

function clean(report: SyncReport): SyncReport {
  expect(report.errors, "sync errors").toEqual([]);
  expect(report.warnings, "sync warnings").toEqual([]);
  return report;
}

/** Polls `check` until it holds (for things that arrive by push). */
async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(SERVER === undefined || CLI === undefined)("web core ⇄ securevox-cli through the real server", () => {
  let dir: string;
  let rust: string;
  let web: Client;
  let webStorage: MemoryStorage;
  let rustUser: { user_id: string; username: string; device_id: string };
  let webGroup: string;
  let rustGroup: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "securevox-web-interop-"));
    rust = join(dir, "rusty");
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("registers a web user (identity, device, KeyPackages) and a CLI user", async () => {
    webStorage = new MemoryStorage();
    web = await Client.register(SERVER ?? "", "webby", PASSWORD, undefined, { storage: webStorage, fetch: recordingFetch });
    expect(web.deviceId).toMatch(/.+/);
    const status = await web.api.json<{ available: number; has_last_resort: boolean }>(
      "GET",
      `/api/v1/devices/${web.deviceId}/key-packages`,
    );
    expect(status).toMatchObject({ available: 20, has_last_resort: true });
    // The first account is admin: it invites the CLI user.
    const invite = await web.api.json<{ code: string }>("POST", "/api/v1/admin/invites", { body: { json: {} } });
    rustUser = await cliOk(rust, ["register", "rusty", "--invite", invite.code]);
    expect(rustUser.username).toBe("rusty");
  });

  it("web creates a group with the CLI user and writes; the CLI reads it", async () => {
    webGroup = await web.createGroup("made on the web", ["rusty"]);
    await web.sendText(webGroup, "hello from the web");
    const messages = await cliOk<CliMessage[]>(rust, ["messages", webGroup]);
    expect(texts(messages)).toEqual(["hello from the web"]);
    expect(messages[0]).toMatchObject({ sender_user_id: web.userId, sender_device_id: web.deviceId, outgoing: false });
  });

  it("the CLI answers; the web core syncs and decrypts it", async () => {
    await cliOk(rust, ["send", webGroup, "hello from rust"]);
    const report = clean(await web.sync());
    expect(texts(report.messages)).toEqual(["hello from rust"]);
    expect(report.messages[0]).toMatchObject({
      conversationId: webGroup,
      senderUserId: rustUser.user_id,
      senderDeviceId: rustUser.device_id,
      outgoing: false,
    });
    expect(texts(await web.history(webGroup))).toEqual(["hello from the web", "hello from rust"]);
  });

  it("a web Commit or message behind an epoch is retried after a sync", async () => {
    // The CLI moves the group on; the web device has not seen it yet.
    await cliOk(rust, ["group", "update-keys", webGroup]);
    await web.sendText(webGroup, "sent from a stale epoch");
    await cliOk(rust, ["group", "update-keys", webGroup]);
    await web.updateKeys(webGroup);
    await web.sendText(webGroup, "after my own update");
    expect(stale, "each was refused once, then retried").toEqual(["POST messages", "POST commits"]);
    const messages = await cliOk<CliMessage[]>(rust, ["messages", webGroup]);
    expect(texts(messages)).toEqual([
      "hello from the web",
      "hello from rust",
      "sent from a stale epoch",
      "after my own update",
    ]);
    expect(await web.checkMembers(webGroup)).toEqual([]);
  });

  it("both sides show the same safety number", async () => {
    const theirs = await cliOk<{ safety_number: string }>(rust, ["safety-number", "webby"]);
    expect(await web.safetyNumber("rusty")).toBe(theirs.safety_number);
  });

  it("the CLI creates a group with the web user; the web device joins from the pushed Welcome", async () => {
    const events: InboxEvent[] = [];
    const reports: SyncReport[] = [];
    const errors: unknown[] = [];
    const socket = connectInbox(web, {
      onEvent: (e) => events.push(e),
      onReport: (r) => reports.push(r),
      onError: (e) => errors.push(e),
      transports: ["websocket"],
    });
    try {
      await eventually("the socket", () => socket.connected);
      const created = await cliOk<{ conversation_id: string }>(rust, ["group", "create", "made in rust", "webby"]);
      rustGroup = created.conversation_id;
      await cliOk(rust, ["send", rustGroup, "welcome to a rust group"]);
      await eventually("the pushed message", async () => texts(await web.history(rustGroup)).length > 0);
      const pushed = events.filter((e) => e.conversationId === rustGroup).map((e) => e.item?.kind);
      expect(pushed).toEqual(["welcome", "message"]);
      expect(reports.flatMap((r) => r.joined)).toContain(rustGroup);
      expect(reports.flatMap((r) => [...r.errors, ...r.warnings])).toEqual([]);
      expect(errors).toEqual([]);
      expect(texts(await web.history(rustGroup))).toEqual(["welcome to a rust group"]);
    } finally {
      socket.disconnect();
    }
    await web.sendText(rustGroup, "the web reads you");
    const messages = await cliOk<CliMessage[]>(rust, ["messages", rustGroup]);
    expect(texts(messages)).toEqual(["welcome to a rust group", "the web reads you"]);
  });

  it("files go both ways, encrypted", async () => {
    const data = new Uint8Array(100_000).map((_, i) => (i * 31) & 255);
    const sent = await web.sendFile(rustGroup, "from-web.bin", data);
    if (sent.content.type !== "file") throw new Error("not a file message");
    await cliOk(rust, ["sync"]);
    const out = join(dir, "fetched.bin");
    await cliOk(rust, ["fetch-file", rustGroup, sent.content.attachment, out]);
    expect(new Uint8Array(await readFile(out))).toEqual(data);

    const path = join(dir, "from-rust.txt");
    await writeFile(path, "a file written by rust");
    const message = await cliOk<CliMessage>(rust, ["send-file", rustGroup, path]);
    const attachment = message.content.attachment ?? "";
    const fetched = await web.fetchFile(rustGroup, attachment);
    expect(fetched.name).toBe("from-rust.txt");
    expect(new TextDecoder().decode(fetched.data)).toBe("a file written by rust");
  });

  it("the CLI user leaves a group it made; the web's next message takes its leaf out", async () => {
    const { conversation_id: brief } = await cliOk<{ conversation_id: string }>(rust, ["group", "create", "brief", "webby"]);
    expect((await web.sync()).joined).toEqual([brief]);
    expect(await web.groupUsers(brief)).toHaveLength(2);
    await cliOk(rust, ["group", "leave", brief]);
    expect((await cli(rust, ["group", "members", brief])).ok).toBe(false);
    await web.sendText(brief, "after you left");
    expect(await web.groupUsers(brief)).toEqual([web.userId]);
    expect(texts(await web.history(brief)).at(-1)).toBe("after you left");
  });

  it("web removes the CLI user from its group; the CLI sees it", async () => {
    await web.removeFromGroup(webGroup, "rusty");
    const report = await cliOk<CliSyncReport>(rust, ["sync"]);
    expect(report.removed_from).toEqual([webGroup]);
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([]);
    const rejected = await cli(rust, ["send", webGroup, "am I still here?"]);
    expect(rejected.ok).toBe(false);
    await web.sendText(webGroup, "only me now");
    const history: Message[] = await web.history(webGroup);
    expect(texts(history).at(-1)).toBe("only me now");
  });

  it("a second web device of the same account must be linked; the first logs in again", async () => {
    const elsewhere = Client.login(SERVER ?? "", "webby", PASSWORD, { storage: new MemoryStorage() });
    await expect(elsewhere).rejects.toMatchObject({ code: "link_required" });
    const again = await Client.login(SERVER ?? "", "webby", PASSWORD, { storage: webStorage });
    expect(again.deviceId).toBe(web.deviceId);
    expect((await again.devices()).map((d) => d.id)).toEqual([web.deviceId]);
  });

  it("a web profile reopens from its storage and goes on", async () => {
    const reopened = await Client.open({ storage: webStorage });
    await cliOk(rust, ["send", rustGroup, "still there?"]);
    const report = clean(await reopened.sync());
    expect(texts(report.messages)).toEqual(["still there?"]);
    await reopened.sendText(rustGroup, "yes");
    const messages = await cliOk<CliMessage[]>(rust, ["messages", rustGroup]);
    expect(texts(messages).at(-1)).toBe("yes");
  });
});
