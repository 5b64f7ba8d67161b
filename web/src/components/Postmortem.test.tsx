import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import type { PostmortemRead } from "../api/types";
import { Markdown, safeHref } from "../lib/markdown";
import { PostmortemView } from "./Postmortem";

const ID = "01936f3e-0000-7000-8000-000000000001";
const POSTMORTEM: PostmortemRead = {
  incident_id: "i-1",
  version: 2,
  status: "draft",
  markdown: `# Postmortem: INC-1\n\n## Timeline\n\n- Opened by Ann [#12](#event-${ID})\n- [ ] Add a canary\n- [x] Roll back\n- evil [x](javascript:alert(1))`,
  citations: [{ event_id: ID, seq: 12 }],
  engine: "template",
  fallback_reason: "claude: cites events that are not in the log: #5 event x",
  updated_by: "u",
  updated_at: "2026-12-01T10:00:00Z",
};

describe("Markdown", () => {
  it("links citations to the timeline and never to a script", () => {
    render(<Markdown text={POSTMORTEM.markdown} />);
    const citation = screen.getByRole("link", { name: "#12" });
    expect(citation.getAttribute("href")).toBe(`#event-${ID}`);
    expect(screen.queryByRole("link", { name: "x" })).toBeNull();
    expect(screen.getByText(/evil/).textContent).toContain("javascript:alert(1)");
    const boxes = screen.getAllByRole("checkbox");
    expect(boxes.map((b) => (b as HTMLInputElement).checked)).toEqual([false, true]);
    expect(screen.getByRole("heading", { name: "Timeline" })).toBeTruthy();
  });

  it("allows only timeline anchors and http(s)", () => {
    expect(safeHref(`#event-${ID}`)).toBe(`#event-${ID}`);
    expect(safeHref("https://example.com/x")).toBe("https://example.com/x");
    expect(safeHref("javascript:alert(1)")).toBeNull();
    expect(safeHref("#elsewhere")).toBeNull();
  });
});

describe("PostmortemView", () => {
  it("shows the fallback reason and the citations, edits and publishes", async () => {
    const onSave = vi.fn();
    const onPublish = vi.fn();
    render(<PostmortemView postmortem={POSTMORTEM} canAct busy={false} onSave={onSave} onPublish={onPublish} />);
    expect(screen.getByRole("note").textContent).toContain("cites events that are not in the log");
    const cited = screen.getByText("1 cited events").closest("details")!;
    expect(within(cited).getByRole("link", { name: "#12" }).getAttribute("href")).toBe(`#event-${ID}`);
    await userEvent.click(screen.getByRole("tab", { name: "Edit" }));
    const editor = screen.getByLabelText("Markdown");
    await userEvent.clear(editor);
    await userEvent.type(editor, "# New text");
    await userEvent.click(screen.getByRole("button", { name: "Save version 3" }));
    expect(onSave).toHaveBeenCalledWith("# New text");
    await userEvent.click(screen.getByRole("button", { name: "Publish version 2" }));
    expect(onPublish).toHaveBeenCalled();
  });

  it("offers a viewer no edit and no publish", () => {
    render(<PostmortemView postmortem={POSTMORTEM} canAct={false} busy={false} onSave={vi.fn()} onPublish={vi.fn()} />);
    expect(screen.queryByRole("tab", { name: "Edit" })).toBeNull();
    expect(screen.queryByRole("button", { name: /Publish/ })).toBeNull();
  });
});
