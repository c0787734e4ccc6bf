// Export to ONNX: any model recur trains, as one ONNX file that ONNX Runtime (and other ONNX
// readers) run with recur's results.
//
//   recur::Predictor p("runs/lstm/best.safetensors");
//   recur::OnnxExport e = recur::export_onnx(p, "lstm.onnx");
//
// The graph takes the model's input as recur's front ends do and does the rest itself:
//   image models      images    uint8 [batch, rows, cols]; the graph scales pixels to [0, 1] and
//                               reads them through the checkpoint's view (rows, cols, pixels,
//                               permuted) or as whole images
//   text models       tokens    int64 [batch, steps] (token ids, padded anywhere past a text's
//                               end) and lengths int64 [batch]; the vocabulary and tokenizer
//                               settings go beside the model as JSON (OnnxExport::tokenizer_path)
//                               and into its metadata
//   .npy models       sequences float [batch, steps, features] and lengths int64 [batch]
// and gives `logits` and `probabilities` float [batch, classes]. Batch and steps are dynamic
// (except for untied weights, which fix the steps). docs/EXPORT.md maps each layer to its
// operators.
#pragma once

#include <string>

#include "recur/predictor.hpp"

namespace recur {

// Deliberate mistakes, for tests that show the comparison with ONNX Runtime catches them.
enum class OnnxFault {
  none,
  pytorch_gate_order,  // LSTM / GRU weights in PyTorch's gate order, not ONNX's
  gru_reset_before,    // GRU with linear_before_reset = 0
};

struct OnnxExportOptions {
  OnnxFault fault = OnnxFault::none;  // tests only
};

struct OnnxExport {
  std::string path;            // the .onnx file
  std::string tokenizer_path;  // text models: the vocabulary and settings (JSON); else ""
  std::string inputs;          // e.g. "images uint8 [batch, 28, 28]"
  std::size_t nodes = 0;       // operators in the graph
  std::size_t bytes = 0;       // size of the .onnx file
};

// Writes the model of `predictor` to `path` (and, for text models, its tokenizer JSON beside it,
// at the path with ".tokenizer.json" in place of ".onnx"), each atomically: a failure leaves no
// partial file. Throws Error(path, reason) for an unwritable path and Error(model path, reason)
// for a layer that has no ONNX form.
OnnxExport export_onnx(const Predictor& predictor, const std::string& path,
                       const OnnxExportOptions& options = {});

// The tokenizer file written beside `onnx_path`.
std::string onnx_tokenizer_path(const std::string& onnx_path);

}  // namespace recur
