// The widget inside someone else's page: a host page served from another origin (another port)
// pastes the README's snippet; the calculator works inside the iframe, the frame follows its
// content's height, and the host page hears the turnstile:* events. A restrictive
// --frame-ancestors keeps other sites from framing it, and a foreign page cannot open the socket.
import { test, expect } from "./server";
import { startServer } from "./server";
import * as http from "node:http";
import type { AddressInfo } from "node:net";

/** Serves one HTML page on 127.0.0.1 (another port: another origin). */
async function hostPage(html: string): Promise<{ url: string; close: () => void }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, close: () => server.close() };
}

function snippet(turnstile: string, tool: string): string {
  return `<!doctype html><html><head><title>Host</title></head><body>
    <h1>A host page</h1>
    <script>
      window.turnstileEvents = [];
      for (const name of ["turnstile:ready", "turnstile:queued", "turnstile:done"]) {
        document.addEventListener(name, (e) => window.turnstileEvents.push({ name, detail: e.detail }));
      }
    </script>
    <script src="${turnstile}/widget.js" data-tool="${tool}" data-theme="dark" async></script>
  </body></html>`;
}

test("the calculator widget works inside a page on another origin", async ({ page, server }) => {
  const host = await hostPage(snippet(server.url, "calculator"));
  try {
    await page.goto(host.url);
    const iframe = page.locator("iframe[data-turnstile-tool=calculator]");
    await expect(iframe).toHaveCount(1);
    const frame = page.frameLocator("iframe[data-turnstile-tool=calculator]");
    await expect(frame.locator("[data-hydrated=true]")).toHaveCount(1);
    await expect(frame.locator(".site-header")).toHaveCount(0);
    await expect(frame.locator(".app")).toHaveAttribute("data-theme", "dark");
    await expect
      .poll(() => page.evaluate(() => (window as any).turnstileEvents.map((e: any) => e.name)))
      .toContain("turnstile:ready");
    const before = await iframe.evaluate((f) => (f as HTMLIFrameElement).getBoundingClientRect().height);

    await frame.getByTestId("op").selectOption("matmul");
    await frame.getByTestId("submit").click();
    await expect(frame.getByTestId("result").locator(".cell")).toHaveText(["19", "22", "43", "50"]);

    const names = () => page.evaluate(() => (window as any).turnstileEvents.map((e: any) => e.name));
    await expect.poll(names).toContain("turnstile:done");
    const events: any[] = await page.evaluate(() => (window as any).turnstileEvents);
    const queued = events.find((e) => e.name === "turnstile:queued");
    expect(queued.detail.position).toBeGreaterThanOrEqual(1);
    expect(events.find((e) => e.name === "turnstile:done").detail.ok).toBe(true);
    // The frame follows its content: the result made the page taller.
    await expect
      .poll(() => iframe.evaluate((f) => (f as HTMLIFrameElement).getBoundingClientRect().height))
      .not.toBe(before);
  } finally {
    host.close();
  }
});

test("a restrictive frame-ancestors keeps other sites from framing the widget", async ({ page }) => {
  const locked = await startServer(["--frame-ancestors", "https://only.example"]);
  const host = await hostPage(snippet(locked.url, "calculator"));
  try {
    await page.goto(host.url);
    await expect(page.locator("iframe[data-turnstile-tool=calculator]")).toHaveCount(1);
    // The browser refuses to render it: the frame never hydrates.
    const frame = page.frameLocator("iframe[data-turnstile-tool=calculator]");
    await page.waitForTimeout(1500);
    await expect(frame.locator("[data-hydrated=true]")).toHaveCount(0);
    const events = await page.evaluate(() => (window as any).turnstileEvents.length);
    expect(events).toBe(0);
  } finally {
    host.close();
    locked.process.kill("SIGTERM");
  }
});

test("a page on a foreign origin cannot open the WebSocket", async ({ page, server }) => {
  const host = await hostPage("<!doctype html><title>Foreign</title><p>foreign</p>");
  try {
    await page.goto(host.url);
    const opened = await page.evaluate(
      (wsUrl) =>
        new Promise<boolean>((resolve) => {
          const ws = new WebSocket(wsUrl);
          ws.onopen = () => resolve(true);
          ws.onerror = () => resolve(false);
          ws.onclose = () => resolve(false);
        }),
      server.url.replace("http", "ws") + "/ws",
    );
    expect(opened).toBe(false);
    const health = await (await fetch(server.url + "/health")).json();
    expect(health.subsystems.websocket.detail).toMatch(/[1-9]\d* refused/);
  } finally {
    host.close();
  }
});

test("the chat widget answers inside a page on another origin and keeps its history", async ({ page }) => {
  const chatServer = await startServer(["--test-token-delay", "20ms"]);
  const host = await hostPage(snippet(chatServer.url, "chat"));
  try {
    await page.goto(host.url);
    const frame = page.frameLocator("iframe[data-turnstile-tool=chat]");
    await expect(frame.locator("[data-hydrated=true]")).toHaveCount(1, { timeout: 20_000 });
    await frame.getByTestId("chat-input").fill("Name a colour.");
    await frame.getByTestId("chat-send").click();
    await expect(frame.getByTestId("chat-answer")).toHaveCount(0, { timeout: 60_000 });
    const answer = frame.locator("[data-testid=chat-message][data-role=assistant]").last();
    await expect(answer).toHaveAttribute("data-status", "complete");
    const names = () => page.evaluate(() => (window as any).turnstileEvents.map((e: any) => e.name));
    await expect.poll(names).toContain("turnstile:done");
    expect(await names()).toContain("turnstile:queued");

    // The host page reloads: the widget's conversation is still listed.
    await page.reload();
    const again = page.frameLocator("iframe[data-turnstile-tool=chat]");
    await expect(again.locator("[data-hydrated=true]")).toHaveCount(1, { timeout: 20_000 });
    await expect(again.getByTestId("chat-conversation")).toHaveCount(1);
    await expect(again.getByTestId("chat-conversation")).toContainText("Name a colour.");
  } finally {
    host.close();
    chatServer.process.kill("SIGTERM");
  }
});

test("embedded cross-site, where the frame gets no cookies, the chat keeps its history by token", async ({ browser }) => {
  const chatServer = await startServer(["--test-token-delay", "10ms"]);
  const host = await hostPage(snippet(chatServer.url, "chat"));
  // localhost and 127.0.0.1 are different sites: to the browser the frame is third-party, so
  // its SameSite session cookie is neither stored nor sent, and only the token can carry it.
  const hostUrl = host.url.replace("127.0.0.1", "localhost");
  const context = await browser.newContext();
  const page = await context.newPage();
  try {
    await page.goto(hostUrl);
    const frame = page.frameLocator("iframe[data-turnstile-tool=chat]");
    await expect(frame.locator("[data-hydrated=true]")).toHaveCount(1, { timeout: 20_000 });
    await frame.getByTestId("chat-input").fill("Name a fruit.");
    await frame.getByTestId("chat-send").click();
    await expect(frame.getByTestId("chat-answer")).toHaveCount(0, { timeout: 60_000 });
    await expect(frame.locator("[data-testid=chat-message][data-role=assistant]").last()).toHaveAttribute(
      "data-status",
      "complete",
    );
    expect(await context.cookies(chatServer.url)).toEqual([]);

    await page.reload();
    const again = page.frameLocator("iframe[data-turnstile-tool=chat]");
    await expect(again.locator("[data-hydrated=true]")).toHaveCount(1, { timeout: 20_000 });
    await expect(again.getByTestId("chat-conversation")).toHaveCount(1);
    await expect(again.getByTestId("chat-conversation")).toContainText("Name a fruit.");
  } finally {
    await context.close();
    host.close();
    chatServer.process.kill("SIGTERM");
  }
});
