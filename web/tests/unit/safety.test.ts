// The digits must be those of crates/securevox-client/src/safety.rs. The vectors were
// computed by the Rust code, and crates/securevox-client/tests/web_interop.rs asserts the
// same constants against it, so a change on either side fails a test.
import { describe, expect, it } from "vitest";
import { digitsOf, display, fingerprint, linkCode, safetyNumber } from "../../src/core/safety.js";

const ones = new Uint8Array(32).fill(1);
const twos = new Uint8Array(32).fill(2);
const counting = Uint8Array.from({ length: 32 }, (_, i) => i);
const falling = Uint8Array.from({ length: 32 }, (_, i) => 255 - i * 7);
const ALICE = "5f1c0a52-3c9e-4d7b-9a43-0e2f6b8d1c77";
const BOB = "c0ffee00-1234-4abc-8def-000000000001";

describe("safety numbers", () => {
  it("match the Rust client digit for digit", () => {
    expect(fingerprint(ones, "alice")).toBe("833650374266538598819783808930");
    expect(fingerprint(twos, "bob")).toBe("337339632640826941165046395424");
    expect(safetyNumber(ones, "alice", twos, "bob")).toBe(
      "337339632640826941165046395424833650374266538598819783808930",
    );
    expect(safetyNumber(counting, ALICE, falling, BOB)).toBe(
      "814290509494817744418548093194966373660374532984303016517031",
    );
  });

  it("are the same from both sides and change with a key", () => {
    const a = safetyNumber(ones, "alice", twos, "bob");
    expect(safetyNumber(twos, "bob", ones, "alice")).toBe(a);
    expect(a).toMatch(/^[0-9]{60}$/);
    expect(safetyNumber(twos, "bob", counting, "alice")).not.toBe(a);
    expect(display(a).split(" ")).toHaveLength(12);
  });
});

describe("link codes", () => {
  it("match the Rust client digit for digit", () => {
    expect(linkCode(ones, twos)).toBe("9591062198749573");
    expect(linkCode(counting, falling)).toBe("9257614591945745");
    expect(display(linkCode(ones, twos))).toBe("95910 62198 74957 3");
  });

  it("bind both keys and survive being typed with spaces", () => {
    const code = linkCode(ones, twos);
    expect(code).toMatch(/^[0-9]{16}$/);
    expect(linkCode(ones, counting)).not.toBe(code);
    expect(linkCode(counting, twos)).not.toBe(code);
    expect(digitsOf(display(code))).toBe(code);
    expect(digitsOf(" 9591-0621 9874 9573 ")).toBe(code);
  });
});
