// Errors of the web core. Every failure carries a stable snake_case `code`: the server's own
// (`stale_epoch`, `admins_only`, …, from its `{"error": {code, message, details?}}` body) or
// one of the client's below, so a UI can decide by code and never by message text.

/** Codes the client itself raises. */
export type ClientErrorCode =
  | "network_error" // the server could not be reached
  | "http_error" // a non-2xx answer without the server's error body
  | "bad_response" // the server answered something this client cannot read
  | "link_required" // the account has an identity: link this device, or start a new identity
  | "link_rejected" // the user refused this device's link request on a signed-in device
  | "link_expired" // the link request is gone (expired, or cancelled)
  | "link_cancelled" // this device stopped waiting for its link request
  | "link_code_mismatch" // no pending link request shows the code typed
  | "bad_envelope" // a link envelope that does not open, or holds something else than the account's identity
  | "not_in_group" // this device is not (or no longer) in the conversation's group
  | "not_vouched" // a key is not signed by its user's identity key
  | "no_key_packages" // a user has no device to add
  | "mls_error" // ts-mls refused an operation or a message
  | "invalid_state" // e.g. no device registered yet, or stored state that does not decode
  | "not_found" // a local record (a file message, a user) is missing
  | "integrity_error"; // an attachment does not match its message

export class SecureVoxError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SecureVoxError";
    this.code = code;
  }
}

/** The server refused a request. */
export class ApiError extends SecureVoxError {
  readonly status: number;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, details?: unknown) {
    super(code, `server refused (${status} ${code}): ${message}`);
    this.name = "ApiError";
    this.status = status;
    this.details = details;
  }
}

export function clientError(code: ClientErrorCode, message: string, cause?: unknown): SecureVoxError {
  return new SecureVoxError(code, message, cause === undefined ? undefined : { cause });
}

/** The error code of `e` if it is one of ours. */
export function errorCode(e: unknown): string | undefined {
  return e instanceof SecureVoxError ? e.code : undefined;
}

/** Wraps a ts-mls (or other library) failure in an `mls_error`. */
export function mlsError(what: string, e: unknown): SecureVoxError {
  if (e instanceof SecureVoxError) return e;
  const reason = e instanceof Error ? e.message : String(e);
  return clientError("mls_error", `${what}: ${reason}`, e);
}
