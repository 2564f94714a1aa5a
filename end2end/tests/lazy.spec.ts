// Every page is a lazily loaded route: the main bundle holds what all pages share (Leptos, the
// router, the frame), and each page's own code is in wasm files of its own (scripts/build.sh
// splits the bundle). Loaded directly, a page's HTML asks the browser to preload its files
// alongside the main bundle, and no other page's; reached by a link, the router fetches the next
// page's files before it shows it. The chat's Markdown renderer is one more file, which the chat
// fetches only once it has something to render.
import { test, expect } from "./server";
import { openChat, send, finishedAnswer, body } from "./chat-helpers";

const PAGES = ["calculator", "chat", "stats"];
const splitFile = (url: string) => /\/pkg\/(split_|chunk_)[^/]*\.wasm$/.test(url);
const pageFile = (name: string) => new RegExp(`/pkg/split___${name}_route_view_\\w+\\.\\w+\\.wasm$`);
const RENDERER = /\/pkg\/split_lazy_renderer_\w+\.\w+\.wasm$/;

for (const [path, own] of [["/", "calculator"], ["/chat", "chat"], ["/stats", "stats"]]) {
  test(`${path} preloads its own files and no other page's`, async ({ server, request }) => {
    const html = await (await request.get(server.url + path)).text();
    const links = [...html.matchAll(/<link [^>]*>/g)].map((m) => m[0]);
    const preloads = links.filter((l) => /rel="(module)?preload"/.test(l)).map((l) => l.match(/href="([^"]+)"/)![1]);
    for (const name of PAGES) {
      expect(preloads.some((h) => pageFile(name).test(h)), `${path} preloads ${name}'s file`).toBe(name === own);
    }
    expect(preloads.some((h) => RENDERER.test(h))).toBeFalsy();
    // Each one exists: the loader too, under the name the page preloads and the bundle imports.
    expect(preloads.some((h) => /^\/pkg\/__wasm_split\.\w*\.js$/.test(h))).toBeTruthy();
    for (const href of preloads) expect((await request.get(server.url + href)).status(), href).toBe(200);
  });

  test(`${path} hydrates with its own files only`, async ({ page, server }) => {
    const fetched: string[] = [];
    page.on("request", (r) => fetched.push(r.url()));
    await page.goto(server.url + path);
    await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
    const splits = fetched.filter(splitFile);
    expect(splits.some((u) => pageFile(own).test(u))).toBeTruthy();
    for (const name of PAGES.filter((n) => n !== own)) expect(splits.some((u) => pageFile(name).test(u))).toBeFalsy();
    expect(splits.some((u) => RENDERER.test(u))).toBeFalsy();
    // The mark means the page itself is live, not only the frame around it: the first thing done
    // right after it takes effect (before the page hydrated, the change would be lost).
    if (own === "calculator") {
      await page.getByTestId("op").selectOption("relu");
      await expect(page.getByTestId("operand-b")).toHaveCount(0);
    } else if (own === "chat") {
      await page.getByTestId("chat-input").fill("hello");
      await expect(page.getByTestId("chat-send")).toBeEnabled();
    } else {
      await expect(page.getByTestId("stats-total")).toHaveText(/^[0-9]+$/);
    }
  });
}

test("the chat fetches the Markdown renderer once there is an answer, and renders it", async ({ page, server }) => {
  const fetched: string[] = [];
  page.on("request", (r) => fetched.push(r.url()));
  await openChat(page, server.url + "/chat");
  await expect(page.getByTestId("chat-empty")).toContainText("Ask the model anything.");
  expect(fetched.some((u) => RENDERER.test(u))).toBeFalsy();

  await send(page, "Say hello.");
  const answer = await finishedAnswer(page);
  expect(fetched.some((u) => RENDERER.test(u))).toBeTruthy();
  // Rendered as Markdown (paragraphs), not shown as raw text.
  await expect(body(answer).locator("p, ul, ol, pre, h1, h2, h3, blockquote, table").first()).toBeAttached();

  // Opened by its URL in a fresh page, the conversation fetches the renderer with its messages.
  const url = page.url();
  const again = await page.context().newPage();
  const fetchedAgain: string[] = [];
  again.on("request", (r) => fetchedAgain.push(r.url()));
  await openChat(again, url);
  await expect(again.locator("[data-testid=chat-message][data-role=assistant]")).toHaveCount(1);
  expect(await body(again.locator("[data-testid=chat-message][data-role=assistant]")).innerHTML()).toBe(
    await body(answer).innerHTML(),
  );
  expect(fetchedAgain.some((u) => RENDERER.test(u))).toBeTruthy();
});

test("links load each page's files on demand", async ({ page, server }) => {
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const fetched: string[] = [];
  page.on("request", (r) => fetched.push(r.url()));
  await page.goto(server.url + "/stats");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  const nav = page.getByRole("navigation", { name: "Main" });

  await nav.getByRole("link", { name: "Calculator" }).click();
  await expect(page).toHaveURL(/\/$/);
  // Live, not just rendered: the form submits and a result comes back.
  await page.getByTestId("submit").click();
  await expect(page.getByTestId("result")).toBeVisible();
  expect(fetched.some((u) => pageFile("calculator").test(u))).toBeTruthy();
  expect(fetched.some((u) => pageFile("chat").test(u))).toBeFalsy();

  await nav.getByRole("link", { name: "Chat" }).click();
  await expect(page).toHaveURL(/\/chat$/);
  // Live: typing enables Send.
  await page.getByTestId("chat-input").fill("hello");
  await expect(page.getByTestId("chat-send")).toBeEnabled();
  expect(fetched.some((u) => pageFile("chat").test(u))).toBeTruthy();

  await nav.getByRole("link", { name: "Stats" }).click();
  await expect(page).toHaveURL(/\/stats$/);
  await expect(page.getByTestId("stats-total")).toHaveText(/^[0-9]+$/);
  expect(errors).toEqual([]);
});
