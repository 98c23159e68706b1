// The chat widget and the console's hand-off inbox in headless Chromium: a shopper asks about
// availability on a shop page with the widget, reserves after the assistant's offer, asks for a
// person; the console inbox shows the conversation with its context, a person replies there and
// the reply reaches the widget over its live feed. The shop page is on another origin than
// Tailor, so the widget's calls are cross-origin. Prints one JSON line.
// Usage: node assistant.mjs BASE_URL WRITE_KEY ADMIN_KEY STORE SHOT_PREFIX
import http from "node:http";
import { chromium } from "playwright-core";

const [base, writeKey, adminKey, store, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
});
const failedRequests = [];
const lastText = (role) => (page) => page.evaluate((r) => {
  const all = [...document.querySelectorAll(`.tailor-msg[data-role=${r}]`)];
  return all.length ? all[all.length - 1].textContent : "";
}, role);
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  context.on("requestfailed", (r) => failedRequests.push(r.url()));
  // The shop's page lives on the shop's own origin (a server of its own on another port) and
  // loads the widget from Tailor, as in production: every call the widget makes is cross-origin,
  // preflights included.
  const shopServer = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(`<!doctype html><html><head><title>A shop</title></head><body><h1>A shop</h1>
<script src="${base}/assistant/widget.js" data-key="${writeKey}" data-store="${store}" data-open="true"></script></body></html>`);
  });
  await new Promise((ok) => shopServer.listen(0, "127.0.0.1", ok));
  const shopOrigin = `http://localhost:${shopServer.address().port}`;
  shopServer.unref();
  const shop = await context.newPage();
  const consoleErrors = [];
  shop.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  await shop.goto(`${shopOrigin}/product/bananas`);
  await shop.waitForSelector("#tailor-chat:not([hidden])");
  const ask = async (text) => {
    const before = await shop.evaluate(() => document.querySelectorAll(".tailor-msg[data-role=assistant]").length);
    await shop.fill("#tailor-chat-input", text);
    await shop.click("#tailor-chat-send");
    await shop.waitForFunction((n) => document.querySelectorAll(".tailor-msg[data-role=assistant]").length > n, before);
    return lastText("assistant")(shop);
  };
  const availability = await ask(`do you have bananas at store ${store}`);
  // The offer's quick reply: the shopper clicks "Yes".
  const before = await shop.evaluate(() => document.querySelectorAll(".tailor-msg[data-role=assistant]").length);
  await shop.click(".tailor-msg[data-role=assistant]:last-child .tailor-quick >> text=Yes");
  await shop.waitForFunction((n) => document.querySelectorAll(".tailor-msg[data-role=assistant]").length > n, before);
  const held = await lastText("assistant")(shop);
  const handoff = await ask("I want to talk to a person");
  await shop.waitForFunction(() => document.body.dataset.tailorFeed === "open");

  const console_ = await context.newPage();
  await console_.goto(`${base}/console/inbox#key=${adminKey}`);
  await console_.waitForSelector("#inbox button.open");
  await console_.click("#inbox button.open");
  await console_.waitForFunction(() => !document.querySelector("#inbox-detail").hidden && document.querySelectorAll("#d-transcript tr").length > 1);
  const cells = (id) => console_.evaluate((i) => [...document.querySelectorAll(`#${i} tr`)].slice(1).map((r) => [...r.querySelectorAll("td")].map((c) => c.textContent)), id);
  const transcript = await cells("d-transcript");
  const contextRows = Object.fromEntries((await cells("d-context")).map(([k, v]) => [k, v]));
  await console_.fill("#d-text", "Hi, this is Ana from the store. Your bananas are waiting.");
  await console_.click("#d-send");
  await console_.waitForFunction(() => document.querySelector("#d-message").textContent === "Sent.");
  await console_.screenshot({ path: `${shot}-inbox.png`, fullPage: true });

  await shop.waitForFunction(() => [...document.querySelectorAll(".tailor-msg[data-role=agent]")].some((m) => m.textContent.includes("Ana")), null, { timeout: 15000 });
  const agent = await lastText("agent")(shop);
  await shop.screenshot({ path: `${shot}-widget.png` });
  const origin = await shop.evaluate(() => location.origin);
  console.log(JSON.stringify({ availability, held, handoff, transcript, context: contextRows, agent, failedRequests, origin, consoleErrors }));
} finally {
  await browser.close();
}
