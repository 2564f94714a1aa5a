// Several people chatting at once on the embedded model: the server decodes their conversations
// together (continuous batching), so three answers stream at the same time, each into its own
// page, and each person's conversation holds only their own answer.
import { test, expect } from "./server";
import { ANSWER_TIMEOUT, body, bodyText, finishedAnswer, newUser, send } from "./chat-helpers";

// 50 ms per step: a 120-token answer takes about 6 s, long enough to see the three overlap.
test.use({ serverArgs: ["--test-token-delay", "50ms"] });
test.setTimeout(120_000);

test("three people chat at once: their answers stream together, each their own", async ({ browser, server }) => {
  const topics = ["a cat who sails", "a dog who paints", "a bird who counts"];
  const users = await Promise.all(topics.map(() => newUser(browser, server.url + "/chat?max_tokens=120")));
  await Promise.all(users.map((u, i) => send(u.page, `Write a long story about ${topics[i]}.`)));

  // Every answer has started streaming...
  for (const u of users) {
    await expect(body(u.page.getByTestId("chat-answer"))).toHaveText(/\S/, { timeout: ANSWER_TIMEOUT });
  }
  // ...and none has ended yet: they are in flight together, nobody waited for a whole answer,
  // and nobody was shown a queue position.
  for (const u of users) {
    await expect(u.page.getByTestId("chat-answer")).toBeVisible();
    await expect(u.page.getByText(/Position [0-9]+ ·/)).toHaveCount(0);
  }
  // Each keeps growing while the others stream.
  const lengths = await Promise.all(users.map(async (u) => (await bodyText(u.page.getByTestId("chat-answer"))).length));
  for (const [i, u] of users.entries()) {
    await expect
      .poll(async () => (await bodyText(u.page.getByTestId("chat-answer"))).length, { timeout: ANSWER_TIMEOUT })
      .toBeGreaterThan(lengths[i]);
  }

  const answers: string[] = [];
  for (const u of users) answers.push(await bodyText(await finishedAnswer(u.page)));
  for (const [i, u] of users.entries()) {
    expect(answers[i].length).toBeGreaterThan(0);
    // Their own conversation, titled by their own message.
    await expect(u.page.getByTestId("chat-conversation")).toHaveCount(1);
    await expect(u.page.getByTestId("chat-conversation")).toHaveText(new RegExp(topics[i]));
  }
  for (const u of users) await u.context.close();
});
