// Starts one real platform (`sre-copilot up`: embedded NATS and PostgreSQL, every service) on a free
// port with a temporary state dir, for the whole browser suite; stops it with SIGINT afterwards.
// With SRE_COPILOT_URL already set, uses that running platform instead.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, openSync, rmSync, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");
const START_TIMEOUT_MS = 180_000;

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

async function waitForHealth(url: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`sre-copilot up exited with ${child.exitCode}:\n${readFileSync(log, "utf8").slice(-4000)}`);
    }
    try {
      const response = await fetch(`${url}/health`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(
    `the platform did not answer /health within ${START_TIMEOUT_MS / 1000} s:\n${readFileSync(log, "utf8").slice(-4000)}`,
  );
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.once("exit", () => {
      clearTimeout(killer);
      done();
    });
    child.kill("SIGINT");
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  if (process.env.SRE_COPILOT_URL) return async () => undefined;
  const binary = join(ROOT, ".venv", "bin", "sre-copilot");
  if (!existsSync(binary)) throw new Error(`${binary} is missing: run scripts/setup.sh (or ./test.sh) first`);
  if (!existsSync(join(ROOT, "gateway", "console_dist", "index.html"))) {
    throw new Error("gateway/console_dist is missing: run `npm run build` in web/ first");
  }
  const port = await freePort();
  const stateDir = mkdtempSync(join(tmpdir(), "sre-console-e2e-"));
  const log = join(stateDir, "platform.log");
  const out = openSync(log, "a");
  const child = spawn(binary, ["up", "--port", String(port), "--state-dir", join(stateDir, "state")], {
    cwd: ROOT,
    stdio: ["ignore", out, out],
    env: {
      ...process.env,
      LOG_LEVEL: "WARNING",
      AI_ENGINE: "rules",
      // Every test registers its own organisation from 127.0.0.1.
      REGISTER_MAX_PER_ADDRESS: "1000",
      REGISTER_MAX_PER_EMAIL: "1000",
      LOGIN_MAX_FAILURES_PER_ADDRESS: "1000",
      // The webhook test receives deliveries on 127.0.0.1.
      WEBHOOK_ALLOW_PRIVATE_TARGETS: "true",
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHealth(url, child, log);
  } catch (error) {
    await stop(child);
    throw error;
  }
  process.env.SRE_COPILOT_URL = url;
  return async () => {
    await stop(child);
    if (!process.env.KEEP_E2E_STATE) rmSync(stateDir, { recursive: true, force: true });
  };
}
