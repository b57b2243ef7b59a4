// The HTTP layer: requests to the SecureVox API with bearer tokens (refreshed once on 401),
// the `X-Device-Id` header for requests made as a group member, and the server's error body
// turned into an `ApiError` with its stable code.

import { ApiError, clientError } from "./errors.js";
import type { AuthResponse } from "./wire.js";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  sessionId: string;
}

export type Body = { json: unknown } | { bytes: Uint8Array };

export interface RequestOptions {
  body?: Body;
  /** Send the access token (default true). */
  auth?: boolean;
  /** Speak as this device of the caller (`X-Device-Id`). */
  device?: string;
}

export interface ApiOptions {
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Called after every token refresh, to persist the new tokens. */
  onTokens?: (tokens: Tokens) => Promise<void> | void;
}

export function tokensOf(auth: AuthResponse): Tokens {
  return { accessToken: auth.access_token, refreshToken: auth.refresh_token, sessionId: auth.session_id };
}

/** Longest `retry_after_s` of a 429 that `Api.request` waits out before trying once more. */
export const MAX_RETRY_AFTER_S = 5;

/** The seconds a 429 answer asks to wait, if it is short enough to wait here. */
async function retryAfter(response: Response): Promise<number | undefined> {
  try {
    const body = (await response.clone().json()) as { error?: { details?: { retry_after_s?: unknown } } };
    const seconds = body.error?.details?.retry_after_s;
    return typeof seconds === "number" && seconds >= 0 && seconds <= MAX_RETRY_AFTER_S ? seconds : undefined;
  } catch {
    return undefined;
  }
}

export class Api {
  readonly base: string;
  tokens: Tokens | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly onTokens: ApiOptions["onTokens"];
  private refreshing: Promise<void> | undefined;

  constructor(server: string, tokens?: Tokens, options: ApiOptions = {}) {
    const base = server.replace(/\/+$/, "");
    if (!/^https?:\/\//.test(base)) {
      throw clientError("invalid_state", `server URL must start with http:// or https://: ${server}`);
    }
    this.base = base;
    this.tokens = tokens;
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.onTokens = options.onTokens;
  }

  /** A request; a non-2xx answer throws `ApiError`. Refreshes the tokens once on 401. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const auth = options.auth ?? true;
    let first = await this.send(method, path, options, auth);
    // Rate limited for a moment (e.g. a burst of pushed items to acknowledge): wait as the
    // server says, once, rather than fail a step of a sync halfway.
    const wait = first.status === 429 ? await retryAfter(first) : undefined;
    if (wait !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, wait * 1000));
      first = await this.send(method, path, options, auth);
    }
    if (first.status === 401 && auth && this.tokens !== undefined && !(await final(first))) {
      await this.refresh();
      return this.check(await this.send(method, path, options, auth));
    }
    return this.check(first);
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.request(method, path, options);
    try {
      return (await response.json()) as T;
    } catch (e) {
      throw clientError("bad_response", `${method} ${path}: the answer is not JSON`, e);
    }
  }

  async bytes(method: string, path: string, options: RequestOptions = {}): Promise<Uint8Array> {
    const response = await this.request(method, path, options);
    return new Uint8Array(await response.arrayBuffer());
  }

  /** Trades the refresh token for new tokens (concurrent callers share one refresh). */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const tokens = this.tokens;
        if (tokens === undefined) throw clientError("invalid_state", "not logged in");
        const response = await this.send(
          "POST",
          "/api/v1/auth/refresh",
          { body: { json: { refresh_token: tokens.refreshToken } } },
          false,
        );
        const auth = (await (await this.check(response)).json()) as AuthResponse;
        this.tokens = tokensOf(auth);
        await this.onTokens?.(this.tokens);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async send(method: string, path: string, options: RequestOptions, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = {};
    if (auth) {
      if (this.tokens === undefined) throw clientError("invalid_state", "not logged in");
      headers.authorization = `Bearer ${this.tokens.accessToken}`;
    }
    if (options.device !== undefined) headers["x-device-id"] = options.device;
    let body: BodyInit | undefined;
    if (options.body !== undefined && "json" in options.body) {
      headers["content-type"] = "application/json";
      body = JSON.stringify(options.body.json);
    } else if (options.body !== undefined) {
      headers["content-type"] = "application/octet-stream";
      body = new Blob([options.body.bytes as Uint8Array<ArrayBuffer>]);
    }
    try {
      return await this.fetchImpl(`${this.base}${path}`, { method, headers, body });
    } catch (e) {
      throw clientError("network_error", `cannot reach the server (${method} ${path})`, e);
    }
  }

  private async check(response: Response): Promise<Response> {
    if (response.ok) return response;
    const text = await response.text().catch(() => "");
    let error: { code?: unknown; message?: unknown; details?: unknown } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    if (error !== undefined && typeof error.code === "string") {
      throw new ApiError(response.status, error.code, typeof error.message === "string" ? error.message : "", error.details);
    }
    throw new ApiError(response.status, "http_error", text === "" ? response.statusText : text);
  }
}

/** A 401 no refresh can mend (the account is disabled, the session ended): its reason is the
 *  one to show, not the refused refresh's. */
async function final(response: Response): Promise<boolean> {
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body.error?.code === "account_disabled" || body.error?.code === "session_revoked";
  } catch {
    return false;
  }
}
