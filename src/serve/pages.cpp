// The pages (pages.hpp): HTML here, the scripts in page_scripts.cpp.
#include "serve/pages.hpp"

#include <fmt/core.h>

namespace recur::serve {

const char* digits_script();
const char* text_script();

namespace {

constexpr const char* kStyle = R"css(
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; margin-bottom: .2em; }
a { color: #1a5fb4; }
table { border-collapse: collapse; }
td, th { padding: .25em .8em; border-bottom: 1px solid #ddd; text-align: left; }
.row { display: flex; gap: 1.5em; flex-wrap: wrap; align-items: flex-start; }
#pad { border: 1px solid #888; background: #000; touch-action: none; cursor: crosshair; width: 280px; height: 280px; }
#framed { border: 1px solid #888; width: 140px; height: 140px; }
.bars { width: 16em; }
.bar { display: flex; align-items: center; gap: .4em; margin: 2px 0; }
.bar span { width: 1.2em; text-align: right; font-variant-numeric: tabular-nums; }
.bar div { height: 12px; background: #1a5fb4; width: 0; }
.bar.best div { background: #c01c28; }
#verdict { font-size: 1.6em; font-weight: bold; min-height: 1.4em; }
#error { color: #c01c28; min-height: 1.2em; }
textarea { width: 100%; height: 9em; font: inherit; }
svg { border: 1px solid #ddd; background: #fafafa; }
.muted { color: #666; }
)css";

constexpr const char* kIcon =
    R"(<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" fill="#1a5fb4"/><path d="M3 12V4h5a2 2 0 0 1 0 4H3m5 0l3 4" stroke="#fff" fill="none" stroke-width="1.6"/></svg>)";

std::string head(const std::string& title) {
  return fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
      "<title>{}</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
      "<link rel=\"icon\" href=\"/static/icon.svg\" type=\"image/svg+xml\"></head><body>",
      title);
}

std::string index_page(const std::vector<PageModel>& models) {
  std::string rows;
  for (const PageModel& m : models) {
    std::string pages;
    if (m.kind == "image_sequence" || m.kind == "whole_image")
      pages = fmt::format("<a href=\"/digits?model={0}\">draw a digit</a>", m.name);
    else if (m.kind == "text")
      pages = fmt::format("<a href=\"/text?model={0}\">type a review</a>", m.name);
    rows += fmt::format(
        "<tr><td><a href=\"/v2/models/{0}\">{0}</a></td><td>{1}</td><td>{2}</td><td>{3}</td>"
        "</tr>",
        m.name, m.kind, m.streamable ? "yes" : "no", pages);
  }
  return head("recur serve") +
         "<h1>recur serve</h1><p class=\"muted\">Models behind the KServe v2 / Triton REST "
         "protocol: <code>POST /v2/models/NAME/infer</code>. Metrics at <a "
         "href=\"/metrics\">/metrics</a>.</p><table><tr><th>model</th><th>reads</th>"
         "<th>streams</th><th>page</th></tr>" +
         rows + "</table></body></html>";
}

std::string digits_page() {
  return head("recur: draw a digit") + R"html(
<h1>Draw a digit</h1>
<p class="muted">Model <b id="model"></b>. Draw with the mouse (or a finger); the picture is framed
as MNIST's digits are, then fed to the network one row at a time through a streaming session:
the bars show what it believes after each row, the chart how each class's probability moved
over the rows.</p>
<div class="row">
  <div><canvas id="pad" width="280" height="280"></canvas><br>
    <button id="clear" type="button">Clear</button>
    <label>pen <input id="pen" type="range" min="6" max="30" value="18"></label></div>
  <div><canvas id="framed" width="140" height="140"></canvas>
    <div id="verdict" data-state="idle"></div><div id="step" class="muted"></div></div>
  <div class="bars" id="bars"></div>
</div>
<svg id="chart" width="560" height="200" viewBox="0 0 560 200"></svg>
<div id="error"></div>
<script src="/static/common.js"></script><script src="/static/digits.js"></script>
</body></html>)html";
}

std::string text_page() {
  return head("recur: type a review") + R"html(
<h1>Type a review</h1>
<p class="muted">Model <b id="model"></b>. The review is classified as you type; the chart shows
the probability that it is positive after each word.</p>
<textarea id="review" placeholder="Type a film review..."></textarea>
<div id="verdict" data-state="idle"></div>
<svg id="chart" width="560" height="200" viewBox="0 0 560 200"></svg>
<div id="error"></div>
<script src="/static/common.js"></script><script src="/static/text.js"></script>
</body></html>)html";
}

constexpr const char* kCommon = R"js('use strict';
// Shared by the pages: the model named in ?model= (else the first that fits), the token from
// #token=..., JSON requests, and a small SVG line chart.
const recur = (() => {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  const headers = (type) => {
    const h = { 'Content-Type': type };
    if (token) h.Authorization = 'Bearer ' + token;
    return h;
  };
  async function post(path, body, type) {
    const r = await fetch(path, { method: 'POST', headers: headers(type), body: body });
    const j = await r.json();
    if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
    return j;
  }
  async function model(kinds) {
    const wanted = new URLSearchParams(location.search).get('model');
    const r = await fetch('/v2/models', { headers: headers('application/json') });
    const names = (await r.json()).models;
    for (const name of wanted ? [wanted] : names) {
      const m = await fetch('/v2/models/' + encodeURIComponent(name), { headers: headers('application/json') });
      if (!m.ok) continue;
      const meta = await m.json();
      if (kinds.includes(meta.parameters.kind)) return meta;
    }
    throw new Error('no model here reads ' + kinds.join(' or '));
  }
  const NS = 'http://www.w3.org/2000/svg';
  function svg(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  // series: arrays of values in [0, 1] over steps 0..n-1; n: the x extent.
  function chart(el, series, n, colors, labels) {
    while (el.firstChild) el.removeChild(el.firstChild);
    const W = 560, H = 200, L = 34, B = 22, T = 8, R = 8;
    svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#999' }, el);
    svg('line', { x1: L, y1: T, x2: L, y2: H - B, stroke: '#999' }, el);
    for (const v of [0, 0.5, 1]) {
      const y = H - B - v * (H - B - T);
      const t = svg('text', { x: 4, y: y + 4, 'font-size': 10, fill: '#666' }, el);
      t.textContent = v.toFixed(1);
    }
    const x = (i) => L + (n <= 1 ? 0 : i * (W - L - R) / (n - 1));
    series.forEach((s, k) => {
      if (!s.length) return;
      const pts = s.map((v, i) => x(i).toFixed(1) + ',' + (H - B - v * (H - B - T)).toFixed(1)).join(' ');
      svg('polyline', { points: pts, fill: 'none', stroke: colors[k], 'stroke-width': 1.6 }, el);
      if (labels) {
        const t = svg('text', { x: x(s.length - 1) + 2, y: H - B - s[s.length - 1] * (H - B - T) + 3, 'font-size': 10, fill: colors[k] }, el);
        t.textContent = labels[k];
      }
    });
  }
  function output(answer, name) { return answer.outputs.find((o) => o.name === name).data; }
  function fail(e) { document.getElementById('error').textContent = String(e.message || e); }
  return { post, model, chart, output, fail };
})();
)js";

}  // namespace

bool is_page_path(const std::string& path) {
  return path == "/" || path == "/digits" || path == "/text" || path.rfind("/static/", 0) == 0;
}

Page find_page(const std::string& path, const std::vector<PageModel>& models) {
  if (path == "/") return {"text/html; charset=utf-8", index_page(models)};
  if (path == "/digits") return {"text/html; charset=utf-8", digits_page()};
  if (path == "/text") return {"text/html; charset=utf-8", text_page()};
  if (path == "/static/style.css") return {"text/css; charset=utf-8", kStyle};
  if (path == "/static/icon.svg") return {"image/svg+xml", kIcon};
  if (path == "/static/common.js") return {"text/javascript; charset=utf-8", kCommon};
  if (path == "/static/digits.js") return {"text/javascript; charset=utf-8", digits_script()};
  if (path == "/static/text.js") return {"text/javascript; charset=utf-8", text_script()};
  return {};
}

}  // namespace recur::serve
