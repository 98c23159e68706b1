// Opens the Tailor console in headless Chromium, looks a customer up by e-mail and reports what a
// person would see, as one JSON line on stdout. Usage: node console.mjs BASE_URL KEY EMAIL SHOT.png
import { chromium } from "playwright-core";

const [base, key, email, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const failed = [];
  page.on("requestfailed", (r) => failed.push(r.url()));
  await page.goto(`${base}/console#key=${key}`);
  await page.waitForFunction(() => document.querySelectorAll("#stats .stat").length > 0);
  await page.selectOption("#kind", "email");
  await page.fill("#q", email);
  await page.click("#find");
  await page.waitForSelector("#profile:not([hidden])");
  await page.waitForFunction(() => document.querySelectorAll("#p-timeline tr").length > 1);
  await page.waitForFunction(() => document.querySelectorAll("#p-loyalty .stat").length > 0);
  await page.waitForFunction(() => document.querySelector("#p-suggestions-note").textContent.length > 0 || document.querySelectorAll("#p-suggestions tr").length > 1);
  const result = await page.evaluate(() => ({
    name: document.querySelector("#p-name").textContent,
    channels: [...document.querySelectorAll("#p-channels .chip")].map((c) => c.textContent),
    timelineRows: document.querySelectorAll("#p-timeline tr").length - 1,
    identifiers: [...document.querySelectorAll("#p-identifiers td:first-child")].map((c) => c.textContent),
    stats: [...document.querySelectorAll("#stats .stat span")].map((c) => c.textContent),
    loyalty: Object.fromEntries([...document.querySelectorAll("#p-loyalty .stat")].map((s) => [s.querySelector("span").textContent, s.querySelector("b").textContent])),
    loyaltyLines: [...document.querySelectorAll("#p-loyalty [data-loyalty]")].map((d) => d.textContent),
    suggestionsNote: document.querySelector("#p-suggestions-note").textContent,
  }));
  await page.screenshot({ path: shot, fullPage: true });
  await page.fill("#q", "nobody@example.com");
  await page.click("#find");
  await page.waitForFunction(() => document.querySelector("#message").textContent.includes("No customer"));
  result.notFoundMessage = await page.textContent("#message");
  result.failedRequests = failed;
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
