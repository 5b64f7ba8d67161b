/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the console on :5173 and proxies the API to a platform on :8000
// (./run.sh); the gateway's CORS defaults already allow that origin.
const gateway = process.env.SRE_COPILOT_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  // Into the gateway's package, which serves it at / and carries it into the wheel and the image.
  build: { outDir: "../gateway/console_dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      "/api/v1/stream": { target: gateway.replace(/^http/, "ws"), ws: true },
      "/api": gateway,
      "/health": gateway,
      "/openapi.json": gateway,
    },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}"],
    setupFiles: ["src/test/setup.ts"],
    restoreMocks: true,
  },
});
