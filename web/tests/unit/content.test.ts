import { describe, expect, it } from "vitest";
import { decodeContent, encodeContent, text, type KnownContent } from "../../src/core/content.js";
import { fromUtf8, utf8 } from "../../src/core/encoding.js";

describe("the plaintext format", () => {
  it("writes text exactly as the Rust client (serde) does", () => {
    expect(fromUtf8(encodeContent(text("hello \"world\" ✓")))).toBe('{"type":"text","body":"hello \\"world\\" ✓"}');
  });

  it("writes a file message with the Rust client's fields in its order", () => {
    const file: KnownContent = {
      type: "file",
      attachment: "a1",
      key: "k".repeat(44),
      nonce: "n".repeat(16),
      name: "report.pdf",
      size: 1234,
      sha256: "ab".repeat(32),
    };
    expect(fromUtf8(encodeContent(file))).toBe(
      `{"type":"file","attachment":"a1","key":"${"k".repeat(44)}","nonce":"${"n".repeat(16)}","name":"report.pdf","size":1234,"sha256":"${"ab".repeat(32)}"}`,
    );
    expect(decodeContent(encodeContent(file))).toEqual(file);
    // A media type, when the sender knows it, goes last (Rust: `mime`, skipped when None).
    const image: KnownContent = { ...file, name: "cat.png", mime: "image/png" };
    expect(fromUtf8(encodeContent(image))).toMatch(/"sha256":"(ab)+","mime":"image\/png"\}$/);
    expect(decodeContent(encodeContent(image))).toEqual(image);
    expect(decodeContent(utf8(fromUtf8(encodeContent(file)).replace(/\}$/, ',"mime":null}')))).toEqual(file);
  });

  it("reads what the Rust client writes, extra fields ignored", () => {
    expect(decodeContent(utf8('{"type":"text","body":"hi","future":1}'))).toEqual({ type: "text", body: "hi" });
    expect(decodeContent(utf8('{"type":"reaction","target":7,"emoji":"👍"}'))).toEqual({
      type: "reaction",
      target: 7,
      emoji: "👍",
      remove: false,
    });
    expect(decodeContent(utf8('{"type":"receipt","status":"read","targets":[7,8]}'))).toEqual({
      type: "receipt",
      status: "read",
      targets: [7, 8],
    });
    for (const c of [
      { type: "edit", target: 3, body: "again" },
      { type: "delete", target: 3 },
      { type: "typing", active: true },
      { type: "reaction", target: 2, emoji: "🎉", remove: true },
    ] as KnownContent[]) {
      expect(decodeContent(encodeContent(c))).toEqual(c);
    }
  });

  it("keeps anything else as unknown, never throwing", () => {
    for (const raw of ["not json", "[1,2]", "null", '{"type":"text"}', '{"type":"poll","q":"?"}', '{"type":"file","size":-1}',
      '{"type":"file","attachment":"a","key":"k","nonce":"n","name":"x","size":1,"sha256":"s","mime":7}']) {
      expect(decodeContent(utf8(raw))).toEqual({ type: "unknown", raw });
    }
    const invalid = decodeContent(new Uint8Array([0xff, 0x7b]));
    expect(invalid.type).toBe("unknown");
  });
});
