// Live delivery over Socket.IO (docs/SOCKETIO.md, "Chat"): a socket that names this device
// (`auth: {token, deviceId}`) gets each new inbox item whole, and the client applies it by
// its `prev`; on every (re)connection the client syncs from its cursor, so nothing pushed
// while it was away is missed.

import { io, type Socket } from "socket.io-client";
import type { Client } from "./client.js";
import type { SyncReport } from "./inbox.js";
import type { InboxEvent } from "./wire.js";

export interface InboxSocketOptions {
  /** Everything a sync or a pushed item brought. */
  onReport?: (report: SyncReport) => void;
  onError?: (error: unknown) => void;
  /** Every `inbox` event as it arrives, before it is applied. */
  onEvent?: (event: InboxEvent) => void;
  /** Socket.IO options (e.g. `transports: ["websocket"]`). */
  transports?: string[];
}

/** Connects this device's socket; close it with `socket.disconnect()`. */
export function connectInbox(client: Client, options: InboxSocketOptions = {}): Socket {
  const socket = io(client.api.base, {
    // A function, so that every reconnection uses the current (refreshed) access token.
    auth: (cb) => {
      cb({ token: client.api.tokens?.accessToken, deviceId: client.deviceId });
    },
    transports: options.transports,
  });
  const deliver = (work: Promise<SyncReport>) => {
    work.then(
      (report) => options.onReport?.(report),
      (error: unknown) => options.onError?.(error),
    );
  };
  socket.on("connect", () => {
    deliver(client.sync());
  });
  socket.on("inbox", (event: InboxEvent) => {
    options.onEvent?.(event);
    deliver(client.receivePushed(event));
  });
  socket.on("connect_error", (error: Error) => {
    if (error.message.startsWith("token_expired")) {
      client.api.refresh().then(
        () => socket.connect(),
        (e: unknown) => options.onError?.(e),
      );
    } else {
      options.onError?.(error);
    }
  });
  return socket;
}
