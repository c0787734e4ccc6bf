// What `recur report` runs: a fixed set of models trained on the same IDX image data with stated
// budgets, each trained in its own child process (so its peak RSS is its own, read by the parent
// from wait4), then measured the same way (test accuracy on the whole test set, parameters,
// checkpoint bytes, training seconds per epoch, inference samples/s at batch 1000, batch-1
// latency, most confused pairs, curves, misclassified digits) and written with recur/report.hpp.
//
// Every model lives in OUT/runs/NAME. A folder whose plan.txt equals the planned model's
// fingerprint (model, recipe, budget, data) and that holds summary.json and the checkpoint is
// reused: its measures.json is read back, or the checkpoint measured again when that is missing.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "recur/data.hpp"
#include "recur/fit.hpp"
#include "recur/report.hpp"
#include "recur/train.hpp"

namespace recur {

enum class ReportBudget { standard, tiny };  // tiny: for tests (few epochs, small models)
// Throws Error("--budget", ...) for anything but "default" or "tiny".
ReportBudget parse_report_budget(const std::string& name);

struct ReportRunOptions {
  std::string data_dir = "data/mnist";
  std::string out_dir = "runs/report";
  bool long_views = false;  // adds the pixel-by-pixel and permuted-pixel LSTMs
  int threads = 0;          // 0 = every core this process may run on
  ReportBudget budget = ReportBudget::standard;
  std::string executable;  // the recur binary the children run (`report --train-one NAME ...`)
  // --text: the IMDb pair (a BiLSTM against a 1-D CNN over embeddings) from text_data
  // (src/report/report_text.cpp), measured after the image models.
  bool text = false;
  std::string text_data = "data/imdb";
};

// One model of the report and how it is trained: with train(), as `recur train` would, the
// recurrent models in the short form over an image view, the MLP and CNN as layer lists.
struct PlannedModel {
  std::string name, family, description;
  bool layered = false;  // a layer list reading whole images
  TrainOptions options;
  int epochs = 0;
  std::string checkpoint;   // file name in the run folder that is measured
  std::string fingerprint;  // what must match for a trained run to be reused
};

// The models in report order. train_set gives the image size, class count and training size the
// recipes are fitted to (a validation hold-out of at most a tenth of the training images).
std::vector<PlannedModel> report_plan(const ReportRunOptions& options, const ImageSet& train_set);

// The child's part: trains the planned model `name` (an image model, or with `text` one of the
// IMDb pair) into OUT/runs/NAME (after emptying it) and writes train.json there (training
// seconds). Throws Error("--train-one", ...) for an unknown name.
void train_report_model(const ReportRunOptions& options, const std::string& name,
                        std::ostream& out);

// Runs `args` (args[0] the executable) as a child process and waits for it; returns its peak RSS
// in bytes (ru_maxrss from wait4). Throws Error(dir, "training NAME failed (...)") when it does not
// exit with 0, Error(args[0], ...) when it cannot start.
std::int64_t run_training_child(const std::vector<std::string>& args, const std::string& name,
                                const std::string& dir);

// Inference samples/s at batch 1000 (the median of 5 timed calls of `batch` on consecutive
// indices from 0, after one untimed) and batch-1 latency in microseconds (the median of 300 calls
// of `one` on indices 0, 1, ..., after 10 untimed), as every model of the report is timed.
struct InferenceTiming {
  double per_second = 0, latency_us = 0;
};
inline constexpr int kReportThroughputBatch = 1000, kReportLatencyRuns = 300,
                     kReportLatencyWarmup = 10;
InferenceTiming time_report_inference(
    std::int64_t test_count, const std::function<void(const std::vector<std::int64_t>&)>& batch,
    const std::function<void(std::int64_t)>& one);

// What a model's run folder `dir` records of its training: the epoch curve (metrics.jsonl), the
// training time per epoch of `epochs` and the peak RSS (train.json), into `m`.
void read_training_record(const std::string& dir, int epochs, ReportModel& m);

// A model measured by an earlier run of the report: when `dir` holds measures.json, adds its model
// to `report`, says so on `out` and returns true; else returns false.
bool reuse_measures(const std::string& dir, const std::string& name, std::ostream& out,
                    Report& report);
// A model just measured: written to `dir`/measures.json (what reuse_measures reads back), its
// line printed on `out`, and added to `report`.
void keep_measures(const std::string& dir, const std::string& name, ReportModel model,
                   std::ostream& out, Report& report);

// The whole report: trains (in child processes) or reuses each model, measures it, writes
// OUT/report.json, OUT/report.html and OUT/report.md. With options.text, the text data is checked
// before anything is trained or written. Returns the report.
Report run_report(const ReportRunOptions& options, std::ostream& out);

}  // namespace recur
