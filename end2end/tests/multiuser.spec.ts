// Several people at once, in separate browser contexts: whose turn it is and what each sees while
// waiting. A deterministic slow job (test mode) holds the device first. Also writes screenshots
// of every page at 1280 and 360 px to end2end/screenshots/ (git-ignored) for people to look at.
import { test, expect } from "./server";
import type { Browser, Page } from "@playwright/test";
import * as path from "node:path";

/** Starts a slow job from a raw socket in its own context; resolves once it holds the device. */
async function holdDevice(browser: Browser, url: string, ms: number) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url + "/");
  await page.evaluate(
    ({ wsUrl, ms }) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        (window as any).slowSocket = ws;
        ws.onopen = () =>
          ws.send(JSON.stringify({ type: "submit", client_ref: "slow", job: { kind: "calc", op: "sleep", ms } }));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === "started") resolve();
          if (m.type === "error") reject(new Error(m.message));
        };
      }),
    { wsUrl: url.replace("http", "ws") + "/ws", ms },
  );
  return context;
}

/** A calculator in a context of its own, recording every position its status line shows. */
async function person(browser: Browser, url: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url + "/");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await page.evaluate(() => {
    const seen: number[] = [];
    (window as any).positions = seen;
    new MutationObserver(() => {
      const m = document.querySelector("[data-testid=status]")?.textContent?.match(/Position (\d+)/);
      if (m && seen[seen.length - 1] !== Number(m[1])) seen.push(Number(m[1]));
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  return { context, page };
}

const positions = (page: Page): Promise<number[]> => page.evaluate(() => (window as any).positions);

test("three people wait behind a slow job: own positions, only going down, own results", async ({ browser, server }) => {
  const people = [
    { op: "add", cells: ["6", "8", "10", "12"] },
    { op: "sub", cells: ["-4", "-4", "-4", "-4"] },
    { op: "mul", cells: ["5", "12", "21", "32"] },
  ];
  // Everyone's page is open and live before the slow job starts, so all three submit while it
  // holds the device, however slow the machine.
  const pages = [];
  for (const p of people) {
    const { context, page } = await person(browser, server.url);
    await page.getByTestId("op").selectOption(p.op);
    pages.push({ ...p, context, page });
  }
  const slow = await holdDevice(browser, server.url, 8000);
  for (const [i, p] of pages.entries()) {
    await p.page.getByTestId("submit").click();
    await expect(p.page.getByTestId("status")).toContainText(`Position ${i + 1}`);
  }
  for (const [i, p] of pages.entries()) {
    await expect(p.page.getByTestId("result").locator(".cell")).toHaveText(p.cells, { timeout: 20_000 });
    const seen = await positions(p.page);
    expect(seen[0]).toBe(i + 1);
    for (let k = 1; k < seen.length; k++) expect(seen[k]).toBeLessThan(seen[k - 1]);
  }
  for (const p of pages) await p.context.close();
  await slow.close();
});

test("someone who closes their tab while waiting leaves the queue at once", async ({ browser, server }) => {
  const leaver = await person(browser, server.url);
  const stayer = await person(browser, server.url);
  const slow = await holdDevice(browser, server.url, 8000);
  await leaver.page.getByTestId("submit").click();
  await expect(leaver.page.getByTestId("status")).toContainText("Position 1");
  await stayer.page.getByTestId("submit").click();
  await expect(stayer.page.getByTestId("status")).toContainText("Position 2");
  await leaver.context.close();
  // Well before the slow job ends (8 s), the one who stayed moves up.
  await expect(stayer.page.getByTestId("status")).toContainText("Position 1", { timeout: 3_000 });
  await expect(stayer.page.getByTestId("result").locator(".cell")).toHaveText(["19", "22", "43", "50"], {
    timeout: 20_000,
  });
  await stayer.context.close();
  await slow.close();
});

test("screenshots of every page at 1280 and 360 px", async ({ browser, server }) => {
  const dir = path.resolve(__dirname, "../screenshots");
  for (const width of [1280, 360]) {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    const page = await context.newPage();
    for (const [name, route] of [
      ["calculator", "/"],
      ["chat", "/chat"],
      ["stats", "/stats"],
      ["embed-calculator", "/embed/calculator?theme=light"],
      ["embed-chat", "/embed/chat?theme=dark"],
    ]) {
      await page.goto(server.url + route);
      await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
      // Nothing may stick out sideways, at either width.
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `${name} at ${width} px`).toBeLessThanOrEqual(0);
      await page.screenshot({ path: path.join(dir, `${name}-${width}.png`), fullPage: true });
    }
    await context.close();
  }
});
