import { test, expect, startServer } from "./server";
import type { Page } from "@playwright/test";

async function openCalculator(page: Page, url: string) {
  await page.goto(url + "/");
  // Clicking before hydration would do nothing: wait for the app to say it is live.
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
}

test("the server-rendered page is meaningful before hydration", async ({ browser, server }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url + "/");
  await expect(page.getByTestId("op")).toBeVisible();
  await expect(page.getByTestId("submit")).toBeVisible();
  await context.close();
});

test("the hydrated calculator computes a matmul on the device", async ({ page, server }) => {
  await openCalculator(page, server.url);
  await page.getByTestId("op").selectOption("matmul");
  await page.getByTestId("submit").click();
  const result = page.getByTestId("result");
  await expect(result).toBeVisible();
  await expect(result.locator(".cell")).toHaveText(["19", "22", "43", "50"]);
  await expect(page.getByTestId("heatmap")).toBeVisible();
});

test("an identical job is answered from the server's cache, and says so", async ({ browser }) => {
  const cached = await startServer(["--cache-entries", "100"]);
  try {
    const page = await (await browser.newContext()).newPage();
    await openCalculator(page, cached.url);
    await page.getByTestId("op").selectOption("matmul");
    await page.getByTestId("submit").click();
    await expect(page.getByTestId("status")).toContainText("computed in");
    await expect(page.getByTestId("status")).not.toContainText("cache");
    // The same job again (another person, same operands): no wait, no device.
    const other = await (await browser.newContext()).newPage();
    await openCalculator(other, cached.url);
    await other.getByTestId("op").selectOption("matmul");
    await other.getByTestId("submit").click();
    await expect(other.getByTestId("status")).toContainText("from the cache");
    await expect(other.getByTestId("result").locator(".cell")).toHaveText(["19", "22", "43", "50"]);
  } finally {
    cached.process.kill("SIGTERM");
  }
});

test("a second user sees a live position while the first one's slow job runs", async ({ browser, server }) => {
  // First user: a deterministic slow job (test mode), submitted from their own page's socket.
  const first = await browser.newContext();
  const firstPage = await first.newPage();
  await firstPage.goto(server.url + "/");
  await firstPage.evaluate(
    (wsUrl) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(wsUrl);
        (window as any).slowSocket = ws;
        ws.onopen = () =>
          ws.send(JSON.stringify({ type: "submit", client_ref: "slow", job: { kind: "calc", op: "sleep", ms: 4000 } }));
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === "started") resolve();
          if (m.type === "error") reject(new Error(m.message));
        };
      }),
    server.url.replace("http", "ws") + "/ws",
  );

  // Second user, in another browser context, through the UI.
  const second = await browser.newContext();
  const page = await second.newPage();
  await openCalculator(page, server.url);
  await page.getByTestId("submit").click();
  const status = page.getByTestId("status");
  await expect(status).toContainText(/Position [1-9]/);
  // Then their own result, not the first user's.
  await expect(page.getByTestId("result").locator(".cell")).toHaveText(["19", "22", "43", "50"], { timeout: 20_000 });
  await first.close();
  await second.close();
});

test("cancel while waiting leaves the queue", async ({ browser, server }) => {
  const first = await browser.newContext();
  const firstPage = await first.newPage();
  await firstPage.goto(server.url + "/");
  await firstPage.evaluate((wsUrl) => {
    const ws = new WebSocket(wsUrl);
    (window as any).slowSocket = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "submit", client_ref: "slow", job: { kind: "calc", op: "sleep", ms: 3000 } }));
  }, server.url.replace("http", "ws") + "/ws");

  const second = await browser.newContext();
  const page = await second.newPage();
  await openCalculator(page, server.url);
  await page.getByTestId("submit").click();
  await expect(page.getByTestId("status")).toContainText(/Position [1-9]/);
  await page.getByTestId("cancel").click();
  await expect(page.getByTestId("error")).toContainText("cancelled");
  await first.close();
  await second.close();
});

test("the page's script policy blocks an injected inline script, and the app still runs", async ({ page, server }) => {
  const violations: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) violations.push(m.text());
  });
  await openCalculator(page, server.url);
  // What a successful injection would do: an inline script without the page's nonce.
  await page.evaluate(() => {
    const s = document.createElement("script");
    s.textContent = "window.injected = true";
    document.head.appendChild(s);
  });
  expect(await page.evaluate(() => (window as any).injected)).toBeUndefined();
  await expect.poll(() => violations.length).toBeGreaterThan(0);
  // The app itself (its own scripts, WebAssembly, its socket) is unaffected.
  await page.getByTestId("op").selectOption("add");
  await page.getByTestId("submit").click();
  await expect(page.getByTestId("result")).toBeVisible();
});

test("unary ops hide the second operand", async ({ page, server }) => {
  await openCalculator(page, server.url);
  await expect(page.getByTestId("operand-b")).toBeVisible();
  await page.getByTestId("op").selectOption("relu");
  await expect(page.getByTestId("operand-b")).toHaveCount(0);
});

test("a malformed operand is caught in the page and nothing is sent", async ({ page, server }) => {
  await openCalculator(page, server.url);
  await page.getByTestId("a-shape").fill("2,x");
  await page.getByTestId("submit").click();
  await expect(page.getByTestId("error")).toBeVisible();
  await expect(page.getByTestId("result")).toHaveCount(0);
});
