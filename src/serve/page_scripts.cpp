// The scripts of the digit and text pages (pages.hpp), served from /static/.
namespace recur::serve {

const char* digits_script() {
  return R"js('use strict';
// The digit page: draw, frame (POST /v2/models/NAME/frame), then feed the framed picture one
// step at a time through a streaming session and show the probabilities after each step.
(async () => {
  const COLORS = ['#1a5fb4', '#c01c28', '#26a269', '#e66100', '#613583', '#865e3c', '#e01b24', '#2ec27e', '#000000', '#9141ac'];
  const pad = document.getElementById('pad'), ctx = pad.getContext('2d');
  const framed = document.getElementById('framed'), fctx = framed.getContext('2d');
  const verdict = document.getElementById('verdict'), step = document.getElementById('step');
  const bars = document.getElementById('bars'), chartEl = document.getElementById('chart');
  const pen = document.getElementById('pen');
  let meta;
  try {
    meta = await recur.model(['image_sequence', 'whole_image']);
  } catch (e) { recur.fail(e); return; }
  document.getElementById('model').textContent = meta.name;
  const classes = meta.parameters.classes;
  const view = meta.parameters.view;
  const rows = meta.inputs[0].shape[1], cols = meta.inputs[0].shape[2];
  const streams = meta.parameters.streamable && (view === 'rows' || view === 'cols');
  const barEls = [];
  for (let c = 0; c < classes; ++c) {
    const b = document.createElement('div'); b.className = 'bar';
    const l = document.createElement('span'); l.textContent = String(c);
    const fill = document.createElement('div');
    b.appendChild(l); b.appendChild(fill); bars.appendChild(b); barEls.push(b);
  }
  function clear() {
    ctx.fillStyle = '#000'; ctx.fillRect(0, 0, pad.width, pad.height);
    fctx.fillStyle = '#000'; fctx.fillRect(0, 0, framed.width, framed.height);
    verdict.textContent = ''; step.textContent = '';
    verdict.dataset.state = 'idle';
    document.getElementById('error').textContent = '';
    show([], 0);
  }
  function show(history, n) {
    const last = history.length ? history[history.length - 1] : [];
    let best = 0;
    for (let c = 0; c < classes; ++c) if ((last[c] || 0) > (last[best] || 0)) best = c;
    barEls.forEach((b, c) => {
      b.lastChild.style.width = ((last[c] || 0) * 100).toFixed(1) + '%';
      b.classList.toggle('best', history.length > 0 && c === best);
    });
    const series = [];
    for (let c = 0; c < classes; ++c) series.push(history.map((p) => p[c]));
    recur.chart(chartEl, series, n, COLORS, series.map((_, c) => String(c)));
  }
  function preview(pixels, current) {
    const s = framed.width / cols;
    for (let r = 0; r < rows; ++r)
      for (let c = 0; c < cols; ++c) {
        const v = pixels[r * cols + c];
        fctx.fillStyle = 'rgb(' + v + ',' + v + ',' + v + ')';
        fctx.fillRect(c * s, r * s, s, s);
      }
    if (current >= 0) {
      fctx.strokeStyle = '#e01b24'; fctx.lineWidth = 1;
      if (view === 'cols') fctx.strokeRect(current * s + 0.5, 0.5, s - 1, framed.height - 1);
      else fctx.strokeRect(0.5, current * s + 0.5, framed.width - 1, s - 1);
    }
  }
  let generation = 0, timer = null, strokes = 0;
  async function classify(g) {
    const blob = await new Promise((res) => pad.toBlob(res, 'image/png'));
    const url = '/v2/models/' + encodeURIComponent(meta.name);
    const frame = await recur.post(url + '/frame', blob, 'image/png');
    if (g !== generation) return;
    const px = frame.pixels;
    if (!streams) {
      const a = await recur.post(url + '/infer', JSON.stringify({ inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, rows, cols], data: px }] }), 'application/json');
      if (g !== generation) return;
      preview(px, -1);
      show([recur.output(a, 'probabilities')], 1);
      return recur.output(a, 'labels')[0];
    }
    const steps = view === 'cols' ? cols : rows, width = view === 'cols' ? rows : cols;
    const id = 'digit-' + Math.random().toString(36).slice(2);
    const history = [];
    let label = -1;
    for (let t = 0; t < steps; ++t) {
      const data = [];
      for (let k = 0; k < width; ++k) data.push(view === 'cols' ? px[k * cols + t] : px[t * cols + k]);
      const body = {
        inputs: [{ name: 'input', datatype: 'UINT8', shape: [1, 1, width], data: data }],
        parameters: { sequence_id: id, sequence_start: t === 0, sequence_end: t === steps - 1 || g !== generation },
        outputs: [{ name: 'probabilities' }, { name: 'labels' }],
      };
      const a = await recur.post(url + '/infer', JSON.stringify(body), 'application/json');
      if (g !== generation) return;
      history.push(recur.output(a, 'probabilities'));
      label = recur.output(a, 'labels')[0];
      preview(px, t);
      show(history, steps);
      step.textContent = (view === 'cols' ? 'column ' : 'row ') + (t + 1) + ' of ' + steps + ': ' + label;
    }
    return label;
  }
  function schedule() {
    const g = ++generation, drawn = strokes;
    verdict.dataset.state = 'busy';
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const label = await classify(g);
        if (g !== generation || label === undefined) return;
        verdict.textContent = String(label);
        verdict.dataset.label = String(label);
        verdict.dataset.strokes = String(drawn);
        verdict.dataset.state = 'done';
      } catch (e) {
        if (g === generation) { recur.fail(e); verdict.dataset.state = 'error'; }
      }
    }, 250);
  }
  let last = null;
  const pos = (e) => { const r = pad.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  function line(a, b) {
    ctx.strokeStyle = '#fff'; ctx.lineCap = 'round'; ctx.lineJoin = 'round';
    ctx.lineWidth = Number(pen.value);
    ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
  }
  pad.addEventListener('pointerdown', (e) => {
    last = pos(e); line(last, last); pad.setPointerCapture(e.pointerId);
    ++generation; verdict.dataset.state = 'busy'; clearTimeout(timer);
  });
  pad.addEventListener('pointermove', (e) => { if (!last) return; const p = pos(e); line(last, p); last = p; });
  pad.addEventListener('pointerup', () => { if (!last) return; last = null; ++strokes; schedule(); });
  document.getElementById('clear').addEventListener('click', () => { ++generation; strokes = 0; clearTimeout(timer); clear(); });
  clear();
  document.body.dataset.ready = '1';
})();
)js";
}

const char* text_script() {
  return R"js('use strict';
// The text page: after each pause in typing, every prefix of the review (word by word, up to 80
// points, the last one the whole text) is classified in one request; the chart shows the
// probability of the positive class (class 1) over the words, the verdict the whole text's.
(async () => {
  const area = document.getElementById('review'), verdict = document.getElementById('verdict');
  const chartEl = document.getElementById('chart');
  let meta;
  try {
    meta = await recur.model(['text']);
  } catch (e) { recur.fail(e); return; }
  document.getElementById('model').textContent = meta.name;
  const names = meta.parameters.class_names || [];
  const url = '/v2/models/' + encodeURIComponent(meta.name) + '/infer';
  let generation = 0, timer = null;
  async function classify(g) {
    const text = area.value;
    const words = text.split(/\s+/).filter((w) => w.length > 0);
    if (!words.length) { verdict.textContent = ''; verdict.dataset.state = 'idle'; recur.chart(chartEl, [], 0, []); return; }
    const points = Math.min(words.length, 80), texts = [];
    for (let i = 1; i < points; ++i) texts.push(words.slice(0, Math.round(i * words.length / points)).join(' '));
    texts.push(text);
    const body = { inputs: [{ name: 'input', datatype: 'BYTES', shape: [texts.length], data: texts }], outputs: [{ name: 'probabilities' }, { name: 'labels' }] };
    const a = await recur.post(url, JSON.stringify(body), 'application/json');
    if (g !== generation) return;
    const probs = recur.output(a, 'probabilities'), labels = recur.output(a, 'labels');
    const C = probs.length / texts.length;
    const positive = texts.map((_, i) => probs[i * C + 1]);
    recur.chart(chartEl, [positive], texts.length, ['#26a269'], ['positive']);
    const label = labels[labels.length - 1];
    const name = names[label] || (C === 2 ? (label === 1 ? 'positive' : 'negative') : 'class ' + label);
    verdict.textContent = name + ' (' + (100 * probs[(texts.length - 1) * C + label]).toFixed(1) + '%)';
    verdict.dataset.label = String(label);
    verdict.dataset.verdict = name;
    verdict.dataset.chars = String(text.length);
    verdict.dataset.state = 'done';
  }
  area.addEventListener('input', () => {
    const g = ++generation;
    verdict.dataset.state = 'busy';
    clearTimeout(timer);
    timer = setTimeout(() => classify(g).catch((e) => { if (g === generation) { recur.fail(e); verdict.dataset.state = 'error'; } }), 200);
  });
  document.body.dataset.ready = '1';
})();
)js";
}

}  // namespace recur::serve
