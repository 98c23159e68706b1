// Tailor console: customer look-up and the unified profile. Plain DOM, no framework, no CDN.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) { localStorage.setItem("tailor.key", fromHash); history.replaceState(null, "", location.pathname); }
  let key = localStorage.getItem("tailor.key") || "";

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
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
  function say(text, isError) { $("message").textContent = text; $("message").className = isError ? "error" : "muted"; }
  function needKey(show) { $("keybox").hidden = !show; $("keystate").textContent = show ? "no key" : "key set"; }

  async function loadStats() {
    try {
      const s = await api("/v1/stats");
      const labels = { profiles: "customers", events: "events", orders: "orders", products: "products", locations: "stores", merges: "merges", projectionLag: "events to project" };
      $("stats").replaceChildren(...Object.entries(labels).map(([k, label]) => el("div", { class: "stat" }, el("b", {}, (s[k] ?? 0).toLocaleString()), el("span", {}, label))));
      needKey(false);
    } catch (e) { if (e.status === 401 || e.status === 403) needKey(true); else say(e.message, true); }
  }

  function chip(channel) { return el("span", { class: "chip " + channel }, channel); }

  async function show(profileId) {
    const [p, { items: timeline }, { items: merges }] = await Promise.all([
      api("/v1/profiles/" + encodeURIComponent(profileId)),
      api("/v1/profiles/" + encodeURIComponent(profileId) + "/timeline?limit=50"),
      api("/v1/profiles/" + encodeURIComponent(profileId) + "/merges"),
    ]);
    const t = p.traits || {};
    const name = [t.firstName || t.first_name, t.lastName || t.last_name].filter(Boolean).join(" ") || t.email || "Customer";
    $("p-name").textContent = name;
    $("p-id").textContent = "profile " + p.id + (p.mergedProfiles.length ? " · " + p.mergedProfiles.length + " merged" : "");
    const f = p.features;
    const facts = [["orders", f.orderCount], ["spend", f.spend + " " + f.currency], ["preferred store", f.preferredStore || "—"],
      ["first seen", (f.firstSeen || "—").slice(0, 10)], ["last seen", (f.lastSeen || "—").slice(0, 10)], ["top categories", f.topCategories.slice(0, 3).join(", ") || "—"]];
    $("p-features").replaceChildren(...facts.map(([k, v]) => el("div", { class: "stat" }, el("b", {}, v), el("span", {}, k))));
    const max = Math.max(1, ...f.channels.map((c) => c.events));
    $("p-channels").replaceChildren(...f.channels.map((c) => el("div", { style: "margin:6px 0" }, chip(c.channel), " " + c.events,
      el("div", { class: "bar", style: "width:" + Math.round((100 * c.events) / max) + "%" }))));
    rows($("p-identifiers"), ["kind", "value"], p.identifiers.map((i) => [i.kind, i.value]));
    rows($("p-consent"), ["purpose", "status", "source"], p.consent.map((c) => [c.purpose, c.granted ? "granted" : "refused", c.source]));
    rows($("p-timeline"), ["when", "channel", "event"], timeline.map((e) => [e.timestamp.replace("T", " ").slice(0, 16), chip(e.channel), e.name || e.kind]));
    rows($("p-merges"), ["when", "linked by", "absorbed", ""], merges.map((m) => [m.at.slice(0, 10), m.causeKind, m.absorbed.slice(0, 8) + "…",
      m.undoneAt ? "undone" : el("button", { onclick: () => unmerge(p.id, m.id) }, "Unmerge")]));
    $("profile").hidden = false;
    showLoyalty(p.id);
    showSuggestions(p.id);
  }

  async function showLoyalty(profileId) {
    try {
      const a = await api("/v1/loyalty/" + encodeURIComponent(profileId));
      const b = a.balance;
      const stats = [["active", b.active], ["pending", b.pending], ["used", b.used], ["expired", b.expired]]
        .map(([k, v]) => el("div", { class: "stat" }, el("b", {}, v.toLocaleString()), el("span", {}, k + " points")));
      const lines = [];
      if (a.tier) lines.push(a.tier + " member" + (a.tierGraceUntil ? ", kept until " + new Date(a.tierGraceUntil).toLocaleDateString() + " unless they qualify again" : ""));
      if (a.nextTier) {
        const need = [a.nextTier.pointsNeeded != null ? a.nextTier.pointsNeeded.toLocaleString() + " points" : null,
          a.nextTier.spendNeededCents != null ? "$" + (a.nextTier.spendNeededCents / 100).toLocaleString() + " spend" : null].filter(Boolean).join(" or ");
        lines.push(need + " to " + a.nextTier.name);
      }
      if (a.expiringSoon > 0) lines.push(a.expiringSoon.toLocaleString() + " points expire within 30 days");
      $("p-loyalty").replaceChildren(...stats, ...lines.map((t) => el("div", { class: "muted", "data-loyalty": "tier" }, t)));
    } catch (e) { $("p-loyalty").replaceChildren(el("span", { class: "muted" }, e.message)); }
  }

  async function showSuggestions(profileId) {
    $("p-suggestions-note").textContent = "";
    try {
      const r = await api("/v1/recommendations?" + new URLSearchParams({ user: profileId, context: "associate", k: "5" }));
      rows($("p-suggestions"), ["product", "why"], r.items.map((i) => [i.title || i.productId, i.reasons.map((x) => x.text).join(" · ")]));
      // The mix of reasons behind the list, as bars: which sources the suggestions came from.
      const mix = {};
      r.items.forEach((i) => new Set(i.reasons.map((x) => x.code)).forEach((c) => { mix[c] = (mix[c] || 0) + 1; }));
      const top = Object.entries(mix).sort((a, b) => b[1] - a[1]);
      rows($("p-suggestions-mix"), ["reason", "items", ""], top.map(([c, n]) => [c.replace(/_/g, " "), n,
        el("div", { style: "width:160px" }, el("div", { class: "bar", style: "width:" + Math.round((100 * n) / Math.max(1, r.items.length)) + "%" }))]));
      if (r.modelVersion == null) $("p-suggestions-note").textContent = "Best sellers for everyone: no model is trained yet — run `tailor train` or POST /v1/models/train.";
      else if (!r.personalized) $("p-suggestions-note").textContent = "Not personalized: " + (r.consent && r.consent.granted === false ? "no consent" : "no history");
    } catch (e) { rows($("p-suggestions"), ["product", "why"], []); $("p-suggestions-note").textContent = e.message; }
  }

  async function unmerge(profileId, mergeId) {
    try { await api("/v1/profiles/" + encodeURIComponent(profileId) + "/unmerge", { method: "POST", body: JSON.stringify({ mergeId }) }); await show(profileId); say("Merge undone."); }
    catch (e) { say(e.message, true); }
  }

  $("search").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const kind = $("kind").value, value = $("q").value.trim();
    if (!value) return;
    say("Searching…");
    try {
      let id = value;
      if (kind !== "profile") id = (await api("/v1/profiles/lookup?" + new URLSearchParams({ [kind]: value }))).id;
      await show(id);
      say("");
    } catch (e) { $("profile").hidden = true; say(e.status === 404 ? "No customer holds this " + kind + "." : e.message, true); if (e.status === 401) needKey(true); }
  });
  // Stock: what each store can promise, as bars, and the live feed of stock events.
  $("stockform").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const skus = $("sku").value.trim();
    if (!skus) return;
    try {
      const { items } = await api("/v1/availability?" + new URLSearchParams({ sku: skus }));
      const max = Math.max(1, ...items.map((i) => i.available));
      rows($("availability"), ["SKU", "location", "available", ""], items.map((i) => [i.sku, i.locationId, i.available,
        el("div", { class: "bar", style: "width:" + Math.round((100 * i.available) / max) + "%" })]));
      $("stockmsg").textContent = items.length ? "" : "Not stocked anywhere.";
    } catch (e) { $("stockmsg").textContent = e.message; }
  });
  // Prices: the same list price on every channel (a channel differs only by a declared
  // promotion), and the price decisions over time as a step chart, clamped ones marked.
  const money = (c) => "$" + (c / 100).toFixed(2);
  function priceChart(decisions) {
    const pts = decisions.slice().reverse();
    if (!pts.length) return el("p", { class: "muted" }, "No price decisions yet.");
    if (pts.length === 1) return el("p", { class: "muted" }, "One decision so far: " + money(pts[0].cents) + ".");
    const ns = "http://www.w3.org/2000/svg", w = 460, h = 140, pad = 24;
    const values = pts.flatMap((d) => [d.cents, d.proposedCents]);
    const lo = Math.min(...values), hi = Math.max(...values), span = Math.max(1, hi - lo);
    const x = (i) => pad + (pts.length === 1 ? 0 : (i * (w - 2 * pad)) / (pts.length - 1));
    const y = (c) => h - pad - ((c - lo) * (h - 2 * pad)) / span;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.setAttribute("width", "100%"); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "price decisions over time");
    const add = (tag, attrs) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); svg.append(e); return e; };
    const line = pts.map((d, i) => `${i ? "H" + x(i) + " V" : "M" + x(i) + " "}${y(d.cents)}`).join(" ");
    add("path", { d: line, fill: "none", stroke: "#2563eb", "stroke-width": "2" });
    pts.forEach((d, i) => {
      const clamped = d.clamps.length > 0;
      const dot = add("circle", { cx: x(i), cy: y(d.cents), r: clamped ? 5 : 3, fill: clamped ? "#dc2626" : "#2563eb", "data-clamped": String(clamped) });
      const t = document.createElementNS(ns, "title"); t.textContent = money(d.cents) + " — " + d.reason; dot.append(t);
      if (clamped) add("line", { x1: x(i), y1: y(d.proposedCents), x2: x(i), y2: y(d.cents), stroke: "#dc2626", "stroke-dasharray": "3 3" });
    });
    add("text", { x: 2, y: y(hi) + 4, "font-size": "10", fill: "#6b7280" }).textContent = money(hi);
    add("text", { x: 2, y: y(lo) + 4, "font-size": "10", fill: "#6b7280" }).textContent = money(lo);
    return svg;
  }
  $("priceform").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const sku = $("price-sku").value.trim();
    if (!sku) return;
    try {
      const channels = ["web", "app", "store", "support"];
      const quotes = await Promise.all(channels.map((c) => api("/v1/prices?" + new URLSearchParams({ sku, channel: c })).then((r) => r.items[0])));
      rows($("price-channels"), ["channel", "list", "to pay", "promotions"], quotes.map((q) =>
        [chip(q.channel), money(q.listCents), money(q.priceCents), q.promotions.map((p) => p.name + (p.channelOnly ? " (" + q.channel + " only)" : "")).join(", ")]));
      const { items: decisions } = await api("/v1/prices/" + encodeURIComponent(sku) + "/history");
      $("price-chart").replaceChildren(priceChart(decisions));
      rows($("price-decisions"), ["price", "proposed", "held by", "why"], decisions.slice(0, 5).map((d) =>
        [money(d.cents), money(d.proposedCents), d.clamps.map((c) => c.rule.replace(/_/g, " ")).join(", "), d.reason]));
      $("pricemsg").textContent = "";
      showExperiment(sku);
    } catch (e) { $("pricemsg").textContent = e.message; }
  });
  // A price experiment, when the product has one: each candidate's expected value per period as
  // a bar, how long it was on the shelf and what it sold; the current (or winning) price marked.
  async function showExperiment(sku) {
    try {
      const x = await api("/v1/pricing/experiments/" + encodeURIComponent(sku));
      const max = Math.max(1e-9, ...x.arms.map((a) => a.expectedValue));
      const best = x.stopped ? x.stopped[1] : null;
      rows($("experiment-arms"), ["price", "periods", "units", "expected per period", ""], x.arms.map((a, i) =>
        [money(a.cents) + (i === best ? " (best)" : i === x.current ? " (on the shelf)" : ""), a.periods.toFixed(1), a.units,
          a.expectedValue.toFixed(2), el("div", { style: "width:160px" }, el("div", { class: "bar", style: "width:" + Math.round((100 * a.expectedValue) / max) + "%" }))]));
      $("experiment-status").textContent = x.status;
      $("experiment-note").textContent = (x.elasticity ? "elasticity " + x.elasticity[0].toFixed(2) + " ± " + x.elasticity[1].toFixed(2) + ". " : "") + (x.note || "");
      $("experiment-card").hidden = false;
    } catch (e) { $("experiment-card").hidden = true; }
  }
  // Journeys: the funnel per step, the lift on conversion against the holdout with its 95% and
  // always-valid intervals as a chart (one row overall, per step, per channel), the channel and
  // hour mix. Every drawn number carries its raw value in a data attribute.
  const pct = (x) => (x == null ? "…" : (100 * x).toFixed(1));
  function liftChart(rows) {
    const ns = "http://www.w3.org/2000/svg", w = 460, rowH = 28, pad = 90, h = rows.length * rowH + 24;
    const bounds = rows.flatMap((r) => [r.d.estimate, ...r.d.interval, ...r.d.alwaysValid]).filter((v) => v != null);
    const lo = Math.min(0, ...bounds), hi = Math.max(0, ...bounds), span = Math.max(1e-9, hi - lo);
    const x = (v) => pad + ((v - lo) * (w - pad - 10)) / span;
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`); svg.setAttribute("width", "100%"); svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "lift on conversion with intervals");
    const add = (tag, attrs, parent) => { const e = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); (parent || svg).append(e); return e; };
    add("line", { x1: x(0), y1: 0, x2: x(0), y2: h - 20, stroke: "#9ca3af", "stroke-dasharray": "2 3" });
    rows.forEach((r, i) => {
      const y = 14 + i * rowH, d = r.d;
      const g = add("g", { class: "lift-row", "data-label": r.label, "data-estimate": String(d.estimate),
        "data-lo": String(d.interval[0]), "data-hi": String(d.interval[1]), "data-av-lo": String(d.alwaysValid[0]), "data-av-hi": String(d.alwaysValid[1]), "data-verdict": d.verdict });
      add("text", { x: 2, y: y + 4, "font-size": "11", fill: "#374151" }, g).textContent = r.label;
      const clip = (v, side) => (v == null ? (side < 0 ? lo : hi) : v);
      add("line", { x1: x(clip(d.alwaysValid[0], -1)), y1: y, x2: x(clip(d.alwaysValid[1], 1)), y2: y, stroke: "#99f6e4", "stroke-width": "8", "stroke-linecap": "round" }, g);
      add("line", { x1: x(clip(d.interval[0], -1)), y1: y, x2: x(clip(d.interval[1], 1)), y2: y, stroke: "#0f766e", "stroke-width": "3" }, g);
      const dot = add("circle", { cx: x(d.estimate), cy: y, r: 4, fill: d.verdict === "better" ? "#15803d" : d.verdict === "worse" ? "#dc2626" : "#1d2430" }, g);
      const t = document.createElementNS(ns, "title");
      t.textContent = `${r.label}: ${pct(d.estimate)} pts, 95% [${pct(d.interval[0])}, ${pct(d.interval[1])}], always-valid [${pct(d.alwaysValid[0])}, ${pct(d.alwaysValid[1])}]`;
      dot.append(t);
    });
    add("text", { x: x(lo), y: h - 4, "font-size": "10", fill: "#6b7280" }).textContent = pct(lo) + " pts";
    add("text", { x: x(hi) - 40, y: h - 4, "font-size": "10", fill: "#6b7280" }).textContent = pct(hi) + " pts";
    return svg;
  }
  async function showJourney(id) {
    try {
      const r = await api("/v1/journeys/" + encodeURIComponent(id) + "/report");
      $("journey-summary").textContent = `${r.entries} entries, ${r.holdoutPercent}% held out; a conversion is ${r.goal} within ${r.attributionHours} h.`;
      const maxReach = Math.max(1, ...r.funnel.map((f) => f.reached));
      rows($("journey-funnel"), ["step", "reached", "sent", "held out", "skipped", "converted", ""], r.funnel.map((f) =>
        [f.step, f.reached, f.sent, f.heldOut, f.skipped, f.converted,
          el("div", { style: "width:120px" }, el("div", { class: "bar", style: "width:" + Math.round((100 * f.reached) / maxReach) + "%" }))]));
      const lifts = [{ label: "overall", l: r.overall }, ...r.steps.map((s) => ({ label: "step " + s.step, l: s })), ...r.channels.map((c) => ({ label: "channel " + c.channel, l: c }))];
      $("journey-lift").replaceChildren(liftChart(lifts.map((x) => ({ label: x.label, d: x.l.conversion }))));
      rows($("journey-lift-table"), ["", "recipients", "holdout", "lift (pts)", "95%", "always-valid", "revenue/customer Δ"], lifts.map((x) => {
        const c = x.l.conversion;
        return [x.label, pct(x.l.recipients.conversionRate) + "% of " + x.l.recipients.customers, pct(x.l.holdout.conversionRate) + "% of " + x.l.holdout.customers,
          pct(c.estimate), "[" + pct(c.interval[0]) + ", " + pct(c.interval[1]) + "]", "[" + pct(c.alwaysValid[0]) + ", " + pct(c.alwaysValid[1]) + "]",
          x.l.revenuePerCustomer.estimate.toFixed(2)];
      }));
      $("journey-verdict").textContent = { better: "better than the holdout", worse: "worse than the holdout", notYetClear: "not clear yet" }[r.overall.conversion.verdict];
      const maxMix = Math.max(1, ...r.channelMix.map((c) => c.sends));
      rows($("journey-channels"), ["channel", "sends", ""], r.channelMix.map((c) => [chip(c.key), c.sends,
        el("div", { style: "width:120px" }, el("div", { class: "bar", style: "width:" + Math.round((100 * c.sends) / maxMix) + "%" }))]));
      const maxHour = Math.max(1, ...r.hourMix.map((h) => h.sends));
      $("journey-hours").replaceChildren(el("div", { class: "hours" }, ...r.hourMix.map((h) => el("div", { class: "hour", "data-hour": h.key, "data-sends": String(h.sends), title: h.key + ":00 " + r.zone + " — " + h.sends + " sends" },
        el("div", { class: "bar", style: "height:" + Math.round((60 * h.sends) / maxHour) + "px" }), el("span", {}, h.key)))));
      $("journey-report").hidden = false;
      $("journeymsg").textContent = "";
    } catch (e) { $("journey-report").hidden = true; $("journeymsg").textContent = e.status === 404 ? "No journey " + id + "." : e.message; }
  }
  $("journeyform").addEventListener("submit", (ev) => { ev.preventDefault(); const id = $("journey-id").value.trim(); if (id) showJourney(id); });
  // Models: validation NDCG of each stored version (repeat lists and discovery), newest served.
  async function loadModels() {
    try {
      const { items: versions } = await api("/v1/models?limit=12");
      const withMetrics = versions.filter((v) => v.validationNdcg).slice(0, 12).reverse();
      const ndcg = (v) => v.validationNdcg;
      const max = Math.max(0.01, ...withMetrics.flatMap((v) => ndcg(v)));
      const legend = el("p", { class: "muted" }, "validation NDCG@10: ", el("span", { class: "chip", style: "background:var(--accent);color:#fff" }, "repeat lists"),
        el("span", { class: "chip", style: "background:#f59e0b" }, "discovery"));
      $("model-chart").replaceChildren(...(withMetrics.length ? [legend] : []), ...withMetrics.map((v) => el("div", { class: "model-bars", "data-version": String(v.version) },
        el("span", { class: "muted" }, "v" + v.version),
        el("div", { class: "bar", title: "repeats NDCG@10 " + ndcg(v)[0].toFixed(3), style: "width:" + Math.round((100 * ndcg(v)[0]) / max) + "%" }),
        el("div", { class: "bar discovery", title: "discovery NDCG@10 " + ndcg(v)[1].toFixed(3), style: "width:" + Math.round((100 * ndcg(v)[1]) / max) + "%" }))));
      rows($("model-versions"), ["version", "trained", "customers", "products", "repeats NDCG@10", "discovery NDCG@10"], versions.slice(0, 5).map((v) =>
        ["v" + v.version + (v === versions[0] ? " (serving)" : ""), new Date(v.trainedAt).toLocaleString(), v.customers, v.products,
          ndcg(v) ? ndcg(v)[0].toFixed(3) : "-", ndcg(v) ? ndcg(v)[1].toFixed(3) : "-"]));
      $("models-note").textContent = versions.length ? "" : "No model yet: run `tailor train` or POST /v1/models/train.";
    } catch (e) { $("models-note").textContent = e.message; }
  }
  const stockEvents = [];
  function showStockEvent(e) {
    stockEvents.unshift(e);
    stockEvents.length = Math.min(stockEvents.length, 50);
    rows($("stock-events"), ["when", "event", "SKU", "location", "available"], stockEvents.map((x) =>
      [new Date(x.at).toTimeString().slice(0, 8), el("span", { class: "chip " + x.kind }, x.kind.replace(/_/g, " ")), x.sku, x.locationId, x.available]));
  }
  async function followStock() {
    // Server-Sent Events read with fetch, since EventSource cannot send the key.
    for (;;) {
      try {
        const res = await fetch("/v1/inventory/events", { headers: { Authorization: "Bearer " + key } });
        if (!res.ok) return;
        document.body.dataset.stockFeed = "open";
        const reader = res.body.getReader(), text = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += text.decode(value, { stream: true });
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const data = buf.slice(0, cut).split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
            buf = buf.slice(cut + 2);
            if (data) showStockEvent(JSON.parse(data));
          }
        }
      } catch (e) { /* reconnect below */ }
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
  rows($("stock-events"), ["when", "event", "SKU", "location", "available"], []);
  if (key) followStock();

  $("keyform").addEventListener("submit", (ev) => { ev.preventDefault(); key = $("key").value.trim(); localStorage.setItem("tailor.key", key); loadStats(); loadModels(); });
  loadStats();
  loadModels();
  setInterval(loadStats, 5000);
})();
