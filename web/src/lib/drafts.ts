// What someone is typing survives a trip through the login page: forms keep their drafts in this
// tab's sessionStorage until they are submitted (or the person signs out).
import { useCallback, useEffect, useRef, useState } from "react";

const PREFIX = "sre-copilot.draft.";

function load<T>(key: string, initial: T): T {
  try {
    const raw = sessionStorage.getItem(PREFIX + key);
    return raw ? { ...initial, ...(JSON.parse(raw) as T) } : initial;
  } catch {
    return initial;
  }
}

export function useDraft<T extends object>(key: string, initial: T): [T, (next: T) => void, () => void] {
  const initialRef = useRef(initial);
  const [value, setValue] = useState<T>(() => load(key, initial));
  useEffect(() => {
    setValue(load(key, initialRef.current));
  }, [key]);
  const update = useCallback(
    (next: T) => {
      setValue(next);
      try {
        sessionStorage.setItem(PREFIX + key, JSON.stringify(next));
      } catch {
        // storage full or unavailable: the draft lives in memory only
      }
    },
    [key],
  );
  const clear = useCallback(() => {
    setValue(initialRef.current);
    try {
      sessionStorage.removeItem(PREFIX + key);
    } catch {
      // ignore
    }
  }, [key]);
  return [value, update, clear];
}

export function clearAllDrafts(): void {
  try {
    for (let i = sessionStorage.length - 1; i >= 0; i -= 1) {
      const name = sessionStorage.key(i);
      if (name?.startsWith(PREFIX)) sessionStorage.removeItem(name);
    }
  } catch {
    // ignore
  }
}
