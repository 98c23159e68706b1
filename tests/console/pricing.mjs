// Opens the console's price panel in headless Chromium for one SKU and reports the price on
// each channel and the decision chart's points. Prints one JSON line.
// Usage: node pricing.mjs BASE_URL ADMIN_KEY SKU SHOT.png [EXPERIMENT_SKU]
import { chromium } from "playwright-core";

const [base, key, sku, shot, experimentSku] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(`${base}/console#key=${key}`);
  await page.waitForFunction(() => document.querySelectorAll("#stats .stat").length > 0);
  await page.fill("#price-sku", sku);
  await page.click("#priceform button");
  await page.waitForFunction(() => document.querySelectorAll("#price-channels tr").length > 1 && document.querySelector("#price-chart svg"));
  const result = await page.evaluate(() => ({
    channels: [...document.querySelectorAll("#price-channels tr")].slice(1).map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent)),
    points: [...document.querySelectorAll("#price-chart circle")].map((c) => c.getAttribute("data-clamped")),
    decisions: [...document.querySelectorAll("#price-decisions tr")].slice(1).map((r) => [...r.querySelectorAll("td")].slice(0, 3).map((c) => c.textContent)),
  }));
  // A second SKU with a running experiment shows its candidates.
  if (experimentSku) {
    await page.fill("#price-sku", experimentSku);
    await page.click("#priceform button");
    await page.waitForFunction(() => !document.querySelector("#experiment-card").hidden);
    result.experiment = await page.evaluate(() => ({
      status: document.querySelector("#experiment-status").textContent,
      arms: [...document.querySelectorAll("#experiment-arms tr")].slice(1).map((r) => r.querySelector("td").textContent),
    }));
  }
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
