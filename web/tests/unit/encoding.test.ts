import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { fromBase64, toBase64, toHex } from "../../src/core/encoding.js";

describe("base64", () => {
  it("matches the standard alphabet with padding, both ways", () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 53 + n * 7) & 255);
      const expected = Buffer.from(bytes).toString("base64");
      expect(toBase64(bytes)).toBe(expected);
      expect(fromBase64(expected)).toEqual(bytes);
    }
  });

  it("refuses what is not standard base64", () => {
    for (const bad of ["abc", "ab=c", "a-b_", "====", "ab*="]) expect(() => fromBase64(bad, "x")).toThrow(/x is not valid base64/);
  });

  it("hex is lower case", () => {
    expect(toHex(new Uint8Array([0, 15, 255]))).toBe("000fff");
  });
});
