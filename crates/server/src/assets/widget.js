// Tailor's chat widget. A shop page includes it with its write key:
//   <script src="https://TAILOR/assistant/widget.js" data-key="tk_write_…" data-store="381"></script>
// Optional: data-anonymous-id (else one is kept in localStorage), data-channel (web or kiosk),
// data-open ("true" opens the panel at once). Plain DOM, no framework, no CDN. The write key
// converses only as this anonymous visitor: each conversation's token (kept for the tab in
// sessionStorage) is what continues it. Replies from a person arrive on the live feed.
(function () {
  "use strict";
  const script = document.currentScript || document.querySelector("script[data-tailor-widget]");
  if (!script) return;
  const data = script.dataset;
  const base = new URL(script.src, location.href).origin;
  const hash = new URLSearchParams(location.hash.slice(1));
  const key = data.key || hash.get("key") || "";
  const store = data.store || hash.get("store") || null;
  const channel = data.channel || "web";
  let anon = data.anonymousId || localStorage.getItem("tailor.anonymousId");
  if (!anon) {
    anon = "anon-" + Math.random().toString(36).slice(2) + Date.now().toString(36);
    localStorage.setItem("tailor.anonymousId", anon);
  }
  let conv = JSON.parse(sessionStorage.getItem("tailor.conversation") || "null");
  const seen = new Set();
  let feed = null;

  const css = `
#tailor-chat-button{position:fixed;right:20px;bottom:20px;z-index:2147483000;border:0;border-radius:24px;padding:12px 18px;background:#1f6feb;color:#fff;font:600 14px system-ui,sans-serif;cursor:pointer;box-shadow:0 2px 8px #0003}
#tailor-chat{position:fixed;right:20px;bottom:76px;z-index:2147483000;width:340px;max-height:520px;display:flex;flex-direction:column;background:#fff;border:1px solid #d0d7de;border-radius:12px;box-shadow:0 4px 24px #0003;font:14px system-ui,sans-serif;color:#1f2328}
#tailor-chat[hidden]{display:none}
#tailor-chat header{padding:10px 14px;border-bottom:1px solid #eee;font-weight:600;display:flex;justify-content:space-between}
#tailor-chat-log{flex:1;overflow-y:auto;padding:10px;display:flex;flex-direction:column;gap:6px;min-height:200px}
.tailor-msg{max-width:85%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;line-height:1.35}
.tailor-msg[data-role=shopper]{align-self:flex-end;background:#1f6feb;color:#fff}
.tailor-msg[data-role=assistant]{align-self:flex-start;background:#f3f4f6}
.tailor-msg[data-role=agent]{align-self:flex-start;background:#fff4d6;border:1px solid #f0c36d}
.tailor-msg[data-role=system]{align-self:center;background:none;color:#666;font-size:12px}
.tailor-who{display:block;font-size:11px;color:#8a6d1a;margin-bottom:2px}
.tailor-card{display:block;margin-top:6px;padding:6px 8px;background:#fff;border:1px solid #ddd;border-radius:8px;font-size:13px}
.tailor-quick{margin:6px 6px 0 0;border:1px solid #1f6feb;background:#fff;color:#1f6feb;border-radius:14px;padding:4px 10px;cursor:pointer}
#tailor-chat form{display:flex;border-top:1px solid #eee}
#tailor-chat-input{flex:1;border:0;padding:10px;font:inherit;outline:none}
#tailor-chat-send{border:0;background:none;color:#1f6feb;font-weight:600;padding:0 14px;cursor:pointer}
#tailor-chat-status{font-size:11px;color:#666;font-weight:400}`;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return e;
  }

  const style = el("style", {}, css);
  const log = el("div", { id: "tailor-chat-log", "aria-live": "polite" });
  const input = el("input", { id: "tailor-chat-input", placeholder: "Ask about products, stock, orders…", maxlength: "2000", autocomplete: "off", "aria-label": "Message" });
  const status = el("span", { id: "tailor-chat-status" });
  const form = el("form", { id: "tailor-chat-form" }, input, el("button", { id: "tailor-chat-send", type: "submit" }, "Send"));
  const panel = el("div", { id: "tailor-chat", role: "dialog", "aria-label": "Shopping assistant", hidden: "" },
    el("header", {}, el("span", {}, "Shopping assistant"), status), log, form);
  const button = el("button", { id: "tailor-chat-button", type: "button" }, "Chat with us");
  document.head.append(style);
  document.body.append(panel, button);

  function render(m) {
    if (m.n != null) {
      if (seen.has(m.n)) return;
      seen.add(m.n);
    }
    const bubble = el("div", { class: "tailor-msg", "data-role": m.role, "data-n": m.n == null ? "" : String(m.n) });
    if (m.role === "agent") bubble.append(el("span", { class: "tailor-who" }, (m.reply && m.reply.agent) || "Staff"));
    bubble.append(m.text);
    const r = m.reply || {};
    for (const c of r.cards || []) {
      bubble.append(el("span", { class: "tailor-card", "data-sku": c.sku }, c.title + (c.price ? " — " + c.price : "") + (c.reason ? " · " + c.reason : "")));
    }
    if (r.quickReplies && r.quickReplies.length) {
      const quick = el("div", {});
      for (const q of r.quickReplies) quick.append(el("button", { class: "tailor-quick", type: "button", onclick: () => send(q) }, q));
      bubble.append(quick);
    }
    log.append(bubble);
    log.scrollTop = log.scrollHeight;
  }

  async function call(path, body) {
    const headers = { Authorization: "Bearer " + key, "Content-Type": "application/json" };
    if (conv) headers["X-Conversation-Token"] = conv.token;
    const res = await fetch(base + path, { method: body === undefined ? "GET" : "POST", headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const out = await res.json().catch(() => null);
    if (!res.ok) throw new Error((out && out.detail) || res.statusText);
    return out;
  }

  async function ensureConversation() {
    if (conv) return;
    const started = await call("/v1/conversations", { anonymousId: anon, channel, storeId: store });
    conv = { id: started.conversation.id, token: started.token };
    sessionStorage.setItem("tailor.conversation", JSON.stringify(conv));
  }

  // The live feed over fetch (EventSource cannot send the key and token headers).
  async function listen() {
    if (feed || !conv) return;
    feed = new AbortController();
    const after = Math.max(0, ...seen);
    try {
      const res = await fetch(`${base}/v1/conversations/${encodeURIComponent(conv.id)}/stream?after=${after}`, {
        headers: { Authorization: "Bearer " + key, "X-Conversation-Token": conv.token }, signal: feed.signal,
      });
      if (!res.ok || !res.body) throw new Error("feed " + res.status);
      document.body.dataset.tailorFeed = "open";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          const dataLines = frame.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart());
          if (dataLines.length) {
            try { render(JSON.parse(dataLines.join("\n"))); } catch (_) { /* a keep-alive or a partial frame */ }
          }
        }
      }
    } catch (e) {
      if (e.name === "AbortError") return;
    } finally {
      feed = null;
      delete document.body.dataset.tailorFeed;
    }
    // Reconnect after a pause (server restart, network change).
    setTimeout(listen, 2000);
  }

  async function send(text) {
    text = (text || "").trim();
    if (!text) return;
    status.textContent = "…";
    try {
      await ensureConversation();
      const turn = await call(`/v1/conversations/${encodeURIComponent(conv.id)}/messages`, { text });
      render(turn.message);
      if (turn.reply) render(turn.reply);
      status.textContent = turn.conversation.state === "handoff" ? "with a person" : "";
      listen();
    } catch (e) {
      status.textContent = e.message;
    }
  }

  async function restore() {
    if (!conv) return;
    try {
      const page = await call(`/v1/conversations/${encodeURIComponent(conv.id)}/messages?limit=1000`);
      page.items.forEach(render);
      listen();
    } catch (_) {
      conv = null;
      sessionStorage.removeItem("tailor.conversation");
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); const t = input.value; input.value = ""; send(t); });
  button.addEventListener("click", () => { panel.hidden = !panel.hidden; if (!panel.hidden) input.focus(); });
  if (data.open === "true" || hash.get("open") === "true") panel.hidden = false;
  restore();
  window.TailorChat = { send, open: () => { panel.hidden = false; } };
})();
