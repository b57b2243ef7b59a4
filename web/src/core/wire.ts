// The server's JSON shapes that this client reads (snake_case, as the HTTP API sends them).
// See docs/E2EE.md and the OpenAPI document (/api/openapi.json).

export interface UserView {
  id: string;
  username: string;
  display_name?: string | null;
  role?: string;
}

export interface AuthResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  session_id: string;
  user: UserView;
}

export interface IdView {
  id: string;
}

export interface DeviceView {
  id: string;
  name: string | null;
  /** MLS signature public key, base64. */
  signature_key: string;
  created_at: string;
  last_seen_at?: string | null;
}

/** `GET /api/v1/users/{id}/keys`. */
export interface UserKeys {
  identity_key?: string | null;
  devices: { id: string; signature_key: string; identity_signature: string }[];
}

/** `GET`/`POST /api/v1/devices/{id}/key-packages`. */
export interface KeyPackageStatus {
  available: number;
  has_last_resort: boolean;
  low_watermark: number;
  low: boolean;
}

/** `POST /api/v1/users/{id}/key-packages/claim`. */
export interface Claimed {
  key_packages: { device_id: string; key_package: string; last_resort: boolean }[];
}

export interface ConversationView {
  id: string;
  kind: "direct" | "group";
  name?: string | null;
  /** The MLS group id (the UTF-8 bytes of `id`), base64. */
  group_id?: string;
  epoch?: number;
  /** With the member's username and display name (absent for a deleted account). */
  members?: { user_id: string; role: string; username?: string; display_name?: string | null }[];
  /** The devices in the MLS group (`GET /api/v1/conversations/{id}` only). */
  devices?: string[];
  updated_at?: string;
}

/** `GET /api/v1/contacts`. */
export interface ContactView {
  user: UserView;
  state: "contact" | "blocked";
  since: string;
}

/** A Commit or message the server accepted. */
export interface Accepted {
  seq: number;
  epoch: number;
}

export interface InboxItem {
  /** The device's cursor. */
  id: number;
  /** Pushed items only: the id of the device's item before this one (absent: none). */
  prev?: number;
  conversation_id: string;
  kind: "message" | "welcome";
  seq?: number;
  epoch?: number;
  content_type?: "application" | "proposal" | "commit";
  sender_device?: string;
  /** The MLSMessage, base64. */
  data: string;
  created_at: string;
}

export interface InboxPage {
  items: InboxItem[];
  next_after: number;
  more: boolean;
}

/** The Socket.IO `inbox` event: the item whole for a socket that named its device, else a hint. */
export interface InboxEvent {
  conversationId: string;
  seq?: number;
  item?: InboxItem;
}

/** The Socket.IO `ephemeral` event: an unstored application message (typing). */
export interface EphemeralEvent {
  conversationId: string;
  senderDevice: string;
  /** The MLSMessage, base64. */
  message: string;
}

export interface AttachmentView {
  id: string;
  size: number;
  sha256: string;
}
