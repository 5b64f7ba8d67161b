import { act, renderHook } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { errorsByPath } from "./oncall";
import { useSubmit } from "./useSubmit";

const invalid = (details: unknown) => new ApiError(422, "validation_error", "Invalid input", details);

describe("useSubmit", () => {
  it("is busy while the request runs and clean after it succeeds", async () => {
    const { result } = renderHook(() => useSubmit());
    let finish: () => void = () => undefined;
    let ok: Promise<boolean> = Promise.resolve(false);
    act(() => {
      ok = result.current.run(() => new Promise<void>((resolve) => (finish = resolve)));
    });
    expect(result.current.busy).toBe(true);
    await act(async () => {
      finish();
      await ok;
    });
    await expect(ok).resolves.toBe(true);
    expect(result.current.busy).toBe(false);
    expect(result.current.error).toBeNull();
    expect(result.current.fieldErrors).toEqual({});
  });

  it("puts a 422's details on the fields and keeps it out of formError", async () => {
    const { result } = renderHook(() => useSubmit());
    const err = invalid([{ loc: ["body", "name"], msg: "Too long" }]);
    let ok = true;
    await act(async () => {
      ok = await result.current.run(() => Promise.reject(err));
    });
    expect(ok).toBe(false);
    expect(result.current.fieldErrors).toEqual({ name: "Too long" });
    expect(result.current.error).toBe(err);
    expect(result.current.formError).toBeNull();
  });

  it("shows a 422 with no field details, and any other failure, in formError", async () => {
    const { result } = renderHook(() => useSubmit());
    const bare = invalid(undefined);
    await act(async () => void (await result.current.run(() => Promise.reject(bare))));
    expect(result.current.formError).toBe(bare);
    const conflict = new ApiError(409, "conflict", "Taken");
    await act(async () => void (await result.current.run(() => Promise.reject(conflict))));
    expect(result.current.formError).toBe(conflict);
    expect(result.current.fieldErrors).toEqual({});
  });

  it("maps failures with the given function, and shows all but a mapped 422 in formError", async () => {
    const { result } = renderHook(() => useSubmit((err) => errorsByPath(err, [409, 422])));
    const conflict = new ApiError(409, "conflict", "Deactivated", [{ loc: ["body", "members", 0], msg: "Gone" }]);
    await act(async () => void (await result.current.run(() => Promise.reject(conflict))));
    expect(result.current.fieldErrors).toEqual({ "members.0": "Gone" });
    expect(result.current.formError).toBe(conflict);
    const bad = invalid([{ loc: ["body", "steps", 0, "target"], msg: "Unknown" }]);
    await act(async () => void (await result.current.run(() => Promise.reject(bad))));
    expect(result.current.fieldErrors).toEqual({ "steps.0.target": "Unknown" });
    expect(result.current.formError).toBeNull();
    act(() => result.current.reset());
    expect(result.current.error).toBeNull();
    expect(result.current.fieldErrors).toEqual({});
  });
});
