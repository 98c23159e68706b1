// Opens the console's stock panel in headless Chromium: checks a SKU's availability, then sells
// out a store through the API and waits for the live feed to show it. Prints one JSON line.
// Usage: node stock.mjs BASE_URL ADMIN_KEY SKU LOCATION SHOT.png
import { chromium } from "playwright-core";

const [base, key, sku, location, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(`${base}/console#key=${key}`);
  await page.waitForFunction(() => document.querySelectorAll("#stats .stat").length > 0);
  await page.fill("#sku", sku);
  await page.click("#stockform button");
  await page.waitForFunction(() => document.querySelectorAll("#availability tr").length > 1);
  const availability = await page.evaluate(() =>
    [...document.querySelectorAll("#availability tr")].slice(1).map((r) => [...r.querySelectorAll("td")].slice(0, 3).map((c) => c.textContent)));
  // The console marks the page once the feed's response has started.
  await page.waitForFunction(() => document.body.dataset.stockFeed === "open");
  const res = await fetch(`${base}/v1/inventory/adjustments`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ sku, locationId: location, mode: "set", onHand: 0, reason: "count" }),
  });
  if (!res.ok) throw new Error(`adjustment failed: ${res.status} ${await res.text()}`);
  await page.waitForFunction(() => document.querySelector("#stock-events").textContent.includes("out of stock"), null, { timeout: 10000 });
  const feed = await page.evaluate(() =>
    [...document.querySelectorAll("#stock-events tr")].slice(1).map((r) => [...r.querySelectorAll("td")].slice(1, 4).map((c) => c.textContent)));
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify({ availability, feed }));
} finally {
  await browser.close();
}
