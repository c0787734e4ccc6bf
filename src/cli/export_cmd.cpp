// recur export MODEL --onnx OUT.onnx: the model as an ONNX graph (recur/export.hpp) that ONNX
// Runtime runs with recur's logits; text models also get OUT.tokenizer.json.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "recur/error.hpp"
#include "recur/export.hpp"
#include "recur/predictor.hpp"

namespace recur::cli {

namespace {

struct ExportOptions {
  std::string model;
  std::string onnx;
  std::string fault;  // tests only: a deliberately wrong export
};

OnnxFault parse_fault(const std::string& name) {
  if (name.empty()) return OnnxFault::none;
  if (name == "pytorch-gate-order") return OnnxFault::pytorch_gate_order;
  if (name == "gru-reset-before") return OnnxFault::gru_reset_before;
  throw Error("--test-fault",
              "unknown fault '" + name + "' (pytorch-gate-order, gru-reset-before)");
}

int run_export(const ExportOptions& o) {
  OnnxExportOptions options;
  options.fault = parse_fault(o.fault);
  const Predictor predictor(o.model);
  const OnnxExport r = export_onnx(predictor, o.onnx, options);
  fmt::print(
      "wrote {} ({} bytes, {} operators)\n  inputs: {}\n  outputs: logits, probabilities "
      "float [batch, {}]\n",
      r.path, r.bytes, r.nodes, r.inputs, predictor.num_classes());
  if (!r.tokenizer_path.empty())
    fmt::print("wrote {} (vocabulary and tokenizer settings)\n", r.tokenizer_path);
  return 0;
}

}  // namespace

void add_export_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Export a checkpoint to ONNX");
  cmd->add_option("model", o->model, "Checkpoint (.safetensors)")->required();
  cmd->add_option("--onnx", o->onnx, "The ONNX file to write")->required();
  cmd->add_option("--test-fault", o->fault)->group("");  // hidden: tests only
  cmd->callback([o, &run] { run = [o] { return run_export(*o); }; });
}

}  // namespace recur::cli
