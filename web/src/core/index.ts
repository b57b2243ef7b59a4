// The SecureVox web client's protocol core: framework-free, for the UI and for tests.
export { Api, type Tokens } from "./api.js";
export { Client, DEVICE_NAME, type ConnectOptions } from "./client.js";
export { decodeContent, encodeContent, text, type Content, type FileContent, type KnownContent, type Message, type TextContent } from "./content.js";
export { ApiError, SecureVoxError, errorCode, type ClientErrorCode } from "./errors.js";
export { IndexedDbStorage } from "./idb.js";
export { checkMembers, type SyncReport } from "./inbox.js";
export { deviceSignatureMessage, KEY_PACKAGE_BATCH, verifyDevice } from "./keys.js";
export { PendingLink, type JoinReport, type LinkRequest, type WaitOptions } from "./linking.js";
export { CIPHERSUITE } from "./mls.js";
export { connectInbox, type InboxSocketOptions } from "./realtime.js";
export { digitsOf, display, fingerprint, linkCode, safetyNumber } from "./safety.js";
export { MemoryStorage, type KnownKeys, type Profile, type Storage, type StoredKeyPackage } from "./storage.js";
export type { KeyChange } from "./trust.js";
export type { ContactView, ConversationView, EphemeralEvent, InboxEvent, InboxItem, UserView } from "./wire.js";
