import { useQuery, useQueryClient } from "@tanstack/react-query";
import { createContext, useCallback, useContext, useMemo, useSyncExternalStore, type ReactNode } from "react";
import type { ApiClient } from "../api/client";
import type { MeRead, Role, SessionRead } from "../api/types";
import { clearAllDrafts } from "../lib/drafts";
import type { EndReason, StoredSession } from "./session";

export interface RegisterInput {
  email: string;
  password: string;
  full_name: string;
  tenant_name: string;
}

interface AuthValue {
  api: ApiClient;
  session: StoredSession | null;
  endReason: EndReason | null;
  /** The caller's current role (from /auth/me, so a change applies without signing in again). */
  role: Role | null;
  me: MeRead | undefined;
  login(email: string, password: string): Promise<void>;
  register(input: RegisterInput): Promise<void>;
  acceptInvite(token: string, password: string, fullName?: string): Promise<void>;
  logout(): Promise<void>;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ api, children }: { api: ApiClient; children: ReactNode }) {
  const queryClient = useQueryClient();
  const session = useSyncExternalStore(
    (onChange) => api.session.subscribe(() => onChange()),
    () => api.session.get(),
  );
  const endReason = session ? null : api.session.endReason;
  const userId = session?.user.id;

  const meQuery = useQuery({
    queryKey: ["me", userId],
    queryFn: ({ signal }) => api.get<MeRead>("/api/v1/auth/me", undefined, signal),
    enabled: Boolean(userId),
    staleTime: 60_000,
  });

  const start = useCallback(
    (grant: SessionRead) => {
      queryClient.clear();
      api.session.set(grant);
    },
    [api, queryClient],
  );

  const login = useCallback(
    async (email: string, password: string) => {
      start(await api.post<SessionRead>("/api/v1/auth/login", { email, password }, { auth: false }));
    },
    [api, start],
  );

  const register = useCallback(
    async (input: RegisterInput) => {
      start(await api.post<SessionRead>("/api/v1/auth/register", input, { auth: false }));
    },
    [api, start],
  );

  const acceptInvite = useCallback(
    async (token: string, password: string, fullName?: string) => {
      const body: Record<string, string> = { token, password };
      if (fullName?.trim()) body.full_name = fullName.trim();
      start(await api.post<SessionRead>("/api/v1/auth/accept-invite", body, { auth: false }));
    },
    [api, start],
  );

  const logout = useCallback(async () => {
    const current = api.session.get();
    if (current?.refreshToken) {
      // Revoke this login's refresh tokens; signing out locally happens whatever the answer.
      await api
        .post("/api/v1/auth/logout", { refresh_token: current.refreshToken }, { auth: false })
        .catch(() => undefined);
    }
    clearAllDrafts();
    api.session.end("logout");
    queryClient.clear();
  }, [api, queryClient]);

  const value = useMemo<AuthValue>(
    () => ({
      api,
      session,
      endReason,
      role: meQuery.data?.role ?? session?.user.role ?? null,
      me: meQuery.data,
      login,
      register,
      acceptInvite,
      logout,
    }),
    [api, session, endReason, meQuery.data, login, register, acceptInvite, logout],
  );
  return <AuthContext.Provider value={value}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

export function useApi(): ApiClient {
  return useAuth().api;
}
