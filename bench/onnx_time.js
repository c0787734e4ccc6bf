// ONNX Runtime's side of bench/onnx_compare.py: times an exported model on raw inputs.
//   node onnx_time.js MODEL.onnx INPUTS.json THREADS RUNS [WARMUP]
// INPUTS.json as tests/export/onnx_run.js reads it. Prints {"ms_median": ...} over RUNS runs
// after WARMUP untimed ones (5).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const arrays = {uint8: Uint8Array, float32: Float32Array, int64: BigInt64Array};

async function main() {
  const [modelPath, inputsPath, threads, runs, warmup = '5'] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads),
    interOpNumThreads: 1,
    executionMode: 'sequential',
  });
  const feeds = {};
  for (const spec of JSON.parse(fs.readFileSync(inputsPath, 'utf8'))) {
    const bytes = fs.readFileSync(spec.file);
    const Type = arrays[spec.type];
    const data = new Type(bytes.buffer, bytes.byteOffset, bytes.length / Type.BYTES_PER_ELEMENT);
    feeds[spec.name] = new ort.Tensor(spec.type, data, spec.dims);
  }
  for (let k = 0; k < Number(warmup); ++k) await session.run(feeds);
  const ms = [];
  for (let k = 0; k < Number(runs); ++k) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ms_median: ms[Math.floor(ms.length / 2)]}));
}

main().catch((e) => {
  console.error('onnx_time: ' + e.message);
  process.exit(1);
});
