// Opens the console with a trained model: reads the models card (versions and their validation
// bars), then looks a customer up and reads why their suggestions were made. Prints one JSON line.
// Usage: node models.mjs BASE_URL ADMIN_KEY EMAIL SHOT.png
import { chromium } from "playwright-core";

const [base, key, email, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1200 } });
  await page.goto(`${base}/console#key=${key}`);
  await page.waitForFunction(() => document.querySelectorAll("#model-versions tr").length > 1);
  await page.selectOption("#kind", "email");
  await page.fill("#q", email);
  await page.click("#find");
  await page.waitForFunction(() => document.querySelectorAll("#p-suggestions-mix tr td .bar").length > 0);
  const result = await page.evaluate(() => ({
    versions: [...document.querySelectorAll("#model-versions tr")].slice(1).map((r) => r.querySelector("td").textContent),
    charted: [...document.querySelectorAll("#model-chart .model-bars")].map((b) => b.dataset.version),
    suggestions: document.querySelectorAll("#p-suggestions tr").length - 1,
    reasons: [...document.querySelectorAll("#p-suggestions-mix tr")].slice(1).map((r) => r.querySelector("td").textContent),
  }));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
