// The chat and stats pages are lazily loaded routes: their code is in wasm files of their own
// (scripts/build.sh splits the bundle), which the calculator page never fetches. Loaded directly,
// such a page's HTML asks the browser to preload its files alongside the main bundle; reached by a
// link from the calculator, the router fetches them before it shows the page.
import { test, expect } from "./server";

const splitFile = (url: string) => /\/pkg\/(split_|chunk_)[^/]*\.wasm$/.test(url);

test("the calculator hydrates without the lazily loaded pages' code", async ({ page, server }) => {
  const fetched: string[] = [];
  page.on("request", (r) => fetched.push(r.url()));
  await page.goto(server.url + "/");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  expect(fetched.filter(splitFile)).toEqual([]);
});

test("a lazily loaded page preloads its own files", async ({ page, server, request }) => {
  const html = await (await request.get(server.url + "/chat")).text();
  const links = [...html.matchAll(/<link [^>]*>/g)].map((m) => m[0]);
  const preloads = links.filter((l) => /rel="(module)?preload"/.test(l)).map((l) => l.match(/href="([^"]+)"/)![1]);
  expect(preloads.some((h) => /^\/pkg\/split___chat_route_view_\w+\.\w+\.wasm$/.test(h))).toBeTruthy();
  expect(preloads.some((h) => /split___stats_route_view/.test(h))).toBeFalsy();
  // Each one exists: the loader too, under the name the page preloads and the bundle imports.
  expect(preloads.some((h) => /^\/pkg\/__wasm_split\.\w*\.js$/.test(h))).toBeTruthy();
  for (const href of preloads) expect((await request.get(server.url + href)).status(), href).toBe(200);
  const fetched: string[] = [];
  page.on("request", (r) => fetched.push(r.url()));
  await page.goto(server.url + "/stats");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await expect(page.getByTestId("stats-total")).toHaveText(/^[0-9]+$/);
  expect(fetched.some((u) => /split___stats_route_view_\w+\.\w+\.wasm$/.test(u))).toBeTruthy();
  expect(fetched.some((u) => /split___chat_route_view/.test(u))).toBeFalsy();
});

test("links from the calculator load the chat and stats pages on demand", async ({ page, server }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(server.url + "/");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Chat" }).click();
  await expect(page).toHaveURL(/\/chat$/);
  // Live, not just rendered: typing enables Send.
  await page.getByTestId("chat-input").fill("hello");
  await expect(page.getByTestId("chat-send")).toBeEnabled();

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Stats" }).click();
  await expect(page).toHaveURL(/\/stats$/);
  await expect(page.getByTestId("stats-total")).toHaveText(/^[0-9]+$/);

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Calculator" }).click();
  await expect(page).toHaveURL(/\/$/);
  expect(errors).toEqual([]);
});
