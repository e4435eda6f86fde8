"""The ``nzip explain`` page: one self-contained HTML file (no network, no external scripts or fonts).

The report's numbers travel as base64 typed arrays inside the page, and a
small script draws the text (or hex) with every byte coloured by its cost,
the profile strip along the whole file, and the details under the pointer.
Only the first :data:`~nzip.explain.VIEW_LIMIT` bytes are drawn one by one,
so the page stays fast; the strip and the list of costliest regions cover
the whole file.
"""

from __future__ import annotations

import base64
import html
import json

import numpy as np

from .explain import REGION, VIEW_LIMIT, Report, costliest, inputs_summary, profile
from .models import trace_kernel as tk

# Columns sent to the page, in 1/256 bit (int16: -128 .. +128 bits per byte).
_SENT = ("final", "mixer", "network", "match", "saved_network", "saved_match", "saved_contexts")


def _b64(values: np.ndarray, dtype: str) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype=dtype).tobytes()).decode("ascii")


def _q(values: np.ndarray) -> np.ndarray:
    """Bits to int16 units of 1/256 bit; NaN (the model cannot tell) to the sentinel -32768."""
    q = np.clip(np.round(np.nan_to_num(values, nan=-128.0) * 256), -32768, 32767)
    q[np.isnan(values)] = -32768
    return q


def is_text(data: bytes) -> bool:
    """Shown as text when the start decodes as UTF-8 and has few control bytes; else as hex."""
    head = data[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut at the end of the sample is fine
            return False
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 13))
    return controls <= len(head) // 100


def _snippet(data: bytes, start: int, text: bool) -> str:
    piece = data[start : start + REGION]
    if not text:
        return " ".join(f"{b:02x}" for b in piece[:24]) + (" …" if len(piece) > 24 else "")
    return piece.decode("utf-8", "replace").replace("\n", "↵").replace("\t", "→")


def _summary(report: Report, other: Report | None) -> dict:
    n = len(report.data)
    frames = len(report.frames)
    coded_by = sorted({by for _, _, _, by in report.frames})
    stored = sum(1 for _, size, payload, _ in report.frames if payload >= size)
    overhead = 8 * sum(min(payload, size) for _, size, payload, _ in report.frames if payload < size)
    overhead -= sum(
        float(report.costs[a : a + size, tk.FINAL].sum()) for a, size, payload, _ in report.frames if payload < size
    )
    return {
        "name": report.name,
        "size": n,
        "model": report.model.name,
        "description": report.model.description,
        "level": report.level,
        "frames": frames,
        "coded_by": coded_by,
        "stored": stored,
        "payload": report.payload,
        "bits": round(report.total_bits, 1),
        "overhead_bits": round(overhead, 1),
        "other": None
        if other is None
        else {"model": other.model.name, "level": other.level, "payload": other.payload, "bits": other.total_bits},
    }


def render(report: Report, other: Report | None = None) -> str:
    """The page for ``report``; with ``other``, the byte-by-byte comparison of the two."""
    text = is_text(report.data)
    shown = min(len(report.data), VIEW_LIMIT)
    final = report.column("final")
    data = {
        "summary": _summary(report, other),
        "text": text,
        "shown": shown,
        "bytes": _b64(np.frombuffer(report.data[:shown], dtype=np.uint8), "u1"),
        "cols": {c: _b64(_q(report.column(c)[:shown]), "<i2") for c in _SENT},
        "matchBits": _b64(report.column("match_bits")[:shown], "u1"),
        "profile": profile(final),
        "inputs": inputs_summary(report),
    }
    regions = costliest(final)
    if other is not None:
        diff = other.column("final") - final  # > 0: the first model is cheaper here
        data["other"] = _b64(_q(other.column("final")[:shown]), "<i2")
        data["profileOther"] = profile(other.column("final"))
        regions = costliest(diff) + [(s, -b) for s, b in costliest(-diff)]
        data["wins"] = [int((diff > 0).sum()), int((diff < 0).sum())]
    data["regions"] = [
        {"start": s, "bits": round(b, 1), "snippet": _snippet(report.data, s, text), "shown": s < shown}
        for s, b in regions
    ]
    title = f"nzip explain: {report.name}"
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _PAGE.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", payload)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{TITLE}}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em 2em; color: #222; background: #fff; }
h1 { font-size: 1.3em; margin: 0 0 .3em; }
table { border-collapse: collapse; margin: .5em 0 1em; }
td, th { padding: .15em .8em .15em 0; text-align: left; vertical-align: top; }
th { font-weight: 600; border-bottom: 1px solid #ccc; }
#strip { width: 100%; height: 48px; cursor: pointer; border: 1px solid #ccc; display: block; }
#view { font: 13px/1.5 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all;
        border: 1px solid #ddd; padding: .6em; max-height: 70vh; overflow: auto; }
#view span.b { border-radius: 2px; }
#tip { position: fixed; pointer-events: none; background: #222; color: #eee; padding: .4em .6em;
       font: 12px/1.35 ui-monospace, monospace; border-radius: 4px; display: none; white-space: pre; z-index: 9; }
.legend span { display: inline-block; padding: 0 .5em; font: 12px ui-monospace, monospace; }
.note { color: #555; font-size: .92em; }
a { color: #0645ad; }
</style>
</head>
<body>
<h1 id="title"></h1>
<div id="facts"></div>
<h2>Along the file</h2>
<p class="note" id="stripnote"></p>
<canvas id="strip" width="1000" height="48"></canvas>
<h2 id="inputs-title">Inputs</h2>
<div id="inputs"></div>
<h2>Costliest regions</h2>
<div id="regions"></div>
<h2>Every byte</h2>
<div class="legend" id="legend"></div>
<p class="note" id="viewnote"></p>
<div id="view"></div>
<div id="tip"></div>
<script id="report" type="application/json">{{DATA}}</script>
<script>
"use strict";
const R = JSON.parse(document.getElementById("report").textContent);
const S = R.summary;
const raw = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
const i16 = s => { const b = raw(s); return new Int16Array(b.buffer, 0, b.length >> 1); };
const bytes = raw(R.bytes), mbits = raw(R.matchBits);
const col = {}; for (const k in R.cols) col[k] = i16(R.cols[k]);
const other = R.other ? i16(R.other) : null;
const bits = v => v === -32768 ? null : v / 256;
const fmt = v => v === null ? "-" : v.toFixed(2);
const esc = s => s.replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);
const n = S.size, bpb = n ? 8 * S.payload / n : 0;
document.getElementById("title").textContent = (other ? "Comparing " + S.model + " with " + S.other.model
  : "Where the bits go") + ": " + S.name;
let facts = "<table><tr><td>file</td><td>" + esc(S.name) + ", " + n.toLocaleString() + " bytes</td></tr>" +
  "<tr><td>model</td><td>" + esc(S.description) + (S.level ? " (level " + S.level + ")" : "") + "</td></tr>" +
  "<tr><td>frames</td><td>" + S.frames + ", coded by " + esc(S.coded_by.join(", ")) +
  (S.stored ? "; " + S.stored + " stored (modelling did not pay)" : "") + "</td></tr>" +
  "<tr><td>payload</td><td>" + S.payload.toLocaleString() + " bytes, " + bpb.toFixed(3) + " bits per byte</td></tr>" +
  "<tr><td>sum of the costs</td><td>" + (S.bits / 8).toFixed(1) + " bytes; the modelled frames' payloads hold " +
  S.overhead_bits.toFixed(1) + " bits more: the coder ends each frame with one byte of its 32-bit interval " +
  "(24 bits less to 8 bits more than the sum), and a neural frame starts with its lane count (8 bits)</td></tr>";
if (other) facts += "<tr><td>against</td><td>" + esc(S.other.model) + ": " + S.other.payload.toLocaleString() +
  " bytes (" + (n ? 8 * S.other.payload / n : 0).toFixed(3) + " bits per byte); " + S.model + " is cheaper on " +
  R.wins[0].toLocaleString() + " bytes, " + S.other.model + " on " + R.wins[1].toLocaleString() + "</td></tr>";
document.getElementById("facts").innerHTML = facts + "</table>";

// Colours: cost in bits per byte on a light-to-dark scale; differences blue (first cheaper) to red.
const STEPS = [0.125, 0.25, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 8, 12];
const HEAT = ["#f7fbff", "#fff5eb", "#fee6ce", "#fdd0a2", "#fdae6b", "#fd8d3c", "#f16913", "#e6550d",
              "#d94801", "#c23b00", "#a63603", "#7f2704", "#5a1a00"];
const level = b => { let i = 0; while (i < STEPS.length && b > STEPS[i]) i++; return i; };
const heat = b => HEAT[level(b)];
const paint = b => { const i = level(b); return "background:" + HEAT[i] + (i > 8 ? ";color:#fff" : ""); };
const DIV = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"];
const side = d => { const a = Math.abs(d), k = a < 0.05 ? 0 : a < 0.5 ? 1 : a < 2 ? 2 : a < 4 ? 3 : 4;
  return d >= 0 ? 4 - k : 4 + k; };
const split = d => DIV[side(d)];
const tint = d => { const k = side(d); return "background:" + DIV[k] + (k < 2 || k > 6 ? ";color:#fff" : ""); };
// The strip spreads the file's own range of costs over the whole scale.
const RAMP = (lo, hi, v) => { const t = hi > lo ? Math.min(1, Math.max(0, (v - lo) / (hi - lo))) : 0;
  return HEAT[Math.round(t * (HEAT.length - 1))]; };
const legend = document.getElementById("legend");
legend.innerHTML = other
  ? ["<span style='background:" + DIV[0] + ";color:#fff'>" + esc(S.model) + " cheaper by 4+ bits</span>",
     "<span style='background:" + DIV[4] + "'>the same</span>",
     "<span style='background:" + DIV[8] + ";color:#fff'>" + esc(S.other.model) + " cheaper by 4+ bits</span>"].join("")
  : "bits per byte: " + HEAT.map((c, i) => "<span style='background:" + c + (i > 8 ? ";color:#fff" : "") + "'>" +
      (i < STEPS.length ? "&le;" + STEPS[i] : "&gt;" + STEPS[STEPS.length - 1]) + "</span>").join("");

// The strip: mean cost (or difference) per stretch of the file; a click jumps there.
const strip = document.getElementById("strip"), g = strip.getContext("2d");
const prof = R.profile, po = R.profileOther;
const peak = Math.max(1, ...prof, ...(po || []));
const sorted = [...prof].sort((a, b) => a - b);
const lo = sorted[Math.floor(0.02 * (sorted.length - 1))] || 0;
const hi = sorted[Math.floor(0.98 * (sorted.length - 1))] || 1;
for (let i = 0; i < prof.length; i++) {
  const x0 = Math.floor(i * strip.width / prof.length), x1 = Math.floor((i + 1) * strip.width / prof.length);
  g.fillStyle = po ? split(po[i] - prof[i]) : RAMP(lo, hi, prof[i]);
  g.fillRect(x0, 0, Math.max(1, x1 - x0), strip.height);
  if (!po) { g.fillStyle = "rgba(0,0,0,.35)"; const h = strip.height * prof[i] / peak;
    g.fillRect(x0, strip.height - h, Math.max(1, x1 - x0), 2); }
}
document.getElementById("stripnote").textContent = (po ? "Difference in bits per byte" : "Bits per byte") +
  " along the whole file, " + prof.length + " stretches" + (po ? "" : " (colour from " + lo.toFixed(2) + " to " +
  hi.toFixed(2) + " bits per byte, this file's range; the line: height against the peak, " + peak.toFixed(2) +
  ")") + "; click to jump (within the first " + R.shown.toLocaleString() + " bytes).";
strip.addEventListener("click", e => {
  const at = Math.floor(e.offsetX / strip.clientWidth * n);
  jump(Math.min(at, R.shown - 1));
});

let rows = "<table><tr><th>input</th><th>its own prediction</th><th>what the mixer gained from it</th></tr>";
for (const [name, own, saved] of R.inputs)
  rows += "<tr><td>" + name + "</td><td>" + own + "</td><td>" + saved + "</td></tr>";
document.getElementById("inputs-title").textContent = "Inputs of " + S.model;
document.getElementById("inputs").innerHTML = rows + "</table><p class='note'>Gains are leave-one-out estimates: " +
  "the same mixers, with the weights they had at each bit, without that group of inputs (the weights would have " +
  "learned differently without it). The probability maps' gain is what the stages after the mixers took off.</p>";

rows = "<table><tr><th>offset</th><th>" + (other ? "bits saved" : "bits") + " in " + __REGION__ +
  " bytes</th><th>bytes</th></tr>";
for (const r of R.regions) {
  const at = r.shown ? "<a href='#' data-at='" + r.start + "'>" + r.start.toLocaleString() + "</a>"
                     : r.start.toLocaleString();
  const who = other ? (r.bits >= 0 ? esc(S.model) + " by " : esc(S.other.model) + " by ") : "";
  rows += "<tr><td>" + at + "</td><td>" + who + Math.abs(r.bits).toFixed(1) + "</td><td><code>" + esc(r.snippet) +
    "</code></td></tr>";
}
const regionsEl = document.getElementById("regions");
regionsEl.innerHTML = rows + "</table>";
regionsEl.addEventListener("click", e => { const a = e.target.closest("a[data-at]");
  if (a) { e.preventDefault(); jump(+a.dataset.at); } });

// Every byte: a span per character (text) or per byte (hex), coloured by its cost.
const view = document.getElementById("view");
const starts = [];
const cost = i => col.final[i] / 256;
function span(i, len, label) {
  let c = 0, d = 0;
  for (let k = i; k < i + len; k++) { c += cost(k); if (other) d += other[k] / 256 - cost(k); }
  starts.push(i);
  return "<span class='b' id='b" + i + "' data-i='" + i + "' data-n='" + len + "' style='" +
    (other ? tint(d) : paint(c / len)) + "'>" + label + "</span>";
}
const parts = [];
if (R.text) {
  const dec = new TextDecoder("utf-8", {fatal: false});
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    let len = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 1;
    if (i + len > bytes.length) len = 1;
    for (let k = 1; k < len; k++) if ((bytes[i + k] & 0xc0) !== 0x80) { len = 1; break; }
    let label;
    if (b === 10) label = "↵\\n";
    else if (b === 9) label = "→\\t";
    else if (b === 13) label = "·";
    else if (b < 32 || b === 127) label = "·";
    else label = esc(len === 1 && b >= 0x80 ? "\\ufffd" : dec.decode(bytes.subarray(i, i + len)));
    parts.push(span(i, len, label));
    i += len;
  }
} else {
  for (let i = 0; i < bytes.length; i++) {
    if (i % 32 === 0)
      parts.push((i ? "\\n" : "") + "<span class='note'>" + i.toString(16).padStart(8, "0") + "  </span>");
    parts.push(span(i, 1, bytes[i].toString(16).padStart(2, "0")) + " ");
  }
}
view.innerHTML = parts.join("");
document.getElementById("viewnote").textContent = (R.shown < n ? "The first " + R.shown.toLocaleString() +
  " of " + n.toLocaleString() + " bytes" : "All " + n.toLocaleString() + " bytes") +
  (R.text ? ", as text" : ", in hex") + "; point at a " + (R.text ? "character" : "byte") +
  " for its cost and what each input predicted.";
view.dataset.bytes = String(R.shown);
view.dataset.spans = String(starts.length);

function jump(at) {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (starts[mid] <= at) lo = mid; else hi = mid - 1; }
  const el = document.getElementById("b" + starts[lo]);
  if (el) { el.scrollIntoView({block: "center"}); el.style.outline = "2px solid #000";
    setTimeout(() => el.style.outline = "", 1500); }
}

const tip = document.getElementById("tip");
view.addEventListener("mousemove", e => {
  const el = e.target.closest("span.b");
  if (!el) { tip.style.display = "none"; return; }
  const i = +el.dataset.i, len = +el.dataset.n;
  const lines = [];
  for (let k = i; k < i + len; k++) {
    const b = bytes[k], ch = b >= 32 && b < 127 ? " '" + String.fromCharCode(b) + "'" : "";
    const f = cost(k), p = Math.pow(2, -f);
    lines.push("byte " + k.toLocaleString() + ": 0x" + b.toString(16).padStart(2, "0") + ch);
    lines.push("  cost " + f.toFixed(2) + " bits (p = " + (p < 0.001 ? p.toExponential(1) : p.toFixed(3)) + ")" +
      (other ? ", " + S.other.model + " " + (other[k] / 256).toFixed(2) : ""));
    lines.push("  mixer before maps " + fmt(bits(col.mixer[k])));
    if (bits(col.network[k]) !== null) lines.push("  network alone " + fmt(bits(col.network[k])) +
      ", it saved " + fmt(bits(col.saved_network[k])));
    lines.push("  match " + (mbits[k] ? fmt(bits(col.match[k])) + " over " + mbits[k] + " of 8 bits" : "none") +
      ", it saved " + fmt(bits(col.saved_match[k])));
    lines.push("  contexts saved " + fmt(bits(col.saved_contexts[k])));
  }
  tip.textContent = lines.join("\\n");
  tip.style.display = "block";
  tip.style.left = Math.min(e.clientX + 14, innerWidth - tip.offsetWidth - 8) + "px";
  tip.style.top = Math.min(e.clientY + 14, innerHeight - tip.offsetHeight - 8) + "px";
});
view.addEventListener("mouseleave", () => tip.style.display = "none");
</script>
</body>
</html>
""".replace("__REGION__", str(REGION))
