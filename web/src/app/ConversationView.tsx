// One conversation: its messages (own and others', edited, deleted, reactions, receipts), the
// typing indicator, and the composer; edit, delete and react to messages.

import { useEffect, useRef, useState } from "preact/hooks";
import {
  acknowledge,
  attempt,
  blockedIds,
  conversations,
  history,
  me,
  nameOf,
  now,
  selected,
  send,
  sendTyping,
  titleOf,
  typing,
} from "./store.js";
import { fold, typingNow, type Entry } from "./timeline.js";
import { CallButtons, CallLine } from "./Calls.js";
import { callHistory, callsByConversation, interleave } from "./calllog.js";
import { AttachButton, FileBubble, sendFiles } from "./Attachments.js";
import { KeyWarnings } from "./KeyWarnings.js";

const REACTIONS = ["👍", "❤️", "😂"];

export function ConversationView({ id }: { id: string }) {
  const conversation = conversations.value.find((c) => c.id === id);
  const self = me.value;
  const messages = history.value.get(id) ?? [];
  const timeline = fold(messages, self?.id ?? "", blockedIds());
  const calls = callsByConversation(callHistory.value, conversations.value).get(id) ?? [];
  const [draft, setDraft] = useState("");
  const [editing, setEditing] = useState<number | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const end = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLTextAreaElement>(null);
  const whoTypes = typingNow(typing.value.get(id) ?? new Map(), now.value).filter((u) => u !== self?.id);

  // Shown: the others' messages are read.
  useEffect(() => {
    if (timeline.unread > 0) void acknowledge(id);
  }, [id, timeline.unread]);
  useEffect(() => {
    end.current?.scrollIntoView({ block: "end" });
  }, [id, timeline.entries.length]);
  useEffect(() => {
    setDraft("");
    setEditing(undefined);
    input.current?.focus();
  }, [id]);

  if (conversation === undefined) return <section class="chat empty">Conversation not found.</section>;

  const submit = async (e?: Event) => {
    e?.preventDefault();
    const body = draft.trim();
    if (body === "" || busy) return;
    setBusy(true);
    const ok = await attempt(() => send(id, editing === undefined ? { type: "text", body } : { type: "edit", target: editing, body }));
    setBusy(false);
    if (ok) {
      setDraft("");
      setEditing(undefined);
      sendTyping(id, false);
    }
    input.current?.focus();
  };

  return (
    <section
      class="chat"
      aria-label={`Conversation ${titleOf(conversation)}`}
      onDragOver={(e) => {
        if (e.dataTransfer?.types.includes("Files") === true) e.preventDefault();
      }}
      onDrop={(e) => {
        const files = [...(e.dataTransfer?.files ?? [])];
        if (files.length === 0) return;
        e.preventDefault();
        // Not while a message is being edited: the composer holds the edit.
        if (editing === undefined) void sendFiles(id, files);
      }}
    >
      <header class="chat-header row">
        <button type="button" class="back" onClick={() => { selected.value = undefined; }} aria-label="Back to conversations">
          ←
        </button>
        <h2 class="grow">{titleOf(conversation)}</h2>
        <span class="muted small">{conversation.kind === "group" ? `${conversation.members?.length ?? 0} members` : "1:1"} · end-to-end encrypted</span>
        <CallButtons members={(conversation.members ?? []).map((m) => m.user_id)} />
      </header>
      <KeyWarnings conversationId={id} listed={(conversation.members ?? []).map((m) => m.user_id)} />
      <ol class="messages" aria-label="Messages" aria-live="polite">
        {timeline.entries.length === 0 && calls.length === 0 && <li class="muted center">No messages yet. Say hello!</li>}
        {interleave(timeline.entries, calls).map((entry) => "session_id" in entry ? <CallLine key={entry.session_id} call={entry} conversationId={id} /> : (
          <Bubble
            key={entry.seq}
            entry={entry}
            group={conversation.kind === "group"}
            me={self?.id ?? ""}
            onEdit={() => {
              setEditing(entry.seq);
              setDraft(entry.body);
              input.current?.focus();
            }}
            onDelete={() => {
              if (confirm("Delete this message for everyone?")) void attempt(() => send(id, { type: "delete", target: entry.seq }));
            }}
            onReact={(emoji, remove) => void attempt(() => send(id, { type: "reaction", target: entry.seq, emoji, remove }))}
          />
        ))}
        <div ref={end} />
      </ol>
      <p class="typing muted small" aria-live="polite">
        {whoTypes.length > 0 ? `${whoTypes.map(nameOf).join(", ")} ${whoTypes.length === 1 ? "is" : "are"} typing…` : " "}
      </p>
      <form class="composer row" onSubmit={(e) => void submit(e)}>
        {editing !== undefined && (
          <button type="button" onClick={() => { setEditing(undefined); setDraft(""); }} aria-label="Cancel editing">
            ✕
          </button>
        )}
        {editing === undefined && <AttachButton conversationId={id} />}
        <label class="grow">
          <span class="sr-only">{editing === undefined ? "Message" : "Edit message"}</span>
          <textarea
            ref={input}
            name="message"
            rows={1}
            placeholder={editing === undefined ? "Message" : "Edit message"}
            value={draft}
            onInput={(e) => {
              setDraft(e.currentTarget.value);
              if (e.currentTarget.value !== "") sendTyping(id, true);
            }}
            onBlur={() => { sendTyping(id, false); }}
            onPaste={(e) => {
              const files = [...(e.clipboardData?.files ?? [])];
              if (files.length === 0 || editing !== undefined) return;
              e.preventDefault();
              void sendFiles(id, files);
            }}
            onKeyDown={(e) => {
              if (e.key === "Enter" && !e.shiftKey) {
                e.preventDefault();
                void submit();
              }
            }}
          />
        </label>
        <button type="submit" class="primary" disabled={busy || draft.trim() === ""}>
          {editing === undefined ? "Send" : "Save"}
        </button>
      </form>
    </section>
  );
}

interface BubbleProps {
  entry: Entry;
  group: boolean;
  me: string;
  onEdit: () => void;
  onDelete: () => void;
  onReact: (emoji: string, remove: boolean) => void;
}

function Bubble({ entry, group, me, onEdit, onDelete, onReact }: BubbleProps) {
  const time = new Date(entry.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const status = entry.readBy.size > 0 ? "read" : entry.deliveredTo.size > 0 ? "delivered" : "sent";
  return (
    <li class={`message ${entry.mine ? "mine" : "theirs"}`} data-seq={entry.seq}>
      {group && !entry.mine && <span class="sender small">{nameOf(entry.senderUserId)}</span>}
      <div class="bubble">
        {entry.deleted ? (
          <em class="muted">message deleted</em>
        ) : entry.file !== undefined ? (
          <FileBubble file={entry.file} />
        ) : entry.kind === "unknown" ? (
          <em class="muted">a message this app cannot show</em>
        ) : (
          <span class="body">{entry.body}</span>
        )}
      </div>
      <div class="meta small muted">
        <time dateTime={entry.time}>{time}</time>
        {entry.edited && !entry.deleted && <span> · edited</span>}
        {entry.mine && !entry.deleted && <span class="status" data-status={status}> · {status}</span>}
      </div>
      {!entry.deleted && (
        <div class="reactions row small">
          {[...entry.reactions].map(([emoji, users]) => (
            <button
              type="button"
              key={emoji}
              class={`reaction ${users.includes(me) ? "own" : ""}`}
              aria-pressed={users.includes(me)}
              aria-label={`${emoji} by ${users.map(nameOf).join(", ")}`}
              onClick={() => { onReact(emoji, users.includes(me)); }}
            >
              {emoji} {users.length}
            </button>
          ))}
          <span class="actions">
            {REACTIONS.filter((e) => !entry.reactions.get(e)?.includes(me)).map((emoji) => (
              <button type="button" key={emoji} class="ghost" aria-label={`React ${emoji}`} onClick={() => { onReact(emoji, false); }}>
                {emoji}
              </button>
            ))}
            {entry.mine && entry.kind === "text" && (
              <button type="button" class="ghost" onClick={onEdit}>
                Edit
              </button>
            )}
            {entry.mine && (
              <button type="button" class="ghost" onClick={onDelete}>
                Delete
              </button>
            )}
          </span>
        </div>
      )}
    </li>
  );
}
