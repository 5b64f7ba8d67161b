// The busy / error / field-errors state every console form kept by hand, and the 422 handling in one
// place: a 422's details go onto the fields, and `formError` leaves out an error the fields already show.
import { useCallback, useState } from "react";
import { ApiError } from "../api/client";

export type FieldErrors = Record<string, string>;

export interface SubmitState {
  busy: boolean;
  /** The last failure, whatever it was. */
  error: unknown;
  /** The last failure unless it was a 422 whose details landed on fields. */
  formError: unknown;
  fieldErrors: FieldErrors;
  /** For checks made in the browser before anything is sent. */
  setFieldErrors: (errors: FieldErrors) => void;
  /** Runs `fn` (the request and what follows it); resolves to whether it succeeded. */
  run: (fn: () => Promise<unknown>) => Promise<boolean>;
  reset: () => void;
}

const detailFields = (err: unknown): FieldErrors =>
  err instanceof ApiError && err.status === 422 ? err.fieldErrors() : {};

/**
 * `fieldsOf` maps a failure onto field names, for forms whose fields are not the body's top-level keys
 * or whose other errors (a 409 naming members) also point at fields; only a 422 so mapped stays out of
 * `formError`.
 */
export function useSubmit(fieldsOf: (err: unknown) => FieldErrors = detailFields): SubmitState {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [onFields, setOnFields] = useState(false);
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});

  const run = useCallback(
    async (fn: () => Promise<unknown>) => {
      setBusy(true);
      setError(null);
      setOnFields(false);
      setFieldErrors({});
      try {
        await fn();
        return true;
      } catch (err) {
        const fields = fieldsOf(err);
        setFieldErrors(fields);
        setOnFields(err instanceof ApiError && err.status === 422 && Object.keys(fields).length > 0);
        setError(err);
        return false;
      } finally {
        setBusy(false);
      }
    },
    [fieldsOf],
  );

  const reset = useCallback(() => {
    setError(null);
    setOnFields(false);
    setFieldErrors({});
  }, []);

  return { busy, error, formError: onFields ? null : error, fieldErrors, setFieldErrors, run, reset };
}
