// Benchmark, not a test (run by `make bench`, not by `make test`): time from navigation start to
// a hydrated page, in Chromium, through the Performance API. Each page is loaded RUNS times in a
// fresh context (cold cache) and the time at which the app marks itself live
// (`data-hydrated="true"`, set by its first effect) is read as `performance.now()` relative to
// the navigation's start. Also reports the bundle's size as served (raw and gzip).
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
  try {
    for (const route of PAGES) {
      const times: number[] = [];
      const dcl: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const context = await browser.newContext();
        const page = await context.newPage();
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
  const wasm = fs.readFileSync(path.join(site, "pkg", "turnstile_bg.wasm"));
  const js = fs.readFileSync(path.join(site, "pkg", "turnstile.js"));
  const bundle = {
    wasm_bytes: wasm.length,
    wasm_gzip_bytes: zlib.gzipSync(wasm, { level: 9 }).length,
    js_bytes: js.length,
    js_gzip_bytes: zlib.gzipSync(js, { level: 9 }).length,
  };
  console.table(results);
  console.table([bundle]);
  const out = process.env.BENCH_JSON;
  if (out) fs.writeFileSync(out, JSON.stringify({ pages: results, bundle }, null, 2));
});
