// Accessibility with axe-core on the calculator, the chat and both embeds (light and dark): no
// serious or critical violations (WCAG 2.x A and AA rules, colour contrast included).
import { test, expect } from "./server";
import AxeBuilder from "@axe-core/playwright";

const pages: [string, string][] = [
  ["calculator", "/"],
  ["chat", "/chat"],
  ["stats", "/stats"],
  ["embed calculator (light)", "/embed/calculator?theme=light"],
  ["embed calculator (dark)", "/embed/calculator?theme=dark"],
  ["embed chat (light)", "/embed/chat?theme=light"],
  ["embed chat (dark)", "/embed/chat?theme=dark"],
];

for (const [name, route] of pages) {
  test(`${name} has no serious or critical accessibility violations`, async ({ page, server }) => {
    await page.goto(server.url + route);
    await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
    const results = await new AxeBuilder({ page })
      .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
      .analyze();
    const bad = results.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help}\n  ${v.nodes.map((n) => n.target.join(" ")).join("\n  ")}`);
    expect(bad, bad.join("\n")).toEqual([]);
  });
}
