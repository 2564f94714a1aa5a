import { test, expect } from "./server";

test("the stats page shows live numbers from the server", async ({ page, server, request }) => {
  // Two jobs through the HTTP API, then the page must count them.
  for (let i = 0; i < 2; i++) {
    const r = await request.post(server.url + "/api/execute", {
      data: { op: "add", a: { shape: [1], data: [i] }, b: { shape: [1], data: [1] } },
    });
    expect(r.ok()).toBeTruthy();
  }
  await page.goto(server.url + "/stats");
  await expect(page.locator("[data-hydrated=true]")).toHaveCount(1);
  await expect(page.getByTestId("stats-total")).toHaveText(/^[0-9]+$/);
  const total = Number(await page.getByTestId("stats-total").textContent());
  expect(total).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId("stats-health")).toContainText("healthy");
  // Every subsystem /health reports has its line, the model included.
  const health = await (await request.get(server.url + "/health")).json();
  for (const key of ["scheduler", "device", "websocket", "model"]) {
    await expect(page.getByTestId(`stats-subsystem-${key}`)).toContainText(health.subsystems[key].status);
  }
  await expect(page.getByTestId("stats-subsystem-model")).toContainText("Model");
  await expect(page.getByTestId("stats-chart")).toBeVisible();
});
