// Starts a Turnstile server for a test file: the built binary, on an ephemeral port, in test mode.
// Every server's log goes to end2end/logs/ (git-ignored); when a test fails, the tail of its
// server's log is printed with the failure, so a CI report shows what the server saw.
import { test as base } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import * as path from "node:path";
import * as fs from "node:fs";
import * as os from "node:os";

export type Server = { url: string; process: ChildProcess; logPath: string };

export async function startServer(extraArgs: string[] = []): Promise<Server> {
  const bin = process.env.TURNSTILE_BIN ?? path.resolve(__dirname, "../../target/debug/turnstile");
  const siteRoot = process.env.TURNSTILE_SITE_ROOT ?? path.resolve(__dirname, "../../target/site");
  // The embedded model from scripts/model.sh, and a database of this server's own.
  const dataDir = process.env.TURNSTILE_DATA_DIR ?? path.resolve(__dirname, "../../data");
  const model = path.join(dataDir, "models", "SmolLM2-135M-Instruct.Q8_0.gguf");
  const db = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "turnstile-e2e-")), "turnstile.sqlite3");
  // A generous run limit: a loaded CI machine can make a streamed answer slow, and a test
  // must fail on what it checks, not on a chat cut short by the server's own limit.
  // No result cache unless a test asks for it: most tests watch jobs queue and run, and an
  // identical job computed by an earlier test would be answered at once.
  const args = [
    "--addr", "127.0.0.1:0", "--test-mode", "--site-root", siteRoot, "--model", model, "--db", db,
    "--max-run", "120s",
    ...(extraArgs.includes("--cache-entries") ? [] : ["--cache-entries", "0"]),
  ];
  const child = spawn(bin, [...args, ...extraArgs], {
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? "info", NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logDir = path.resolve(__dirname, "../logs");
  fs.mkdirSync(logDir, { recursive: true });
  const logPath = path.join(logDir, `server-${Date.now()}-${child.pid}.log`);
  const logFile = fs.createWriteStream(logPath);
  child.stdout!.pipe(logFile);
  child.stderr!.pipe(logFile);
  const url = await new Promise<string>((resolve, reject) => {
    let log = "";
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${log}`)), 30_000);
    const onData = (chunk: Buffer) => {
      log += chunk.toString();
      const m = log.match(/listening on (http:\/\/[0-9.]+:[0-9]+)/);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        child.stderr!.off("data", onData);
        resolve(m[1]);
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return { url, process: child, logPath };
}

/** The last `lines` lines of a server's log. */
export function logTail(server: Server, lines = 40): string {
  try {
    return fs.readFileSync(server.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * `server` is started once per worker (with the file's `serverArgs`, set by `test.use`) and
 * stopped after its tests; a failed test prints the tail of its log.
 */
export const test = base.extend<{ _logOnFailure: void }, { server: Server; serverArgs: string[] }>({
  serverArgs: [[], { scope: "worker", option: true }],
  server: [
    async ({ serverArgs }, use) => {
      const server = await startServer(serverArgs);
      await use(server);
      server.process.kill("SIGTERM");
    },
    { scope: "worker" },
  ],
  _logOnFailure: [
    async ({ server }, use, testInfo) => {
      await use();
      if (testInfo.status !== testInfo.expectedStatus) {
        console.log(`--- server log (${server.url}), last lines ---\n${logTail(server)}\n---`);
      }
    },
    { auto: true },
  ],
});

export { expect } from "@playwright/test";
