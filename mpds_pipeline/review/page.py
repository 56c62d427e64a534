"""The review page: static HTML, CSS and JS served as they are.

No data is ever interpolated into this HTML: the script fetches JSON and writes every
string with ``textContent``, so a title like ``<script>alert(1)</script>`` shows as
text. The server's Content-Security-Policy allows only these same-origin files (no
inline script or style), a second line of defence.
"""
from __future__ import annotations

PAGE_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>MPDS caption review</title>
<link rel="stylesheet" href="/static/review.css">
<script src="/static/review.js" defer></script>
</head>
<body>
<header>
  <h1>MPDS caption review</h1>
  <label>Reviewer <input id="reviewer" autocomplete="off" size="14"></label>
  <label>Order
    <select id="order">
      <option value="confidence">lowest caption confidence first</option>
      <option value="unreviewed">never reviewed first</option>
    </select>
  </label>
  <label>Genre <select id="genre"><option value="">all</option></select></label>
  <label>Partition <select id="partition"><option value="">all</option></select></label>
</header>
<section id="progress" aria-live="polite">
  <span id="progress-summary"></span>
  <table id="progress-reviewers"><thead><tr><th>reviewer</th><th>posters</th><th>saves</th></tr></thead><tbody></tbody></table>
</section>
<main id="item" hidden>
  <div class="poster"><img id="poster" alt="poster"><p id="no-poster" hidden>no poster image</p></div>
  <div class="texts">
    <h2><span id="title"></span> <small id="movie-id"></small></h2>
    <p class="meta"><span id="genres"></span> &middot; <span id="partition-name"></span> &middot;
      position <span id="position"></span></p>
    <h3>BLIP-2 caption <small>confidence <span id="confidence"></span></small></h3>
    <p id="caption" class="box"></p>
    <h3>Movie-synopsis prompt</h3>
    <p id="synopsis" class="box"></p>
    <h3>Current integrated text</h3>
    <p id="current-text" class="box"></p>
    <h3>Correction <small id="correction-by"></small></h3>
    <textarea id="editor" rows="4" spellcheck="true"></textarea>
    <div id="conflict" class="conflict" hidden>
      <strong>Conflict:</strong> <span id="conflict-reviewer"></span> saved this poster meanwhile:
      <p id="conflict-text" class="box"></p>
      Press <kbd>t</kbd> to take their text, or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> to save yours over it.
    </div>
    <p id="status" role="status"></p>
  </div>
</main>
<p id="empty" hidden>Nothing to review with these filters.</p>
<footer id="keys">
  <strong>Keys</strong>:
  <kbd>e</kbd> edit the correction &middot;
  <kbd>Ctrl</kbd>+<kbd>Enter</kbd> save the text in the box &middot;
  <kbd>a</kbd> approve the caption unchanged &middot;
  <kbd>s</kbd> skip to the next poster (nothing saved) &middot;
  <kbd>b</kbd> back to the previous poster &middot;
  <kbd>t</kbd> take the other reviewer's text after a conflict &middot;
  <kbd>Esc</kbd> leave the text box &middot;
  <kbd>r</kbd> reload the queue.
  Letter keys act when the text box is not focused.
</footer>
</body>
</html>
"""

PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 1rem; color: #222; }
header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.2rem; }
#progress { margin: .5rem 0; }
#progress table { border-collapse: collapse; display: inline-table; margin-left: 1rem; }
#progress td, #progress th { border: 1px solid #ccc; padding: 0 .4rem; font-size: .85rem; }
main { display: flex; gap: 1.5rem; align-items: flex-start; }
.poster img { max-width: 320px; max-height: 480px; border: 1px solid #999; }
.texts { flex: 1; max-width: 60rem; }
.box { background: #f4f4f4; padding: .4rem; white-space: pre-wrap; min-height: 1.2rem; }
textarea { width: 100%; font: inherit; }
.conflict { border: 2px solid #c00; padding: .5rem; background: #fee; }
#status { font-weight: bold; }
footer { margin: 1rem 0; font-size: .9rem; }
kbd { border: 1px solid #888; border-radius: 3px; padding: 0 .25rem; background: #fafafa; }
"""

PAGE_JS = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { queue: [], index: 0, item: null, loading: false };

  function setText(id, value) { $(id).textContent = value == null ? "" : String(value); }

  function filters() {
    const p = new URLSearchParams();
    p.set("order", $("order").value);
    if ($("genre").value) p.set("genre", $("genre").value);
    if ($("partition").value) p.set("partition", $("partition").value);
    return p;
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
    let body = null;
    try { body = await response.json(); } catch (e) { body = { error: "bad response" }; }
    return { status: response.status, body: body };
  }

  function fillSelect(id, values) {
    const select = $(id);
    const keep = select.value;
    while (select.options.length > 1) select.remove(1);
    for (const v of values) {
      const option = document.createElement("option");
      option.value = v; option.textContent = v;
      select.appendChild(option);
    }
    select.value = keep;
  }

  async function loadFacets() {
    const r = await api("/api/facets");
    if (r.status !== 200) return;
    fillSelect("genre", r.body.genres);
    fillSelect("partition", r.body.partitions);
  }

  async function loadProgress() {
    const r = await api("/api/progress?" + filters().toString());
    if (r.status !== 200) return;
    const p = r.body;
    setText("progress-summary", p.reviewed + " reviewed, " + p.left + " left of " + p.total);
    const body = $("progress-reviewers").tBodies[0];
    while (body.rows.length) body.deleteRow(0);
    for (const rev of p.reviewers) {
      const row = body.insertRow();
      row.dataset.reviewer = rev.reviewer;
      for (const v of [rev.reviewer, rev.posters, rev.saves]) row.insertCell().textContent = String(v);
    }
  }

  async function loadQueue(keepId) {
    const r = await api("/api/queue?" + filters().toString());
    state.queue = r.status === 200 ? r.body.ids : [];
    const at = keepId == null ? -1 : state.queue.indexOf(keepId);
    state.index = at >= 0 ? at : 0;
    await Promise.all([showCurrent(), loadProgress()]);
  }

  async function showCurrent() {
    hideConflict();
    if (!state.queue.length || state.index >= state.queue.length) {
      $("item").hidden = true; $("empty").hidden = false; state.item = null;
      return;
    }
    const id = state.queue[state.index];
    // Until this poster has loaded, keys must not act on the previous one.
    state.item = null;
    const r = await api("/api/items/" + id);
    if (state.queue[state.index] !== id) return;  // the reviewer moved on meanwhile
    if (r.status !== 200) { setText("status", r.body.error || "could not load"); return; }
    render(r.body);
  }

  function render(item) {
    state.item = item;
    $("empty").hidden = true; $("item").hidden = false;
    setText("title", item.title || "(no title)");
    setText("movie-id", "tt" + String(item.id).padStart(7, "0"));
    setText("genres", (item.genres || []).join(", "));
    setText("partition-name", item.partition || "");
    setText("position", (state.index + 1) + " / " + state.queue.length);
    setText("confidence", item.confidence == null ? "n/a" : item.confidence.toFixed(3));
    setText("caption", item.blip2_caption || "(no caption)");
    setText("synopsis", item.synopsis_prompt || "");
    setText("current-text", item.current_text || "");
    setText("correction-by", item.correction
      ? "last saved by " + (item.correction.reviewer || "(unnamed)") + " at " + (item.correction.created_at || "")
      : "never reviewed");
    $("editor").value = item.editable_text || "";
    if (item.image_url) {
      $("poster").src = item.image_url; $("poster").hidden = false; $("no-poster").hidden = true;
    } else {
      $("poster").removeAttribute("src"); $("poster").hidden = true; $("no-poster").hidden = false;
    }
    setText("status", "");
  }

  function hideConflict() { $("conflict").hidden = true; }

  async function save(text, approved) {
    if (!state.item || state.loading) return;
    const reviewer = $("reviewer").value.trim();
    localStorage.setItem("mpds-reviewer", reviewer);
    state.loading = true;
    try {
      const r = await api("/api/items/" + state.item.id + "/save", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          text: text,
          reviewer: reviewer,
          expected_previous: state.item.version,
          replaced_text: state.item.editable_text,
          note: approved ? "approved unchanged" : null,
        }),
      });
      if (r.status === 200) {
        $("editor").blur();
        setText("status", "saved");
        state.index += 1;
        await Promise.all([showCurrent(), loadProgress()]);
        setText("status", "saved tt" + String(r.body.id).padStart(7, "0"));
      } else if (r.status === 409) {
        // Someone else saved first: show their text; saving again now overwrites knowingly.
        state.item.version = r.body.current_text;
        state.item.conflict_text = r.body.current_text;
        setText("conflict-reviewer", r.body.current_reviewer || "(unnamed)");
        setText("conflict-text", r.body.current_text || "");
        $("conflict").hidden = false;
        setText("status", "not saved: conflict");
        loadProgress();
      } else {
        setText("status", "not saved: " + (r.body.error || r.status));
      }
    } finally {
      state.loading = false;
    }
  }

  function move(step) {
    const next = state.index + step;
    if (next < 0 || next > state.queue.length) return;
    state.index = next;
    showCurrent();
  }

  function onKey(event) {
    const inEditor = document.activeElement === $("editor");
    const inField = inEditor || ["INPUT", "SELECT"].includes(document.activeElement.tagName);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault(); save($("editor").value, false); return;
    }
    if (event.key === "Escape") { document.activeElement.blur(); return; }
    if (inField || event.ctrlKey || event.metaKey || event.altKey) return;
    const actions = {
      e: () => $("editor").focus(),
      a: () => state.item && save(state.item.editable_text, true),
      s: () => move(1),
      b: () => move(-1),
      r: () => loadQueue(state.item ? state.item.id : null),
      t: () => {
        if (state.item && state.item.conflict_text != null) {
          $("editor").value = state.item.conflict_text; hideConflict(); $("editor").focus();
        }
      },
    };
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  }

  async function start() {
    $("reviewer").value = localStorage.getItem("mpds-reviewer") || "";
    const config = await api("/api/config");
    if (!$("reviewer").value && config.status === 200 && config.body.reviewer_default) {
      $("reviewer").value = config.body.reviewer_default;
    }
    for (const id of ["order", "genre", "partition"]) {
      $(id).addEventListener("change", () => { $(id).blur(); loadQueue(null); });
    }
    document.addEventListener("keydown", onKey);
    await loadFacets();
    await loadQueue(null);
    document.body.dataset.ready = "1";
  }

  start();
})();
"""
