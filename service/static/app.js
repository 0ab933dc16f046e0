// rag-toolkit search page: talks to the same REST API as any client (POST /search, POST /answer
// with "stream": true, GET /indexes). No dependencies, no build step, no request to another host.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY = "rag-api-key";
const SNIPPET = 320; // characters shown before "Show full text"
let pendingRetry = null; // the action to run again once an API key has been entered

// ---------- HTTP ----------
class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem(KEY);
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function failure(response) {
  // Every service error is {"error": {"code", "message"}}; anything else (a proxy page) is shown by status.
  let code = `http_${response.status}`, message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) { code = body.error.code || code; message = body.error.message || message; }
  } catch (_) { /* not JSON */ }
  return new ApiError(response.status, code, message);
}

async function call(method, path, body) {
  const response = await fetch(path, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  if (!response.ok) throw await failure(response);
  return response;
}

// ---------- messages ----------
function showError(err) {
  const box = $("error");
  if (err instanceof ApiError) box.textContent = `${err.message} (${err.code}, HTTP ${err.status})`;
  else box.textContent = `Cannot reach the server: ${err.message}`;
  box.hidden = false;
}
function clearError() { $("error").hidden = true; $("error").textContent = ""; }
function status(text) { $("status").textContent = text; }

async function guarded(action) {
  // Runs action(); a 401 opens the key prompt and runs it again once a key is given.
  clearError();
  try {
    await action();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      $("key-hint").textContent = sessionStorage.getItem(KEY)
        ? "The server did not accept that key. Enter it again."
        : "This server asks for a key. It is kept in this tab only (session storage).";
      sessionStorage.removeItem(KEY);
      pendingRetry = action;
      $("key-dialog").showModal();
      $("key-input").focus();
      return;
    }
    showError(err);
    status("");
  }
}

// ---------- text with highlights and citations ----------
function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function marked(text, spans, from = 0, to = Infinity) {
  // Offsets from the server are Unicode code points; Array.from splits by code points too.
  const chars = Array.from(text);
  to = Math.min(to, chars.length);
  const frag = document.createDocumentFragment();
  let at = from;
  for (const [s, e] of spans || []) {
    if (e <= at || s >= to) continue;
    if (s > at) frag.append(chars.slice(at, s).join(""));
    frag.append(el("mark", "", chars.slice(Math.max(s, at), Math.min(e, to)).join("")));
    at = Math.min(e, to);
  }
  if (at < to) frag.append(chars.slice(at, to).join(""));
  return frag;
}

function snippetWindow(length, spans) {
  // A window of SNIPPET characters starting a little before the first match.
  if (length <= SNIPPET) return [0, length];
  const first = spans && spans.length ? spans[0][0] : 0;
  const start = Math.max(0, Math.min(first - 60, length - SNIPPET));
  return [start, start + SNIPPET];
}

// ---------- search ----------
function params() {
  return { q: $("q").value.trim(), index: $("index").value, mode: $("mode").value, k: parseInt($("k").value, 10) || 10 };
}

function remember(p) {
  const url = new URL(window.location.href);
  url.search = new URLSearchParams({ q: p.q, mode: p.mode, k: String(p.k), index: p.index }).toString();
  if (url.href !== window.location.href) history.pushState(null, "", url);
}

function renderHit(hit, rank) {
  const li = el("li", "hit");
  li.id = `hit-${rank}`;
  const head = el("div", "hit-head");
  head.append(el("span", "rank", String(rank)));
  const title = el("h3", "hit-title");
  title.append(marked(hit.title || hit.doc_id, hit.title ? hit.highlights?.title : []));
  head.append(title, el("span", "score", hit.score.toFixed(4)));
  head.lastChild.title = "retriever score";
  li.append(head, el("div", "meta", hit.id === hit.doc_id ? hit.doc_id : `${hit.doc_id} · passage ${hit.id}`));

  const spans = hit.highlights?.text || [];
  const length = Array.from(hit.text).length;
  const [from, to] = snippetWindow(length, spans);
  const passage = el("p", "passage");
  const short = () => {
    passage.replaceChildren(from > 0 ? "… " : "", marked(hit.text, spans, from, to), to < length ? " …" : "");
  };
  short();
  li.append(passage);
  if (from > 0 || to < length) {
    const toggle = el("button", "toggle", "Show full text");
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", "false");
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      if (open) passage.replaceChildren(marked(hit.text, spans)); else short();
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Show less" : "Show full text";
    });
    li.append(toggle);
  }
  return li;
}

async function search() {
  const p = params();
  if (!p.q) { $("q").focus(); return; }
  remember(p);
  status("Searching…");
  const t0 = performance.now();
  const response = await call("POST", "/search", { query: p.q, k: p.k, mode: p.mode, index: p.index || null, highlight: true });
  const body = await response.json();
  $("results").replaceChildren(...body.hits.map((h, i) => renderHit(h, i + 1)));
  $("summary").textContent = body.hits.length
    ? `${body.hits.length} passages from ${body.index} (${body.mode}) · search ${body.timing_ms.toFixed(1)} ms, page ${(performance.now() - t0).toFixed(0)} ms`
    : `No passage matched in ${body.index} (${body.mode}).`;
  status("");
}

// ---------- ask (streamed) ----------
function renderAnswerText(text) {
  // Escaped text, each [n] a link to its citation.
  const node = $("answer-text");
  node.replaceChildren();
  let at = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    node.append(text.slice(at, m.index));
    const a = el("a", "", m[0]);
    a.href = `#cite-${m[1]}`;
    a.addEventListener("click", () => flash(`cite-${m[1]}`));
    node.append(a);
    at = m.index + m[0].length;
  }
  node.append(text.slice(at));
}

function flash(id) {
  const node = $(id);
  if (!node) return;
  node.classList.add("flash");
  setTimeout(() => node.classList.remove("flash"), 1500);
}

function renderCitations(answer) {
  const items = answer.citations.map((c) => {
    const li = el("li");
    li.id = `cite-${c.n}`;
    li.append(el("span", "cite-link", `[${c.n}] `), el("strong", "", c.title || c.doc_id), ` · ${c.id} · score ${c.score.toFixed(4)}`);
    return li;
  });
  $("citations").replaceChildren(...items);
  const t = answer.timings, ms = (v) => `${v.toFixed(0)} ms`;
  const parts = [`retrieval ${ms(t.retrieval_ms)}`];
  if (t.ttft_ms !== undefined) parts.push(`${answer.kind === "generated" ? "first token" : "answer"} ${ms(t.ttft_ms)}`);
  if (t.decode_ms) parts.push(`decode ${ms(t.decode_ms)}`);
  $("timings").textContent = parts.join(" · ");
}

function* sseEvents(buffer) {
  // Complete events of a text/event-stream buffer; returns what is left.
  let cut;
  while ((cut = buffer.text.indexOf("\n\n")) >= 0) {
    const raw = buffer.text.slice(0, cut);
    buffer.text = buffer.text.slice(cut + 2);
    let event = "message", data = "";
    for (const line of raw.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trimStart();
    }
    yield { event, data: data ? JSON.parse(data) : null };
  }
}

async function ask() {
  const p = params();
  if (!p.q) { $("q").focus(); return; }
  remember(p);
  status("Answering…");
  const section = $("answer"), textNode = $("answer-text");
  const k = Math.min(p.k, 20);
  const response = await call("POST", "/answer", { question: p.q, k, mode: p.mode, index: p.index || null, stream: true });
  section.hidden = false;
  $("answer-kind").textContent = "";
  $("timings").textContent = "";
  $("citations").replaceChildren();
  textNode.setAttribute("aria-busy", "true");
  let text = "";
  renderAnswerText(text);
  const reader = response.body.getReader(), decoder = new TextDecoder(), buffer = { text: "" };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer.text += decoder.decode(value, { stream: true });
      for (const { event, data } of sseEvents(buffer)) {
        if (event === "token") { text += data.text; renderAnswerText(text); }
        else if (event === "answer") {
          renderAnswerText(data.answer);
          const kind = $("answer-kind");
          kind.textContent = data.kind;
          kind.className = `badge ${data.kind}`;
          renderCitations(data);
        } else if (event === "error") {
          throw new ApiError(200, data.error.code, data.error.message);
        }
      }
    }
  } finally {
    textNode.setAttribute("aria-busy", "false");
  }
  status("");
}

// ---------- indexes, key, start-up ----------
async function loadIndexes() {
  const body = await (await call("GET", "/indexes")).json();
  const select = $("index"), wanted = select.value;
  select.replaceChildren(...body.indexes.map((ix) => {
    const opt = el("option", "", `${ix.name} (${ix.documents} docs)`);
    opt.value = ix.name;
    opt.dataset.modes = ix.modes.join(" ");
    return opt;
  }));
  select.value = body.indexes.some((ix) => ix.name === wanted) ? wanted : (body.default || "");
  syncModes();
}

function syncModes() {
  const opt = $("index").selectedOptions[0];
  const modes = opt ? opt.dataset.modes.split(" ") : ["bm25", "dense", "hybrid"];
  for (const o of $("mode").options) o.disabled = !modes.includes(o.value);
  if ($("mode").selectedOptions[0]?.disabled) $("mode").value = modes.includes("hybrid") ? "hybrid" : modes[0];
}

function applyUrl() {
  const u = new URLSearchParams(window.location.search);
  if (u.has("q")) $("q").value = u.get("q");
  if (u.has("k")) $("k").value = u.get("k");
  if (u.has("index")) {
    const name = u.get("index");
    if (![...$("index").options].some((o) => o.value === name)) $("index").append(Object.assign(el("option", "", name), { value: name }));
    $("index").value = name;
  }
  syncModes();
  if (u.has("mode")) $("mode").value = u.get("mode");
  return u.has("q") && u.get("q").trim() !== "";
}

async function start() {
  await loadIndexes();
  if (applyUrl()) await search();
}

function busy(on) { $("search-btn").disabled = on; $("ask-btn").disabled = on; }
function run(action) { busy(true); return guarded(action).finally(() => busy(false)); }

document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); run(search); });
  $("ask-btn").addEventListener("click", () => run(ask));
  $("index").addEventListener("change", syncModes);
  $("key-form").addEventListener("submit", () => {
    sessionStorage.setItem(KEY, $("key-input").value);
    $("key-input").value = "";
    const retry = pendingRetry;
    pendingRetry = null;
    if (retry) run(retry);
  });
  window.addEventListener("popstate", () => { if (applyUrl()) run(search); });
  run(start);
});
