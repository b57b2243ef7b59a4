import { describe, expect, it } from "vitest";
import { previewType, safeName } from "../../src/app/Attachments.js";

describe("which files are previewed inline", () => {
  it("takes the declared type when there is one, and only the image types it shows", () => {
    expect(previewType({ name: "cat.bin", mime: "image/png" })).toBe("image/png");
    expect(previewType({ name: "cat.PNG", mime: "IMAGE/JPEG" })).toBe("image/jpeg");
    // A declared type that is not a previewed image is not overridden by the name.
    expect(previewType({ name: "cat.png", mime: "image/svg+xml" })).toBeUndefined();
    expect(previewType({ name: "notes.png", mime: "text/html" })).toBeUndefined();
  });

  it("falls back on the file name's extension (the CLI and older clients send no type)", () => {
    expect(previewType({ name: "holiday.JPG" })).toBe("image/jpeg");
    expect(previewType({ name: "a.b.webp" })).toBe("image/webp");
    expect(previewType({ name: "drawing.svg" })).toBeUndefined();
    expect(previewType({ name: "report.pdf" })).toBeUndefined();
    expect(previewType({ name: "png" })).toBeUndefined();
    expect(previewType({ name: "toString" })).toBeUndefined();
    expect(previewType({ name: "x.constructor" })).toBeUndefined();
  });
});

describe("file names as shown and saved", () => {
  it("lose control and direction-override characters", () => {
    expect(safeName("photo\u202Egnp.exe")).toBe("photognp.exe");
    expect(safeName("a\u0000b\nc\u2066d.txt")).toBe("abcd.txt");
    expect(safeName("report 2026.pdf")).toBe("report 2026.pdf");
    expect(safeName("\u202E")).toBe("file");
  });
});
