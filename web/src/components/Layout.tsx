import { useEffect, useRef, useState } from "react";
import { NavLink, Outlet, useLocation, useNavigate } from "react-router";
import { useAuth } from "../auth/AuthContext";
import { atLeast } from "../lib/incidents";
import { ConnectionPill } from "./ConnectionPill";

function isTyping(target: EventTarget | null): boolean {
  const el = target as HTMLElement | null;
  if (!el) return false;
  const tag = el.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable;
}

export function Layout() {
  const { session, role, logout } = useAuth();
  const [menuOpen, setMenuOpen] = useState(false);
  const location = useLocation();
  const navigate = useNavigate();
  const mainRef = useRef<HTMLElement>(null);

  useEffect(() => setMenuOpen(false), [location.pathname]);

  // Keyboard: "n" opens a new incident, "/" jumps to the incident search, "g d" / "g i" go places.
  useEffect(() => {
    let pendingG = false;
    const onKey = (e: KeyboardEvent) => {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || isTyping(e.target)) return;
      if (pendingG) {
        pendingG = false;
        if (e.key === "d") navigate("/");
        else if (e.key === "i") navigate("/incidents");
        return;
      }
      if (e.key === "g") pendingG = true;
      else if (e.key === "n" && atLeast(role, "responder")) {
        e.preventDefault();
        navigate("/incidents/new");
      } else if (e.key === "/") {
        const search = document.getElementById("incident-search");
        e.preventDefault();
        if (search) search.focus();
        else navigate("/incidents?focus=search");
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [navigate, role]);

  const admin = atLeast(role, "admin");
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="sidebar">
        <div className="sidebar-top">
          <NavLink to="/" className="brand" aria-label="SRE Copilot home">
            <svg viewBox="0 0 32 32" width="28" height="28" aria-hidden="true">
              <rect width="32" height="32" rx="7" fill="#e5484d" />
              <path
                d="M6 17h5l3-7 4 13 3-6h5"
                stroke="white"
                strokeWidth="2.6"
                fill="none"
                strokeLinecap="round"
                strokeLinejoin="round"
              />
            </svg>
            <span>SRE Copilot</span>
          </NavLink>
          <ConnectionPill />
          <button
            type="button"
            className="menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="main-nav"
            onClick={() => setMenuOpen((open) => !open)}
          >
            <span className="sr-only">Menu</span>
            <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
              <path d="M4 7h16M4 12h16M4 17h16" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
            </svg>
          </button>
        </div>
        <nav id="main-nav" aria-label="Main" className={menuOpen ? "open" : ""}>
          <NavLink to="/" end>
            Dashboard
          </NavLink>
          <NavLink to="/incidents" end>
            Incidents
          </NavLink>
          {atLeast(role, "responder") ? <NavLink to="/incidents/new">New incident</NavLink> : null}
          <NavLink to="/silences">Maintenance windows</NavLink>
          <NavLink to="/follow-ups">Follow-ups</NavLink>
          <div className="nav-section" aria-hidden="true">
            On-call
          </div>
          <NavLink to="/on-call/schedules">Schedules</NavLink>
          <NavLink to="/on-call/me">My shifts</NavLink>
          <NavLink to="/on-call/policies">Escalation policies</NavLink>
          <NavLink to="/on-call/teams">Teams</NavLink>
          {admin ? (
            <>
              <div className="nav-section" aria-hidden="true">
                Admin
              </div>
              <NavLink to="/admin/people">People &amp; roles</NavLink>
              <NavLink to="/admin/keys">Integration keys</NavLink>
              <NavLink to="/admin/webhooks">Webhooks</NavLink>
              <NavLink to="/admin/json-sources">JSON sources</NavLink>
              <NavLink to="/admin/correlation-rules">Correlation rules</NavLink>
            </>
          ) : null}
          <div className="sidebar-foot">
            <div className="who">
              <strong>{session?.user.full_name}</strong>
              <span>
                {session?.tenant.name} · <span data-testid="my-role">{role}</span>
              </span>
            </div>
            <button type="button" className="btn btn-ghost btn-small" onClick={() => void logout()}>
              Sign out
            </button>
          </div>
        </nav>
      </header>
      <main id="main" ref={mainRef} tabIndex={-1}>
        <Outlet />
      </main>
    </div>
  );
}
