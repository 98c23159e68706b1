// Tailor console: the assistant's hand-off inbox. A person sees each handed-off conversation
// with its context (intent, store, product, offer waiting, customer, cart, orders, transcript),
// replies to the shopper and closes it. Plain DOM, no framework, no CDN.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) { localStorage.setItem("tailor.key", fromHash); history.replaceState(null, "", location.pathname); }
  let key = localStorage.getItem("tailor.key") || "";
  let current = null;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return e;
  }
  function rows(table, header, data) {
    const body = data.length ? data.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))
      : [el("tr", {}, el("td", { class: "muted", colspan: String(header.length) }, "none"))];
    table.replaceChildren(el("tr", {}, ...header.map((h) => el("th", {}, h))), ...body);
  }
  async function api(path, options) {
    const res = await fetch(path, Object.assign({ headers: { Authorization: "Bearer " + key, "Content-Type": "application/json" } }, options || {}));
    const body = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) { const err = new Error((body && body.detail) || res.statusText); err.status = res.status; throw err; }
    return body;
  }
  function needKey(show) { $("keybox").hidden = !show; $("keystate").textContent = show ? "no key" : "key set"; }
  const reasons = { requested: "asked for a person", low_confidence: "not understood twice", sensitive: "complaint or payment" };

  async function loadInbox() {
    try {
      const page = await api("/v1/assistant/inbox?limit=100");
      needKey(false);
      rows($("inbox"), ["since", "shopper", "channel", "why", "intent", ""], page.items.map((i) => {
        const c = i.conversation;
        return [(c.handoffAt || "").replace("T", " ").slice(0, 16), c.userId || c.anonymousId || "anonymous", c.channel,
          reasons[c.handoffReason] || c.handoffReason || "", i.intent || "—",
          el("button", { type: "button", class: "open", "data-id": c.id, onclick: () => open(c.id) }, "Open")];
      }));
      $("inbox-note").textContent = page.items.length ? "" : "No conversation is waiting.";
      if (current) await open(current, true);
    } catch (e) {
      if (e.status === 401 || e.status === 403) needKey(true); else $("inbox-note").textContent = e.message;
    }
  }

  async function open(id, quiet) {
    current = id;
    let item;
    try { item = await api("/v1/assistant/conversations/" + encodeURIComponent(id)); } catch (e) { $("d-message").textContent = e.message; return; }
    const c = item.conversation;
    $("d-state").textContent = c.state === "handoff" ? "with a person" : "with the assistant";
    $("d-meta").textContent = (c.userId ? "signed in as " + c.userId : "anonymous visitor " + (c.anonymousId || "")) + " · " + c.channel + (c.storeId ? " · store " + c.storeId : "");
    rows($("d-transcript"), ["who", "message"], item.transcript.map((m) => [m.role === "agent" ? (m.reply && m.reply.agent) || "agent" : m.role, m.text]));
    const ctx = item.context || {};
    const pending = ctx.pending ? (ctx.pending.kind === "reserve" ? "hold " + ctx.pending.quantity + " × " + ctx.pending.product.title + " at store " + ctx.pending.store : "redeem " + ctx.pending.points + " points") : "—";
    rows($("d-context"), ["", ""], [["detected intent", item.intent || "—"], ["store", ctx.store || "—"],
      ["product", ctx.product ? ctx.product.title + " (" + ctx.product.sku + ")" : "—"], ["offer waiting", pending],
      ["handed off because", reasons[c.handoffReason] || c.handoffReason || "—"]]);
    const p = item.profile;
    rows($("d-profile"), ["", ""], p ? [["profile", p.id], ["orders", p.orderCount], ["spend", p.spend + " " + p.currency], ["preferred store", p.preferredStore || "—"]] : []);
    rows($("d-cart"), ["product", "qty"], (item.cart || []).map((l) => [l.productId, l.quantity]));
    rows($("d-orders"), ["order", "when", "total"], (item.orders || []).map((o) => [o.orderId, o.at.slice(0, 10), (o.totalCents / 100).toFixed(2) + " " + o.currency]));
    $("inbox-detail").hidden = false;
    $("inbox-detail").dataset.id = id;
    if (!quiet) $("d-message").textContent = "";
  }

  $("d-reply").addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = $("d-text").value.trim();
    if (!text || !current) return;
    try {
      await api("/v1/assistant/conversations/" + encodeURIComponent(current) + "/replies", { method: "POST", body: JSON.stringify({ agent: "Console", text }) });
      $("d-text").value = "";
      $("d-message").textContent = "Sent.";
      await open(current, true);
    } catch (err) { $("d-message").textContent = err.message; }
  });
  $("d-close").addEventListener("click", async () => {
    if (!current) return;
    try {
      await api("/v1/assistant/conversations/" + encodeURIComponent(current) + "/close", { method: "POST" });
      $("d-message").textContent = "Closed: the assistant answers again.";
      await open(current, true);
      loadInbox();
    } catch (err) { $("d-message").textContent = err.message; }
  });
  $("keyform").addEventListener("submit", (e) => { e.preventDefault(); key = $("key").value.trim(); localStorage.setItem("tailor.key", key); loadInbox(); });
  loadInbox();
  setInterval(loadInbox, 2000);
})();
