// The ONNX Runtime peer of bench/serve/load.py: the MNIST LSTM exported by torch_server.py
// --onnx, run by onnxruntime-node behind Node's http server, answering POST
// /v2/models/NAME/infer (UINT8 [N, 28, 28]) with the outputs recur serve gives.
//   NODE_PATH=.cache/npm/node_modules node ort_server.js MODEL.onnx PORT
'use strict';
const http = require('http');
const ort = require('onnxruntime-node');

async function main() {
  const [model, port] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      const t = body.inputs[0];
      const x = new Float32Array(t.data.length);
      for (let i = 0; i < x.length; ++i) x[i] = t.data[i] / 255;
      const out = await session.run({ x: new ort.Tensor('float32', x, t.shape) });
      const logits = Array.from(out.logits.data), n = t.shape[0], c = logits.length / n;
      const probs = [], labels = [];
      for (let i = 0; i < n; ++i) {
        const row = logits.slice(i * c, (i + 1) * c), m = Math.max(...row);
        const e = row.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
        probs.push(...e.map((v) => v / s));
        labels.push(row.indexOf(m));
      }
      const answer = JSON.stringify({ model_name: 'mnist', outputs: [
        { name: 'logits', datatype: 'FP32', shape: [n, c], data: logits },
        { name: 'probabilities', datatype: 'FP32', shape: [n, c], data: probs },
        { name: 'labels', datatype: 'INT32', shape: [n], data: labels }] });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(answer);
    });
  });
  server.listen(Number(port), '127.0.0.1', () => console.log('listening', server.address().port));
}

main().catch((e) => { console.error(e); process.exit(1); });
