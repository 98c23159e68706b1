// Opens the console's journey report for one journey in headless Chromium and reports what it
// rendered: the funnel's cells, the lift chart's rows (raw values from their data attributes),
// the lift table's cells, the channel mix and the hour bars. Prints one JSON line.
// Usage: node journeys.mjs BASE_URL READ_KEY JOURNEY_ID SHOT.png
import { chromium } from "playwright-core";

const [base, key, journey, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  await page.goto(`${base}/console#key=${key}`);
  await page.waitForFunction(() => document.querySelectorAll("#stats .stat").length > 0);
  await page.fill("#journey-id", journey);
  await page.click("#journeyform button");
  await page.waitForFunction(() => !document.querySelector("#journey-report").hidden && document.querySelector("#journey-lift svg"));
  const result = await page.evaluate(() => {
    const cells = (sel) => [...document.querySelectorAll(sel + " tr")].slice(1).map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent));
    return {
      summary: document.querySelector("#journey-summary").textContent,
      verdict: document.querySelector("#journey-verdict").textContent,
      funnel: cells("#journey-funnel").map((r) => r.slice(0, 6)),
      lift: [...document.querySelectorAll("#journey-lift .lift-row")].map((g) => ({
        label: g.dataset.label, estimate: g.dataset.estimate, lo: g.dataset.lo, hi: g.dataset.hi,
        avLo: g.dataset.avLo, avHi: g.dataset.avHi, verdict: g.dataset.verdict,
      })),
      table: cells("#journey-lift-table"),
      channels: cells("#journey-channels").map((r) => r.slice(0, 2)),
      hours: [...document.querySelectorAll("#journey-hours .hour")].map((h) => [h.dataset.hour, h.dataset.sends]),
    };
  });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
