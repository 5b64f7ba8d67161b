import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../api/client";
import { DataTable, QueryTable, type Column } from "./DataTable";
import { Empty } from "./ui";

interface Row {
  id: string;
  name: string;
  size: number;
}
const rows: Row[] = [
  { id: "a", name: "alpha", size: 1 },
  { id: "b", name: "beta", size: 2 },
];
const columns: Column<Row>[] = [
  { header: "Name", cell: (r) => <strong>{r.name}</strong> },
  { header: "Size", cell: (r) => r.size, className: "mono" },
];

describe("DataTable", () => {
  it("labels every cell with its header and adds an unlabelled actions column", () => {
    render(
      <DataTable
        rows={rows}
        columns={columns}
        rowKey={(r) => r.id}
        testId="things"
        rowClassName={(r) => (r.size > 1 ? "big" : "")}
        actions={(r) => <button type="button">Drop {r.name}</button>}
      />,
    );
    const table = screen.getByTestId("things");
    const headers = within(table).getAllByRole("columnheader");
    expect(headers.map((h) => h.textContent)).toEqual(["Name", "Size", "Actions"]);
    expect(headers.every((h) => h.getAttribute("scope") === "col")).toBe(true);
    const [, second] = within(table).getAllByRole("row").slice(1);
    expect(second).toHaveClass("big");
    const cells = within(second).getAllByRole("cell");
    expect(cells.map((c) => c.getAttribute("data-label"))).toEqual(["Name", "Size", null]);
    expect(cells[1]).toHaveClass("mono");
    expect(cells[2]).toHaveClass("actions");
    expect(within(cells[2]).getByRole("button", { name: "Drop beta" })).toBeInTheDocument();
  });

  it("has no actions column when none is given", () => {
    render(<DataTable rows={rows} columns={columns} rowKey={(r) => r.id} />);
    expect(screen.getAllByRole("columnheader")).toHaveLength(2);
  });
});

describe("QueryTable", () => {
  const base = {
    rows,
    columns,
    rowKey: (r: Row) => r.id,
    loading: "Loading things",
    empty: <Empty title="Nothing." />,
  };
  const idle = { isPending: false, isError: false, error: null, refetch: () => undefined };

  it("shows loading, then an error with retry, then empty, then the table", async () => {
    const { rerender } = render(<QueryTable {...base} query={{ ...idle, isPending: true }} />);
    expect(screen.getByRole("status", { name: "Loading things" })).toBeInTheDocument();

    const refetch = vi.fn();
    rerender(
      <QueryTable {...base} query={{ ...idle, isError: true, error: new ApiError(500, "x", "Boom"), refetch }} />,
    );
    expect(screen.getByRole("alert")).toHaveTextContent("Boom");
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(refetch).toHaveBeenCalledOnce();

    rerender(<QueryTable {...base} rows={[]} query={idle} />);
    expect(screen.getByText("Nothing.")).toBeInTheDocument();
    expect(screen.queryByRole("table")).not.toBeInTheDocument();

    rerender(<QueryTable {...base} query={idle} />);
    expect(screen.getAllByRole("row")).toHaveLength(3);
  });
});
