// Runs an ONNX model in ONNX Runtime (the npm package onnxruntime-node) on raw input files and
// writes its logits: the other side of tests/export/test_onnx_export.py's comparison.
//   node onnx_run.js MODEL.onnx INPUTS.json OUT.bin [THREADS]
// INPUTS.json: [{"name": "images", "type": "uint8", "dims": [N, 28, 28], "file": "x.bin"}, ...]
// OUT.bin: float32 logits, as the model's `logits` output gives them.
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

const arrays = {
  uint8: Uint8Array,
  float32: Float32Array,
  int64: BigInt64Array,
};

async function main() {
  const [modelPath, inputsPath, outPath, threads] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: Number(threads || 1),
    interOpNumThreads: 1,
  });
  const feeds = {};
  for (const spec of JSON.parse(fs.readFileSync(inputsPath, 'utf8'))) {
    const bytes = fs.readFileSync(spec.file);
    const Type = arrays[spec.type];
    const data = new Type(bytes.buffer, bytes.byteOffset, bytes.length / Type.BYTES_PER_ELEMENT);
    feeds[spec.name] = new ort.Tensor(spec.type, data, spec.dims);
  }
  const out = await session.run(feeds);
  const logits = out.logits.data;
  fs.writeFileSync(outPath, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
}

main().catch((e) => {
  console.error('onnx_run: ' + e.message);
  process.exit(1);
});
