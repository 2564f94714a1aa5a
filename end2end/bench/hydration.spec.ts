// Benchmark, not a test (run by `make bench`, not by `make test`): time from navigation start to
// a hydrated page, in Chromium, through the Performance API. Each page is loaded RUNS times in a
// fresh context (cold cache) and the time at which the app marks itself live
// (`data-hydrated="true"`, set by an effect of the page shown once its own lazily loaded code has
// hydrated) is read as `performance.now()` relative to the navigation's start. Also reports the bundle's size as served (raw and gzip): the main bundle
// and, apart, the lazily loaded pages' files; and each page's first load: the wasm (and JS) files
// the browser fetched for it until it was hydrated, each gzipped on its own (level 9), added up.
// Target: at most 300,000 bytes of wasm gzipped for every page.
import { test } from "@playwright/test";
import { startServer } from "../tests/server";
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";

const RUNS = Number(process.env.RUNS ?? 15);
const PAGES = ["/", "/chat", "/stats", "/embed/calculator", "/embed/chat"];

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

test("navigation to hydrated page", async ({ browser }) => {
  test.setTimeout(300_000);
  const server = await startServer([]);
  const results: Record<string, unknown>[] = [];
  const firstLoad: Record<string, Set<string>> = {};
  try {
    for (const route of PAGES) {
      const times: number[] = [];
      const dcl: number[] = [];
      const files = (firstLoad[route] = new Set<string>());
      for (let i = 0; i < RUNS; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
        page.on("request", (r) => {
          const m = new URL(r.url()).pathname.match(/^\/pkg\/([^/]+\.(?:wasm|js))$/);
          if (m && i === 0) files.add(m[1]);
        });
        await page.addInitScript(() => {
          new MutationObserver((_, obs) => {
            if (document.querySelector("[data-hydrated=true]")) {
              (window as any).hydratedAt = performance.now();
              obs.disconnect();
            }
          }).observe(document, { subtree: true, attributes: true, childList: true });
        });
        await page.goto(server.url + route);
        await page.waitForFunction(() => (window as any).hydratedAt !== undefined, null, { timeout: 20_000 });
        // What was fetched by the time the page was hydrated is its first load (first run only).
        if (i === 0) files.add("(hydrated)");
        times.push(await page.evaluate(() => (window as any).hydratedAt));
        dcl.push(
          await page.evaluate(() => {
            const nav = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
            return nav.domContentLoadedEventEnd;
          }),
        );
        await context.close();
      }
      results.push({
        page: route,
        runs: RUNS,
        hydrated_p50_ms: +percentile(times, 50).toFixed(1),
        hydrated_p90_ms: +percentile(times, 90).toFixed(1),
        hydrated_max_ms: +Math.max(...times).toFixed(1),
        dom_content_loaded_p50_ms: +percentile(dcl, 50).toFixed(1),
      });
    }
  } finally {
    server.process.kill("SIGTERM");
  }
  const site = process.env.TURNSTILE_SITE_ROOT ?? path.resolve(__dirname, "../../target/site");
  // `wasm_*`: the main bundle, which every page loads first.
  // `lazy_wasm_*`: the lazily loaded files together (split_*.wasm, chunk_*.wasm: each page's own
  // code and the chat's Markdown renderer). Each gzipped on its own, sizes added up.
  const pkg = path.join(site, "pkg");
  const gz = (b: Buffer) => zlib.gzipSync(b, { level: 9 }).length;
  const wasm = fs.readFileSync(path.join(pkg, "turnstile_bg.wasm"));
  const js = fs.readFileSync(path.join(pkg, "turnstile.js"));
  const lazy = fs
    .readdirSync(pkg)
    .filter((f) => /^(split|chunk)_.*\.wasm$/.test(f))
    .map((f) => fs.readFileSync(path.join(pkg, f)));
  const bundle = {
    wasm_bytes: wasm.length,
    wasm_gzip_bytes: gz(wasm),
    js_bytes: js.length,
    js_gzip_bytes: gz(js),
    lazy_wasm_files: lazy.length,
    lazy_wasm_bytes: lazy.reduce((n, b) => n + b.length, 0),
    lazy_wasm_gzip_bytes: lazy.reduce((n, b) => n + gz(b), 0),
  };
  // Each page's first load: the files fetched before it was hydrated.
  const first_load = PAGES.map((route) => {
    const fetched = [...firstLoad[route]];
    const before = fetched.slice(0, fetched.indexOf("(hydrated)"));
    const size = (ext: string) =>
      before.filter((f) => f.endsWith(ext)).reduce((n, f) => n + gz(fs.readFileSync(path.join(pkg, f))), 0);
    return {
      page: route,
      wasm_files: before.filter((f) => f.endsWith(".wasm")).length,
      wasm_gzip_bytes: size(".wasm"),
      js_gzip_bytes: size(".js"),
      wasm_within_300kb: size(".wasm") <= 300_000,
    };
  });
  console.table(results);
  console.table([bundle]);
  console.table(first_load);
  const out = process.env.BENCH_JSON;
  if (out) fs.writeFileSync(out, JSON.stringify({ pages: results, bundle, first_load }, null, 2));
});
