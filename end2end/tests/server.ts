// Starts a Turnstile server for a test file: the built binary, on an ephemeral port, in test mode.
import { test as base } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";

export type Server = { url: string; process: ChildProcess };

export async function startServer(extraArgs: string[] = []): Promise<Server> {
  const bin = process.env.TURNSTILE_BIN ?? path.resolve(__dirname, "../../target/debug/turnstile");
  const siteRoot = process.env.TURNSTILE_SITE_ROOT ?? path.resolve(__dirname, "../../target/site");
  // The embedded model from scripts/model.sh, and a database of this server's own.
  const dataDir = process.env.TURNSTILE_DATA_DIR ?? path.resolve(__dirname, "../../data");
  const model = path.join(dataDir, "models", "SmolLM2-135M-Instruct.Q8_0.gguf");
  const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "turnstile-e2e-")), "turnstile.sqlite3");
  const args = ["--addr", "127.0.0.1:0", "--test-mode", "--site-root", siteRoot, "--model", model, "--db", db];
  const child = spawn(bin, [...args, ...extraArgs], {
    env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = log.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return { url, process: child };
}

/** `server` is started once per worker and stopped after its tests. */
export const test = base.extend<{}, { server: Server }>({
  server: [
    async ({}, use) => {
      const server = await startServer();
      await use(server);
      server.process.kill("SIGTERM");
    },
    { scope: "worker" },
  ],
});

export { expect } from "@playwright/test";
