import { describe, expect, it } from "vitest";
import { Api, type Tokens } from "../../src/core/api.js";
import { ApiError } from "../../src/core/errors.js";

type Call = { method: string; path: string; headers: Record<string, string>; body: unknown };

/** A fake server: answers each request with the next of `answers`, recording the calls. */
function fakeServer(answers: Response[]): { fetch: typeof fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fake: typeof fetch = (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    calls.push({
      method: init?.method ?? "GET",
      path: new URL(url).pathname,
      headers: init?.headers as Record<string, string>,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : init?.body,
    });
    const next = answers.shift();
    if (next === undefined) throw new Error("no more answers");
    return Promise.resolve(next);
  };
  return { fetch: fake, calls };
}

const json = (status: number, value: unknown) => new Response(JSON.stringify(value), { status });

describe("the HTTP layer", () => {
  it("sends the token and the device, and refreshes once on 401", async () => {
    const saved: Tokens[] = [];
    const server = fakeServer([
      json(401, { error: { code: "token_expired", message: "expired" } }),
      json(200, { access_token: "a2", refresh_token: "r2", session_id: "s", token_type: "Bearer", expires_in: 900, user: {} }),
      json(200, { seq: 4, epoch: 2 }),
    ]);
    const api = new Api("http://server.test/", { accessToken: "a1", refreshToken: "r1", sessionId: "s" }, {
      fetch: server.fetch,
      onTokens: (t) => {
        saved.push(t);
      },
    });
    const accepted = await api.json<{ seq: number }>("POST", "/api/v1/conversations/c/messages", {
      device: "d1",
      body: { json: { message: "AA==" } },
    });
    expect(accepted.seq).toBe(4);
    expect(server.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      "POST /api/v1/conversations/c/messages",
      "POST /api/v1/auth/refresh",
      "POST /api/v1/conversations/c/messages",
    ]);
    expect(server.calls[0]?.headers).toMatchObject({ authorization: "Bearer a1", "x-device-id": "d1" });
    expect(server.calls[1]?.body).toEqual({ refresh_token: "r1" });
    expect(server.calls[1]?.headers.authorization).toBeUndefined();
    expect(server.calls[2]?.headers).toMatchObject({ authorization: "Bearer a2", "x-device-id": "d1" });
    expect(saved).toEqual([{ accessToken: "a2", refreshToken: "r2", sessionId: "s" }]);
  });

  it("does not try a refresh when the account is disabled or the session ended", async () => {
    for (const code of ["account_disabled", "session_revoked"]) {
      const server = fakeServer([json(401, { error: { code, message: "no" } })]);
      const api = new Api("http://server.test/", { accessToken: "a1", refreshToken: "r1", sessionId: "s" }, { fetch: server.fetch });
      const refused = await api.json("GET", "/api/v1/me").catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ApiError);
      expect((refused as ApiError).code).toBe(code);
      expect(server.calls.map((c) => c.path)).toEqual(["/api/v1/me"]);
    }
  });

  it("turns the server's error body into an ApiError with its code", async () => {
    const server = fakeServer([
      json(409, { error: { code: "stale_epoch", message: "the group is at epoch 3", details: { current_epoch: 3 } } }),
      new Response("bad gateway", { status: 502 }),
    ]);
    const api = new Api("https://server.test", { accessToken: "a", refreshToken: "r", sessionId: "s" }, { fetch: server.fetch });
    const stale = api.request("POST", "/api/v1/conversations/c/commits", { body: { json: {} } });
    await expect(stale).rejects.toBeInstanceOf(ApiError);
    await expect(stale).rejects.toMatchObject({ status: 409, code: "stale_epoch", details: { current_epoch: 3 } });
    await expect(api.request("GET", "/health")).rejects.toMatchObject({ status: 502, code: "http_error" });
  });

  it("says network_error when the server cannot be reached, and refuses a non-HTTP URL", async () => {
    const api = new Api("http://server.test", undefined, { fetch: () => Promise.reject(new TypeError("refused")) });
    await expect(api.request("GET", "/health", { auth: false })).rejects.toMatchObject({ code: "network_error" });
    expect(() => new Api("ftp://server.test")).toThrow(/http/);
  });

  it("waits out a short rate limit once, and reports a long one", async () => {
    const limited = (seconds: number) =>
      json(429, { error: { code: "rate_limited", message: "too many requests", details: { retry_after_s: seconds } } });
    const server = fakeServer([limited(0), json(200, { ok: true }), limited(60)]);
    const api = new Api("http://server.test", { accessToken: "a", refreshToken: "r", sessionId: "s" }, { fetch: server.fetch });
    await expect(api.json("GET", "/api/v1/contacts")).resolves.toEqual({ ok: true });
    expect(server.calls).toHaveLength(2);
    await expect(api.request("GET", "/api/v1/contacts")).rejects.toMatchObject({ status: 429, code: "rate_limited" });
    expect(server.calls).toHaveLength(3);
  });
});
