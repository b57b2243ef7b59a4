import { describe as group, expect, it } from "vitest";
import { byteSize, describe } from "../../src/app/store.js";
import { ApiError, SecureVoxError } from "../../src/core/index.js";

group("error banners", () => {
  it("show the server's code and message, and say when the server cannot be reached", () => {
    expect(describe(new ApiError(429, "rate_limited", "too many requests; retry in 4 s"))).toEqual({
      code: "rate_limited",
      message: "too many requests; retry in 4 s",
    });
    expect(describe(new ApiError(502, "http_error", ""))).toEqual({ code: "http_error", message: "the server answered 502" });
    expect(describe(new SecureVoxError("network_error", "cannot reach the server (GET /x)"))).toEqual({
      code: "network_error",
      message: "cannot reach the server: offline?",
    });
    expect(describe(new Error("boom"))).toEqual({ code: "error", message: "boom" });
  });
});

group("file sizes", () => {
  it("read as a file manager shows them", () => {
    expect(byteSize(0)).toBe("0 B");
    expect(byteSize(1023)).toBe("1023 B");
    expect(byteSize(1536)).toBe("1.5 KB");
    expect(byteSize(10 * 1024 * 1024 - 16)).toBe("10.0 MB");
    expect(byteSize(200 * 1024 * 1024)).toBe("200 MB");
    expect(byteSize(5 * 1024 ** 4)).toBe("5120 GB");
  });
});
