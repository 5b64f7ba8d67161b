// The console's list table: headers with scope="col", each cell labelled with its header (the narrow
// layout shows data-label in front of the value), an optional unlabelled actions column; and
// QueryTable, which puts the query's loading, error-with-retry and empty states in front of it.
import type { ReactNode } from "react";
import { ErrorBox, Loading } from "./ui";

export interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
  className?: string;
}

export interface DataTableProps<T> {
  rows: readonly T[];
  columns: readonly Column<T>[];
  rowKey: (row: T) => string;
  actions?: (row: T) => ReactNode;
  rowClassName?: (row: T) => string;
  testId?: string;
  className?: string;
}

export function DataTable<T>({ rows, columns, rowKey, actions, rowClassName, testId, className }: DataTableProps<T>) {
  return (
    <table data-testid={testId} className={className}>
      <thead>
        <tr>
          {columns.map((c) => (
            <th key={c.header} scope="col">
              {c.header}
            </th>
          ))}
          {actions ? (
            <th scope="col">
              <span className="sr-only">Actions</span>
            </th>
          ) : null}
        </tr>
      </thead>
      <tbody>
        {rows.map((row) => (
          <tr key={rowKey(row)} className={rowClassName?.(row)}>
            {columns.map((c) => (
              <td key={c.header} data-label={c.header} className={c.className}>
                {c.cell(row)}
              </td>
            ))}
            {actions ? <td className="actions">{actions(row)}</td> : null}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** What QueryTable needs of a TanStack query. */
export interface QueryLike {
  isPending: boolean;
  isError: boolean;
  error: unknown;
  refetch: () => unknown;
}

export interface QueryTableProps<T> extends DataTableProps<T> {
  query: QueryLike;
  loading: string;
  empty: ReactNode;
}

export function QueryTable<T>({ query, loading, empty, ...table }: QueryTableProps<T>) {
  if (query.isPending) return <Loading what={loading} />;
  if (query.isError) return <ErrorBox error={query.error} retry={() => void query.refetch()} />;
  if (table.rows.length === 0) return <>{empty}</>;
  return <DataTable {...table} />;
}
