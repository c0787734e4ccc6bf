// Drives Debian's Chromium through playwright-core against a running `recur serve` (see
// test_serve_browser.py): draws MNIST digits on the digit page with mouse strokes and types two
// reviews on the text page; prints one JSON line with what the pages showed.
//   node serve_browser.js PORT DIGITS.json REVIEWS.json OUT_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

async function main() {
  const [port, digitsFile, reviewsFile, out] = process.argv.slice(2);
  const digits = JSON.parse(fs.readFileSync(digitsFile, 'utf8'));
  const reviews = JSON.parse(fs.readFileSync(reviewsFile, 'utf8'));
  const base = `http://127.0.0.1:${port}`;
  const context = await chromium.launchPersistentContext(path.join(out, 'profile'), {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1000, height: 800 },
  });
  const result = { console: [], digits: [], reviews: [] };
  const watch = (page) => {
    page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.console.push(m.type() + ': ' + m.text()); });
    page.on('pageerror', (e) => result.console.push('pageerror: ' + e.message));
  };
  try {
    const page = context.pages()[0] || await context.newPage();
    watch(page);
    await page.goto(base + '/', { timeout: 30000 });
    result.index = await page.$$eval('table tr td:first-child', (tds) => tds.map((t) => t.textContent));
    await page.goto(base + '/digits?model=mnist');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    const box = await page.locator('#pad').boundingBox();
    const S = 10;
    // A person's strokes in two passes, as one draws the core of a digit with a thick pen and
    // then its fainter edges with a thin one (the page's pen slider): one stroke per run of
    // pixels at least as dark as the pass's threshold in each row, drawn as a mouse drag.
    const PASSES = [{ ink: 160, pen: '11' }, { ink: 80, pen: '7' }];
    for (let k = 0; k < digits.length; ++k) {
      const px = digits[k].pixels;
      await page.click('#clear');
      let strokes = 0;
      for (const pass of PASSES) {
        await page.$eval('#pen', (e, v) => { e.value = v; }, pass.pen);
        for (let r = 0; r < 28; ++r) {
          let c = 0;
          while (c < 28) {
            if (px[r * 28 + c] < pass.ink) { ++c; continue; }
            const start = c;
            while (c < 28 && px[r * 28 + c] >= pass.ink) ++c;
            const y = box.y + r * S + S / 2;
            await page.mouse.move(box.x + start * S + S / 2, y);
            await page.mouse.down();
            await page.mouse.move(box.x + (c - 1) * S + S / 2, y, { steps: 2 });
            await page.mouse.up();
            ++strokes;
          }
        }
      }
      await page.waitForFunction((n) => {
        const v = document.getElementById('verdict');
        return v.dataset.state === 'error' || (v.dataset.state === 'done' && v.dataset.strokes === String(n));
      }, strokes, { timeout: 30000 });
      const shown = await page.$eval('#verdict', (v) => ({ state: v.dataset.state, label: v.dataset.label, text: v.textContent }));
      const error = await page.$eval('#error', (e) => e.textContent);
      const lines = await page.$$eval('#chart polyline', (p) => p.length);
      // The row-by-row chart: each class's line has one point per row read.
      const points = await page.$$eval('#chart polyline', (p) => p.map((l) => l.points.length));
      result.digits.push({ index: digits[k].index, truth: digits[k].label, shown: shown.label, state: shown.state, error, lines, points, strokes });
      await page.screenshot({ path: path.join(out, `digit-${String(k).padStart(2, '0')}.png`) });
    }
    await page.goto(base + '/text?model=imdb');
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    for (const [k, review] of reviews.entries()) {
      await page.fill('#review', '');
      await page.click('#review');
      await page.keyboard.type(review.text);
      await page.waitForFunction((n) => {
        const v = document.getElementById('verdict');
        return v.dataset.state === 'error' || (v.dataset.state === 'done' && v.dataset.chars === String(n));
      }, review.text.length, { timeout: 30000 });
      const verdict = await page.$eval('#verdict', (v) => v.dataset.verdict || '');
      const lines = await page.$$eval('#chart polyline', (p) => p.length);
      const error = await page.$eval('#error', (e) => e.textContent);
      result.reviews.push({ want: review.want, verdict, lines, error });
      await page.screenshot({ path: path.join(out, `review-${k}.png`) });
    }
  } finally {
    await context.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((e) => { console.error(e); process.exit(1); });
