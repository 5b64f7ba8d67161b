// Correlation rules in the console against the real API: previewed on the last day's alerts (none
// yet for a new organisation), created off, turned on from the list.
import { expect, registerViaApi, signIn, test } from "./fixtures";

test("an admin previews a correlation rule, creates it, and turns it on", async ({ page, request }) => {
  const owner = await registerViaApi(request);
  await signIn(page, owner.email);
  await page.getByRole("link", { name: "Correlation rules" }).click();
  await expect(page.getByText("No correlation rules.")).toBeVisible();

  const form = page.getByRole("form", { name: "New rule" });
  await form.getByLabel("Name").fill("checkout by cluster");
  await form.getByLabel("Labels").fill("service, cluster");
  await form.getByRole("button", { name: "Preview on the last day" }).click();
  await expect(form.getByTestId("correlation-preview")).toContainText("0 firing alerts");
  await expect(form.getByText("Nothing would have been grouped.")).toBeVisible();
  await form.getByRole("button", { name: "Create rule" }).click();

  const row = page.getByRole("row", { name: /checkout by cluster/ });
  await expect(row).toContainText("service, cluster");
  await expect(row).toContainText("off");
  await row.getByRole("button", { name: "Turn on" }).click();
  await expect(row).toContainText("on");
  await expect(row.getByRole("button", { name: "Turn off" })).toBeVisible();
});
