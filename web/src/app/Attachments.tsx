// Encrypted attachments in a conversation: picking, dropping or pasting files to send, and
// showing file messages — images previewed inline, every file downloadable. A file is
// decrypted in this page only (the server holds ciphertext) and kept as an object URL for as
// long as the same user is logged in.

import { effect, signal } from "@preact/signals";
import { useEffect, useRef, useState } from "preact/hooks";
import type { FileContent } from "../core/index.js";
import { attempt, byteSize, currentClient, describe, me, sendFile } from "./store.js";

/** The image types shown inline; anything else (SVG included: it can carry scripts) is only
 *  offered for download. */
const PREVIEWABLE: ReadonlyMap<string, string> = new Map([
  ["png", "image/png"],
  ["jpg", "image/jpeg"],
  ["jpeg", "image/jpeg"],
  ["gif", "image/gif"],
  ["webp", "image/webp"],
]);
const PREVIEWED_TYPES: ReadonlySet<string> = new Set(PREVIEWABLE.values());

/** The media type to preview `file` as, if it is an image this app shows inline: the type the
 *  sender declared, else (older clients, the CLI) the one its name suggests. */
export function previewType(file: Pick<FileContent, "name" | "mime">): string | undefined {
  const declared = file.mime?.toLowerCase();
  if (declared !== undefined) return PREVIEWED_TYPES.has(declared) ? declared : undefined;
  const extension = /\.([a-z0-9]+)$/i.exec(file.name)?.[1]?.toLowerCase() ?? "";
  return PREVIEWABLE.get(extension);
}

/** Images larger than this are previewed on request, not as soon as they are shown. */
const AUTO_PREVIEW_BYTES = 10 * 1024 * 1024;

/** A file name as shown and saved: without control and bidirectional-override characters,
 *  which could make `photo\u202Egnp.exe` read as an image. */
export function safeName(name: string): string {
  // eslint-disable-next-line no-control-regex
  const cleaned = name.replace(/[\u0000-\u001f\u007f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, "").trim();
  return cleaned === "" ? "file" : cleaned;
}

/** Decrypted images of this session (object URLs), by what decrypts them: the attachment, its
 *  key and its digest (two messages naming one attachment with other keys are two entries). */
const previews = new Map<string, Promise<string>>();
const previewKey = (file: FileContent) => `${file.attachment}/${file.key}/${file.sha256}`;

// Another user (or nobody) logged in: forget what the previous one opened.
let owner: string | undefined;
effect(() => {
  const user = me.value?.id;
  if (user === owner) return;
  owner = user;
  for (const url of previews.values()) void url.then((u) => { URL.revokeObjectURL(u); }, () => undefined);
  previews.clear();
});

/** Decrypts `file` into an object URL (the caller revokes it, unless it is cached). */
async function decryptToUrl(file: FileContent): Promise<string> {
  const user = owner;
  const data = await currentClient().openFile(file);
  // Logged out meanwhile: nothing to show, and nothing may stay behind.
  if (owner !== user) throw new Error("logged out");
  return URL.createObjectURL(new Blob([data as Uint8Array<ArrayBuffer>], { type: previewType(file) ?? "application/octet-stream" }));
}

function previewUrl(file: FileContent): Promise<string> {
  const key = previewKey(file);
  let url = previews.get(key);
  if (url === undefined) {
    // Inside the promise: logged out meanwhile is a failure to show, not a thrown error.
    url = Promise.resolve().then(() => decryptToUrl(file));
    previews.set(key, url);
    // A failed download may be retried.
    url.catch(() => previews.delete(key));
  }
  return url;
}

/** Names of the files waiting to be encrypted and uploaded, by conversation. */
const sending = signal<ReadonlyMap<string, readonly string[]>>(new Map());
/** Each conversation's uploads, one after the other. */
const queues = new Map<string, Promise<void>>();

function updateSending(conversationId: string, change: (names: readonly string[]) => readonly string[]): void {
  const next = new Map(sending.value);
  const names = change(next.get(conversationId) ?? []);
  if (names.length === 0) next.delete(conversationId);
  else next.set(conversationId, names);
  sending.value = next;
}

/** Queues `files` for sending, after what the conversation is sending already; a refused one
 *  (too large, empty) is reported and the others still go. */
export function sendFiles(conversationId: string, files: readonly File[]): Promise<void> {
  updateSending(conversationId, (names) => [...names, ...files.map((f) => safeName(f.name))]);
  const run = (queues.get(conversationId) ?? Promise.resolve()).then(async () => {
    for (const file of files) {
      await attempt(() => sendFile(conversationId, file));
      updateSending(conversationId, (names) => names.slice(1));
    }
  });
  queues.set(conversationId, run);
  return run;
}

/** The composer's attach button (with a hidden file picker) and the upload status. */
export function AttachButton({ conversationId }: { conversationId: string }) {
  const picker = useRef<HTMLInputElement>(null);
  const pending = sending.value.get(conversationId) ?? [];
  return (
    <>
      <input
        ref={picker}
        type="file"
        multiple
        hidden
        aria-label="Files to send"
        onChange={(e) => {
          const files = [...(e.currentTarget.files ?? [])];
          e.currentTarget.value = "";
          void sendFiles(conversationId, files);
        }}
      />
      <button
        type="button"
        aria-label="Attach files"
        title="Attach files (encrypted before they leave this device)"
        disabled={pending.length > 0}
        onClick={() => picker.current?.click()}
      >
        <Paperclip />
      </button>
      {pending.length > 0 && (
        <span class="sending muted small" role="status">
          Encrypting and sending {pending[0]}
          {pending.length > 1 ? ` (+${(pending.length - 1).toString()})` : ""}…
        </span>
      )}
    </>
  );
}

/** A file message: the image inline when it is one, its name and size, and a download. */
export function FileBubble({ file }: { file: FileContent }) {
  const image = previewType(file) !== undefined;
  const [url, setUrl] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const [asked, setAsked] = useState(false);
  const automatic = file.size <= AUTO_PREVIEW_BYTES;
  useEffect(() => {
    setUrl(undefined);
    setError(undefined);
    if (!image || (!automatic && !asked)) return;
    let live = true;
    previewUrl(file).then(
      (u) => { if (live) setUrl(u); },
      (e: unknown) => { if (live) setError(describe(e).message); },
    );
    return () => { live = false; };
  }, [file.attachment, file.key, image, asked]);

  const name = safeName(file.name);
  const download = async () => {
    setError(undefined);
    try {
      // An image's preview is kept; any other file's URL goes once the download has begun.
      const href = image ? await previewUrl(file) : await decryptToUrl(file);
      const link = document.createElement("a");
      link.href = href;
      link.download = name;
      link.click();
      if (!image) setTimeout(() => { URL.revokeObjectURL(href); }, 60_000);
    } catch (e) {
      setError(describe(e).message);
    }
  };

  return (
    <div class="file">
      {image && url !== undefined && (
        <a href={url} target="_blank" rel="noopener">
          <img class="preview" src={url} alt={name} />
        </a>
      )}
      {image && url === undefined && error === undefined && (automatic || asked) && <div class="preview loading muted small">Decrypting image…</div>}
      {image && !automatic && !asked && (
        <button type="button" onClick={() => { setAsked(true); }}>
          Show image
        </button>
      )}
      <div class="row file-info">
        <span class="grow name">
          <Paperclip /> {name}
        </span>
        <span class="muted small">{byteSize(file.size)}</span>
        <button type="button" class="ghost" aria-label={`Download ${name}`} onClick={() => void download()}>
          Download
        </button>
      </div>
      {error !== undefined && (
        <p class="error small" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** A paperclip drawn inline (emoji fonts are not everywhere). */
function Paperclip() {
  return (
    <svg class="icon" aria-hidden="true" viewBox="0 0 24 24" width="16" height="16">
      <path
        d="M20 11.5 12 19.5a5.2 5.2 0 0 1-7.4-7.4l8.3-8.3a3.4 3.4 0 0 1 4.9 4.9l-8.2 8.2a1.7 1.7 0 0 1-2.4-2.4l7.3-7.3"
        fill="none"
        stroke="currentColor"
        stroke-width="1.8"
        stroke-linecap="round"
        stroke-linejoin="round"
      />
    </svg>
  );
}
