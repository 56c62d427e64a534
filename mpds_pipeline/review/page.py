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
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/review.css">
<script src="/static/review.js" defer></script>
</head>
<body>
<header>
  <h1>MPDS caption review</h1>
  <label>Reviewer <input id="reviewer" autocomplete="off" size="14" placeholder="your name"></label>
  <label>Order
    <select id="order">
      <option value="unreviewed">never reviewed first</option>
      <option value="confidence">lowest caption confidence first</option>
    </select>
  </label>
  <label>Genre <select id="genre"><option value="">all</option></select></label>
  <label>Partition <select id="partition"><option value="">all</option></select></label>
  <button id="reload-button" type="button">Reload queue <kbd>r</kbd></button>
</header>
<section id="progress" aria-live="polite">
  <span id="progress-summary"></span>
  <table id="progress-reviewers"><thead><tr><th>reviewer</th><th>posters</th><th>saves</th></tr></thead><tbody></tbody></table>
  <p id="left-out" class="note" hidden></p>
</section>
<p id="remerge" class="note"></p>
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
    <h3>Correction <small id="correction-by"></small> <span id="export-state" class="badge" hidden></span></h3>
    <textarea id="editor" rows="4" spellcheck="true"></textarea>
    <div id="actions">
      <button id="back-button" type="button">&#9664; Back <kbd>b</kbd></button>
      <button id="skip-button" type="button">Skip &#9654; <kbd>s</kbd></button>
      <button id="approve-button" type="button">Approve the caption unchanged <kbd>a</kbd></button>
      <button id="save-button" type="button" class="primary">Save the correction <kbd>Ctrl</kbd>+<kbd>Enter</kbd></button>
    </div>
    <div id="conflict" class="conflict" hidden>
      <strong>Conflict:</strong> <span id="conflict-reviewer"></span> saved this poster <span id="conflict-when"></span>:
      <p id="conflict-text" class="box"></p>
      <p>Nothing of yours was saved; your text is still in the box. Choose:</p>
      <button id="take-theirs" type="button">Use their text <kbd>t</kbd> or <kbd>Alt</kbd>+<kbd>T</kbd></button>
      <button id="keep-mine" type="button">Save my text over theirs <kbd>k</kbd> or <kbd>Alt</kbd>+<kbd>K</kbd></button>
    </div>
    <p id="status" role="status"></p>
  </div>
</main>
<p id="empty" hidden>Nothing to review with these filters.</p>
<footer id="keys">
  <strong>Keys</strong> (each has a button too):
  <kbd>e</kbd> edit the correction &middot;
  <kbd>Ctrl</kbd>+<kbd>Enter</kbd> save the text in the box &middot;
  <kbd>a</kbd> approve the caption unchanged &middot;
  <kbd>s</kbd> skip to the next poster (nothing saved) &middot;
  <kbd>b</kbd> back to the previous poster &middot;
  <kbd>Esc</kbd> leave the text box &middot;
  <kbd>r</kbd> reload the queue.
  After a conflict: <kbd>t</kbd> use their text, <kbd>k</kbd> save yours over it
  (with <kbd>Alt</kbd> they work inside the text box too).
  Letter keys act when the text box is not focused.
</footer>
</body>
</html>
"""

FAVICON_SVG = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">
<rect x="5" y="2" width="22" height="28" rx="2" fill="#2b4c7e"/>
<rect x="8" y="5" width="16" height="14" fill="#f2c14e"/>
<rect x="8" y="22" width="16" height="2" fill="#fff"/><rect x="8" y="26" width="10" height="2" fill="#fff"/>
</svg>
"""

PAGE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 1rem; color: #222; }
header { display: flex; gap: 1rem; align-items: baseline; flex-wrap: wrap; }
header h1 { font-size: 1.2rem; }
#progress { margin: .5rem 0; }
#progress table { border-collapse: collapse; display: inline-table; margin-left: 1rem; }
#progress td, #progress th { border: 1px solid #ccc; padding: 0 .4rem; font-size: .85rem; }
.note { font-size: .9rem; color: #444; margin: .3rem 0; }
#remerge.off { color: #8a4b00; }
#remerge code { background: #f4f4f4; padding: 0 .2rem; }
main { display: flex; gap: 1.5rem; align-items: flex-start; }
.poster img { max-width: 320px; max-height: 480px; border: 1px solid #999; }
.texts { flex: 1; max-width: 60rem; }
.box { background: #f4f4f4; padding: .4rem; white-space: pre-wrap; min-height: 1.2rem; }
textarea { width: 100%; font: inherit; box-sizing: border-box; }
#actions { display: flex; gap: .5rem; flex-wrap: wrap; margin: .5rem 0; }
button { font: inherit; padding: .3rem .7rem; border: 1px solid #888; border-radius: 4px; background: #f7f7f7; cursor: pointer; }
button:hover { background: #e8e8e8; }
button:focus-visible, .conflict button:focus { outline: 3px solid #2b6cb0; outline-offset: 1px; }
button.primary { background: #2b4c7e; color: #fff; border-color: #2b4c7e; }
button.primary:hover { background: #1f3a63; }
button kbd { font-size: .75rem; color: #222; }
.badge { font-size: .8rem; font-weight: normal; padding: .1rem .4rem; border-radius: 3px; background: #fff3cd; }
.badge.in_export { background: #d4edda; }
.conflict { border: 2px solid #c00; padding: .5rem; background: #fee; }
.conflict button { margin-right: .5rem; }
#status { font-weight: bold; }
footer { margin: 1rem 0; font-size: .9rem; }
kbd { border: 1px solid #888; border-radius: 3px; padding: 0 .25rem; background: #fafafa; }
"""

PAGE_JS = r"""
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { queue: [], index: 0, item: null, loading: false };
  const EXPORT_STATES = {
    never_reviewed: "",
    waiting_for_remerge: "saved: reaches the export at the next re-merge",
    in_export: "in the export",
  };

  function setText(id, value) { $(id).textContent = value == null ? "" : String(value); }

  // "3 minutes ago (27 Nov 2026, 14:03)" in the reader's time zone.
  function humanTime(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (isNaN(when)) return iso;
    const seconds = Math.round((when.getTime() - Date.now()) / 1000);
    const units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });
    let phrase = Math.abs(seconds) < 45 ? "just now" : null;
    for (const [unit, size] of units) {
      if (phrase == null && Math.abs(seconds) >= size) phrase = relative.format(Math.round(seconds / size), unit);
    }
    if (phrase == null) phrase = relative.format(seconds, "second");
    const absolute = when.toLocaleString("en-GB", { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
    return phrase + " (" + absolute + ")";
  }

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
    const leftOut = p.without_verified_image || 0;
    $("left-out").hidden = leftOut === 0;
    setText("left-out", leftOut + (leftOut === 1 ? " poster" : " posters") +
      " without a verified image left out: they cannot reach the export.");
    const body = $("progress-reviewers").tBodies[0];
    while (body.rows.length) body.deleteRow(0);
    for (const rev of p.reviewers) {
      const row = body.insertRow();
      row.dataset.reviewer = rev.reviewer;
      for (const v of [rev.reviewer, rev.posters, rev.saves]) row.insertCell().textContent = String(v);
    }
  }

  async function loadRemerge() {
    const r = await api("/api/remerge");
    if (r.status !== 200) return;
    const s = r.body;
    const note = $("remerge");
    while (note.firstChild) note.removeChild(note.firstChild);
    const add = (text, tag) => {
      const node = tag ? document.createElement(tag) : document.createTextNode(text);
      if (tag) node.textContent = text;
      note.appendChild(node);
    };
    add("A saved correction reaches posters.csv at the next re-merge. ");
    if (s.sensor_running) {
      note.className = "note on";
      add("The re-merge sensor is on: it last looked at this folder " + humanTime(s.sensor_checked_at) +
        " and starts a re-merge within about a minute of a save.");
    } else {
      note.className = "note off";
      add(s.sensor_checked_at
        ? "The re-merge sensor is off, or no Dagster daemon runs: it last looked at this folder " + humanTime(s.sensor_checked_at) + ". "
        : "The re-merge sensor has not looked at this folder yet (no Dagster daemon runs for it). ");
      add("Start the Dagster UI with ");
      add("mpds ui", "code");
      add(" (the sensor is on by default), or re-merge by hand: ");
      add(s.command, "code");
    }
    note.dataset.sensor = s.sensor_running ? "on" : "off";
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
      ? "last saved by " + (item.correction.reviewer || "(unnamed)") + " " + humanTime(item.correction.created_at)
      : "never reviewed");
    const exportState = EXPORT_STATES[item.export_state] || "";
    $("export-state").hidden = !exportState;
    $("export-state").className = "badge " + (item.export_state || "");
    setText("export-state", exportState);
    $("editor").value = item.editable_text || "";
    if (item.image_url) {
      $("poster").src = item.image_url; $("poster").hidden = false; $("no-poster").hidden = true;
    } else {
      $("poster").removeAttribute("src"); $("poster").hidden = true; $("no-poster").hidden = false;
    }
    $("back-button").disabled = state.index === 0;
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
        await Promise.all([showCurrent(), loadProgress(), loadRemerge()]);
        setText("status", "saved tt" + String(r.body.id).padStart(7, "0"));
      } else if (r.status === 409) {
        // Someone else saved first: show their text; saving again now overwrites knowingly.
        state.item.version = r.body.current_text;
        state.item.conflict_text = r.body.current_text;
        setText("conflict-reviewer", r.body.current_reviewer || "(unnamed)");
        setText("conflict-when", humanTime(r.body.created_at));
        setText("conflict-text", r.body.current_text || "");
        $("conflict").hidden = false;
        setText("status", "not saved: conflict");
        // Out of the text box, so that the choice keys cannot type into it.
        $("take-theirs").focus();
        loadProgress();
      } else {
        setText("status", "not saved: " + (r.body.error || r.status));
      }
    } finally {
      state.loading = false;
    }
  }

  function conflictOpen() { return state.item && !$("conflict").hidden && state.item.conflict_text != null; }

  // Their text is already the saved one: keep it, nothing is written.
  function takeTheirs() {
    if (!conflictOpen()) return;
    $("editor").value = state.item.conflict_text;
    state.item.editable_text = state.item.conflict_text;
    hideConflict();
    setText("status", "kept " + $("conflict-reviewer").textContent + "'s text (already saved): edit it and save, or move on");
  }

  function keepMine() {
    if (!conflictOpen()) return;
    save($("editor").value, false);
  }

  function move(step) {
    const next = state.index + step;
    if (next < 0 || next > state.queue.length) return;
    state.index = next;
    showCurrent();
  }

  const actions = {
    e: () => $("editor").focus(),
    a: () => state.item && save(state.item.editable_text, true),
    s: () => move(1),
    b: () => move(-1),
    r: () => loadQueue(state.item ? state.item.id : null),
    t: takeTheirs,
    k: keepMine,
  };

  function onKey(event) {
    const inEditor = document.activeElement === $("editor");
    const inField = inEditor || ["INPUT", "SELECT"].includes(document.activeElement.tagName);
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault(); save($("editor").value, false); return;
    }
    if (event.key === "Escape") { document.activeElement.blur(); return; }
    // Alt+T / Alt+K decide a conflict from anywhere, the text box included (event.code:
    // on a Mac, Alt+letter types a special character).
    if (event.altKey && !event.ctrlKey && !event.metaKey && conflictOpen()) {
      const choice = { KeyT: takeTheirs, KeyK: keepMine }[event.code];
      if (choice) { event.preventDefault(); choice(); }
      return;
    }
    if (inField || event.ctrlKey || event.metaKey || event.altKey) return;
    const action = actions[event.key];
    if (action) { event.preventDefault(); action(); }
  }

  function onClick(id, handler) {
    $(id).addEventListener("click", (event) => { event.preventDefault(); handler(); });
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
    onClick("save-button", () => save($("editor").value, false));
    onClick("approve-button", actions.a);
    onClick("skip-button", actions.s);
    onClick("back-button", actions.b);
    onClick("reload-button", actions.r);
    onClick("take-theirs", takeTheirs);
    onClick("keep-mine", keepMine);
    document.addEventListener("keydown", onKey);
    await loadFacets();
    await Promise.all([loadQueue(null), loadRemerge()]);
    setInterval(loadRemerge, 30000);
    document.body.dataset.ready = "1";
  }

  start();
})();
"""
