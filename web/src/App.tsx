import { Navigate, Route, Routes, useLocation } from "react-router";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { CorrelationRulesPage } from "./pages/admin/CorrelationRulesPage";
import { JsonSourcesPage } from "./pages/admin/JsonSourcesPage";
import { KeysPage } from "./pages/admin/KeysPage";
import { PeoplePage } from "./pages/admin/PeoplePage";
import { SilencesPage } from "./pages/admin/SilencesPage";
import { WebhooksPage } from "./pages/admin/WebhooksPage";
import { AcceptInvitePage, LoginPage, RegisterPage } from "./pages/AuthPages";
import { DashboardPage } from "./pages/DashboardPage";
import { FollowUpsPage } from "./pages/FollowUpsPage";
import { IncidentPage } from "./pages/IncidentPage";
import { IncidentsPage } from "./pages/IncidentsPage";
import { NewIncidentPage } from "./pages/NewIncidentPage";
import { NotFoundPage } from "./pages/NotFoundPage";
import { MyShiftsPage } from "./pages/oncall/MyShiftsPage";
import { PoliciesPage } from "./pages/oncall/PoliciesPage";
import { SchedulePage } from "./pages/oncall/SchedulePage";
import { SchedulesPage } from "./pages/oncall/SchedulesPage";
import { TeamsPage } from "./pages/oncall/TeamsPage";

/** Signed-out visitors go to the login page, which brings them back here afterwards. */
function RequireSession({ children }: { children: React.ReactNode }) {
  const { session, endReason } = useAuth();
  const location = useLocation();
  if (!session) {
    const next = location.pathname + location.search;
    const params = new URLSearchParams();
    if (next !== "/") params.set("next", next);
    if (endReason === "expired") params.set("expired", "1");
    const query = params.toString();
    return <Navigate to={`/login${query ? `?${query}` : ""}`} replace />;
  }
  return <>{children}</>;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/register" element={<RegisterPage />} />
      <Route path="/accept-invite" element={<AcceptInvitePage />} />
      <Route
        element={
          <RequireSession>
            <Layout />
          </RequireSession>
        }
      >
        <Route index element={<DashboardPage />} />
        <Route path="incidents" element={<IncidentsPage />} />
        <Route path="incidents/new" element={<NewIncidentPage />} />
        <Route path="incidents/:id" element={<IncidentPage />} />
        <Route path="follow-ups" element={<FollowUpsPage />} />
        <Route path="admin" element={<Navigate to="/admin/people" replace />} />
        <Route path="admin/people" element={<PeoplePage />} />
        <Route path="admin/keys" element={<KeysPage />} />
        <Route path="admin/webhooks" element={<WebhooksPage />} />
        <Route path="admin/json-sources" element={<JsonSourcesPage />} />
        <Route path="admin/correlation-rules" element={<CorrelationRulesPage />} />
        <Route path="silences" element={<SilencesPage />} />
        <Route path="on-call" element={<Navigate to="/on-call/schedules" replace />} />
        <Route path="on-call/schedules" element={<SchedulesPage />} />
        <Route path="on-call/schedules/:id" element={<SchedulePage />} />
        <Route path="on-call/me" element={<MyShiftsPage />} />
        <Route path="on-call/policies" element={<PoliciesPage />} />
        <Route path="on-call/teams" element={<TeamsPage />} />
        <Route path="*" element={<NotFoundPage />} />
      </Route>
    </Routes>
  );
}
