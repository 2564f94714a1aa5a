// What the chat tests do in a page: open the chat and wait for hydration, send a message, find
// the messages and the answer in flight, wait for an answer to end, watch it grow.
import type { Browser, Locator, Page } from "@playwright/test";
import { expect } from "./server";

export const ANSWER_TIMEOUT = 60_000;

export async function openChat(page: Page, url: string) {
  await page.goto(url);
  // Typing before hydration would do nothing: wait for the app to say it is live.
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
}

export async function send(page: Page, text: string) {
  await page.getByTestId("chat-input").fill(text);
  await expect(page.getByTestId("chat-send")).toBeEnabled();
  await page.getByTestId("chat-send").click();
}

export function assistantMessages(page: Page) {
  return page.locator("[data-testid=chat-message][data-role=assistant]");
}

/** The text of a message or of the streaming answer, without its buttons and badges. */
export function body(message: Locator) {
  return message.locator(".chat-msg-body");
}

export async function bodyText(message: Locator) {
  return ((await body(message).textContent()) ?? "").replace(/\s+/g, " ").trim();
}

export function userMessages(page: Page) {
  return page.locator("[data-testid=chat-message][data-role=user]");
}

/** Waits for the answer in flight to end and returns the finished assistant message. */
export async function finishedAnswer(page: Page) {
  await expect(page.getByTestId("chat-answer")).toHaveCount(0, { timeout: ANSWER_TIMEOUT });
  const last = assistantMessages(page).last();
  await expect(last).toBeVisible();
  return last;
}

/** Records the streaming answer's text length on every DOM change, to see it grow. */
export async function watchAnswerGrowth(page: Page) {
  await page.evaluate(() => {
    const lengths: number[] = [];
    (window as any).answerLengths = lengths;
    new MutationObserver(() => {
      const answer = document.querySelector("[data-testid=chat-answer]");
      if (answer) {
        const n = (answer.querySelector(".chat-msg-body")?.textContent ?? "").trim().length;
        if (n > 0 && lengths[lengths.length - 1] !== n) lengths.push(n);
      }
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
}

export async function newUser(browser: Browser, url: string) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await openChat(page, url);
  return { context, page };
}
