// The comparison report of `recur report`: models trained on the same data, measured the same
// way, written as a self-contained report.html (inline CSS and SVG charts, PNG digits as data:
// URLs, no scripts, nothing fetched) and a report.md with the same table. Writing only: the
// measures come from the caller (training, evaluation, timing happen elsewhere).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace recur {

// A class pair the model mixes up: `count` test samples of class `truth` predicted `predicted`.
struct ConfusedPair {
  int truth = 0, predicted = 0;
  std::int64_t count = 0;
};

// One epoch of training: the mean training loss over the epoch (NaN when none was logged) and
// the accuracy (fraction in [0, 1]) on the held-out set measured at its end.
struct EpochRecord {
  int epoch = 0;
  double train_loss = 0;
  double accuracy = 0;
};

// A test image the model got wrong: 8-bit gray, row-major, white ink on black (as MNIST).
struct MisclassifiedImage {
  int width = 28, height = 28;
  std::vector<std::uint8_t> pixels;
  int truth = 0, predicted = 0;
};

// A test text the model got wrong: an excerpt, and the probability it gave its wrong answer.
struct MisclassifiedText {
  std::string excerpt;
  int truth = 0, predicted = 0;
  double confidence = 0;  // in [0, 1]
};

// One model's measures. A measure that is 0 (or, for peak RSS, checkpoint bytes and the timings,
// not positive) was not measured: the table shows "-" and the conclusion leaves it out.
struct ReportModel {
  std::string name;         // unique in the report, e.g. "lstm"
  std::string family;       // "RNN", "LSTM", "GRU", "BiLSTM", "MLP", "CNN", ...
  std::string description;  // e.g. "LSTM-128 over rows, 10 epochs"
  // Models are compared within their group: "" is the report's main data set (the images);
  // another name (e.g. "IMDb") gets its own table, charts and conclusion lines.
  std::string group;
  std::vector<std::string> class_names;  // for confused pairs and mistakes (else the numbers)
  double test_accuracy = 0;              // fraction of the test set, in [0, 1]
  std::int64_t test_count = 0;           // test samples
  std::int64_t parameters = 0;
  std::int64_t checkpoint_bytes = 0;
  std::int64_t int8_bytes = 0;  // weights with --precision int8 (int8_parameter_bytes)
  int epochs = 0;
  double train_seconds_per_epoch = 0;
  double inference_per_second = 0;     // samples/s at batch 1000
  double latency_us = 0;               // one sample (batch 1), microseconds
  std::int64_t peak_rss_bytes = 0;     // of the process that trained it
  std::vector<ConfusedPair> confused;  // most confused first
  std::vector<EpochRecord> curve;      // one per epoch, in order
  std::vector<MisclassifiedImage> misclassified;
  std::vector<MisclassifiedText> mistakes;  // text models: the most confident mistakes
};

struct Report {
  std::string title = "recur report";
  std::string data;     // what the models were trained and tested on
  std::string machine;  // where they were measured
  std::vector<ReportModel> models;
};

// The k x k confusion matrix of predictions against labels (paired by index): row = true class,
// column = predicted class. Throws recur::Error("confusion", ...) when the two differ in length
// or a class is outside [0, k).
std::vector<std::int64_t> confusion_counts(const std::vector<std::int32_t>& labels,
                                           const std::vector<std::int32_t>& predictions, int k);

// The off-diagonal cells of a k x k confusion matrix (row = true class, column = predicted),
// largest first (equal counts: by true, then predicted class), zeros left out, at most `top`.
// Throws recur::Error("confusion", ...) when the size is not k*k or a count is negative.
std::vector<ConfusedPair> most_confused(const std::vector<std::int64_t>& confusion, int classes,
                                        std::size_t top);

// Indices of up to `count` misclassified samples, taken in turn from each true class (the first
// mistake of class 0, of class 1, ..., then the second of each), so a gallery shows many kinds
// of mistake; in index order within a class. labels and predictions pair up by index.
std::vector<std::int64_t> pick_misclassified(const std::vector<std::int32_t>& labels,
                                             const std::vector<std::int32_t>& predictions,
                                             std::size_t count);

// One record per epoch from a run's metrics.jsonl text (the lines recur train writes): the
// epoch's held-out accuracy from its "validation" line, and the mean of the losses of the
// "train" lines logged during that epoch. Epochs without a validation line are left out;
// other kinds of line are ignored. Throws recur::Error(source, ...) naming the line for a line
// that is not JSON or lacks a field.
std::vector<EpochRecord> epoch_curve_from_metrics(const std::string& jsonl,
                                                  const std::string& source);

// Checks what the writers rely on: at least one model, names non-empty and unique, accuracies
// in [0, 1], no negative or non-finite measure, images whose pixels match their size (at most
// 256x256), classes not negative. Throws recur::Error(subject, reason) naming the model.
void validate_report(const Report& report, const std::string& subject);

// The conclusion, derived from the numbers alone: one sentence per line, for each measured axis
// (accuracy, size, training time, inference throughput, latency, memory) the winner and by how
// much it leads the runner-up, then recurrent against non-recurrent models (families RNN, LSTM,
// GRU and their bidirectional/stacked variants against the rest) and the best trade-off. Each
// group of models (ReportModel::group) is compared within itself, the main group first; the
// lines of a named group start with its name ("IMDb: Accuracy: ...").
std::string report_conclusion(const std::vector<ReportModel>& models);

// The page and the Markdown, as text (validate_report first; throws recur::Error).
std::string report_html(const Report& report);
std::string report_markdown(const Report& report);

// Writes DIR/report.html and DIR/report.md, each atomically (DIR is created when missing).
// Errors name the file.
void write_report(const std::string& dir, const Report& report);

// The report as JSON and back (what `recur report` keeps in its run folder and what
// `recur report --from-json` reads). report_from_json validates; errors name `source`.
std::string report_to_json(const Report& report);
Report report_from_json(const std::string& text, const std::string& source);

}  // namespace recur
