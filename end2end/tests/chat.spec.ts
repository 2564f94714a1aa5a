// The chat page against a real server in test mode, with the embedded model answering for real.
// Answers are arbitrary text, so the tests assert on structure: tokens arrive over time, the answer
// is non-empty, it ends, it is stored. `--test-token-delay 50ms` slows every generated token so an
// answer takes long enough to watch (and to queue behind); `?max_tokens=` in the page's URL keeps
// answers short.
import { test, expect } from "./server";
import { ANSWER_TIMEOUT, openChat, send, assistantMessages, body, bodyText, userMessages, finishedAnswer, watchAnswerGrowth, newUser } from "./chat-helpers";

// One lane: chats take turns, so a second user queues behind the first (several chats at once
// are in chat-lanes.spec.ts).
test.use({ serverArgs: ["--test-token-delay", "50ms", "--chat-lanes", "1"] });

// The first answer loads the model; later ones queue behind others' answers.
test.setTimeout(120_000);

test("the server-rendered chat is meaningful before hydration", async ({ browser, server }) => {
  const context = await browser.newContext({ javaScriptEnabled: false });
  const page = await context.newPage();
  await page.goto(server.url + "/chat");
  await expect(page.getByTestId("chat-input")).toBeVisible();
  await expect(page.getByLabel("Message")).toBeVisible();
  await expect(page.getByTestId("chat-send")).toBeVisible();
  await expect(page.getByTestId("chat-new")).toBeVisible();
  await expect(page.getByTestId("chat-empty")).toBeVisible();
  await context.close();
});

test("a chat answer streams into the page, then becomes a finished message", async ({ page, server }) => {
  await openChat(page, server.url + "/chat?max_tokens=40");
  await expect(page.getByTestId("chat-send")).toBeDisabled();
  await watchAnswerGrowth(page);
  await send(page, "Count from one to twenty, in words.");

  await expect(userMessages(page)).toHaveText(["Count from one to twenty, in words."]);
  await expect(page.getByTestId("chat-input")).toHaveValue("");
  const answer = page.getByTestId("chat-answer");
  await expect(answer).toBeVisible();
  await expect(answer.locator(".chat-cursor")).toHaveCount(1);
  await expect(body(answer)).toHaveText(/\S/, { timeout: ANSWER_TIMEOUT });

  const last = await finishedAnswer(page);
  await expect(last).toHaveAttribute("data-status", "complete");
  expect((await bodyText(last)).length).toBeGreaterThan(0);
  // Token by token: the answer was seen at several lengths while it streamed, growing overall.
  // (Not strictly at every step: Markdown can render a longer text shorter, as when "*word"
  // becomes an emphasised "word".)
  const lengths: number[] = await page.evaluate(() => (window as any).answerLengths);
  expect(lengths.length).toBeGreaterThanOrEqual(2);
  expect(Math.max(...lengths)).toBeGreaterThan(lengths[0]);

  // The new conversation is in the URL and in the list; nothing failed.
  await expect(page).toHaveURL(/[?&]c=[0-9A-Za-z_-]+/);
  await expect(page.getByTestId("chat-conversation")).toHaveCount(1);
  await expect(page.getByTestId("chat-conversation")).toHaveAttribute("aria-current", "page");
  await expect(page.getByTestId("chat-error")).toHaveCount(0);
  await expect(page.getByTestId("chat-banner")).toHaveCount(0);
  await expect(page.getByTestId("chat-regenerate")).toBeVisible();
});

test("after a reload the conversation is still there", async ({ page, server }) => {
  await openChat(page, server.url + "/chat?max_tokens=16");
  await send(page, "Name a colour.");
  const before = await finishedAnswer(page);
  const answerText = await bodyText(before);
  expect(answerText.length).toBeGreaterThan(0);
  const url = page.url();
  expect(url).toMatch(/[?&]c=/);

  await page.reload();
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  expect(page.url()).toBe(url);
  await expect(page.getByTestId("chat-conversation")).toHaveCount(1);
  await expect(page.getByTestId("chat-conversation")).toContainText("Name a colour.");
  await expect(userMessages(page)).toHaveText(["Name a colour."]);
  await expect(assistantMessages(page)).toHaveCount(1);
  const after = assistantMessages(page).first();
  await expect(after).toHaveAttribute("data-status", "complete");
  // The stored answer is the one that streamed.
  expect(await bodyText(after)).toBe(answerText);
});

test("a reload in the middle of an answer picks the stream up again", async ({ page, server }) => {
  await openChat(page, server.url + "/chat?max_tokens=80");
  await send(page, "Write a long story about a lighthouse keeper.");
  await expect(body(page.getByTestId("chat-answer"))).toHaveText(/\S/, { timeout: ANSWER_TIMEOUT });
  await page.reload();
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await expect(userMessages(page)).toHaveText(["Write a long story about a lighthouse keeper."]);
  // Either still streaming (resumed from the start) or already stored: one answer, never two.
  const last = await finishedAnswer(page);
  expect((await bodyText(last)).length).toBeGreaterThan(0);
  await expect(assistantMessages(page)).toHaveCount(1);
  await expect(page.getByTestId("chat-error")).toHaveCount(0);
});

test("a dropped connection reconnects and the answer goes on, nothing lost or repeated", async ({ page, server }) => {
  // Keep a handle on the page's sockets so the test can cut one.
  await page.addInitScript(() => {
    const Native = window.WebSocket;
    const sockets: WebSocket[] = [];
    (window as any).pageSockets = sockets;
    (window as any).WebSocket = class extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        sockets.push(this);
      }
    };
  });
  await openChat(page, server.url + "/chat?max_tokens=80");
  await send(page, "Write a long story about a lighthouse keeper.");
  await expect(body(page.getByTestId("chat-answer"))).toHaveText(/\S/, { timeout: ANSWER_TIMEOUT });
  const socketsBefore: number = await page.evaluate(() => {
    const sockets = (window as any).pageSockets as WebSocket[];
    sockets[sockets.length - 1].close();
    return sockets.length;
  });

  const last = await finishedAnswer(page);
  await expect(last).toHaveAttribute("data-status", "complete");
  const streamed = await bodyText(last);
  expect(streamed.length).toBeGreaterThan(0);
  // A new socket was opened, and the answer was resumed on it.
  expect(await page.evaluate(() => (window as any).pageSockets.length)).toBeGreaterThan(socketsBefore);
  await expect(page.getByTestId("chat-error")).toHaveCount(0);

  // What streamed is exactly what the server stored.
  await page.reload();
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await expect(assistantMessages(page)).toHaveCount(1);
  expect(await bodyText(assistantMessages(page).first())).toBe(streamed);
});

test("a second user sees their queue position while the first one's answer streams", async ({ browser, server }) => {
  const first = await newUser(browser, server.url + "/chat?max_tokens=120");
  const second = await newUser(browser, server.url + "/chat?max_tokens=8");

  await send(first.page, "Write a long story about a robot who learns to paint, in many paragraphs.");
  // Wait until the first answer holds the device and streams.
  await expect(body(first.page.getByTestId("chat-answer"))).toHaveText(/\S/, {
    timeout: ANSWER_TIMEOUT,
  });

  await send(second.page, "Say hi.");
  const banner = second.page.getByTestId("chat-banner");
  await expect(banner).toContainText(/Position [1-9][0-9]* · about [0-9.]+ s/);
  // While the second waits, the first keeps streaming, and each sees only their own answer.
  await expect(first.page.getByTestId("chat-answer")).toBeVisible();
  await expect(body(second.page.getByTestId("chat-answer"))).toHaveText(/^\s*$/);

  const secondAnswer = await finishedAnswer(second.page);
  expect((await bodyText(secondAnswer)).length).toBeGreaterThan(0);
  await expect(banner).toHaveCount(0);
  const firstAnswer = await finishedAnswer(first.page);
  expect((await bodyText(firstAnswer)).length).toBeGreaterThan(0);
  // Separate sessions: each lists only their own conversation.
  await expect(first.page.getByTestId("chat-conversation")).toHaveCount(1);
  await expect(second.page.getByTestId("chat-conversation")).toHaveText(/Say hi\./);
  await first.context.close();
  await second.context.close();
});

test("Stop leaves the partial answer, marked stopped", async ({ page, server }) => {
  await openChat(page, server.url + "/chat?max_tokens=400");
  await send(page, "Write a very long essay about the history of bridges.");
  const answer = page.getByTestId("chat-answer");
  await expect(body(answer)).toHaveText(/\S/, { timeout: ANSWER_TIMEOUT });
  await expect(page.getByTestId("chat-stop")).toBeEnabled();
  await page.getByTestId("chat-stop").click();

  const last = await finishedAnswer(page);
  await expect(last).toHaveAttribute("data-status", "stopped");
  await expect(last.getByTestId("chat-status")).toHaveText("Stopped");
  expect((await bodyText(last)).length).toBeGreaterThan(0);
  await expect(page.getByTestId("chat-error")).toHaveCount(0);
  await expect(page.getByTestId("chat-stop")).toHaveCount(0);

  // The server kept it as stopped too.
  await page.reload();
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await expect(assistantMessages(page)).toHaveCount(1);
  await expect(assistantMessages(page).first()).toHaveAttribute("data-status", "stopped");
});

test("the chat fits a 360 px wide screen", async ({ browser, server }) => {
  const context = await browser.newContext({ viewport: { width: 360, height: 740 } });
  const page = await context.newPage();
  await openChat(page, server.url + "/chat");
  await expect(page.getByTestId("chat-input")).toBeVisible();
  await expect(page.getByTestId("chat-send")).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // The conversation list sits above the thread.
  const list = await page.getByTestId("chat-new").boundingBox();
  const thread = await page.getByTestId("chat-thread").boundingBox();
  expect(list!.y).toBeLessThan(thread!.y);
  await context.close();
});
