// recur report: plan, train in child processes, reuse, measure, write (recur/report_runner.hpp).
#include "recur/report_runner.hpp"
#include "report/report_text.hpp"

#include <fmt/core.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/predictor.hpp"
#include "recur/train_options.hpp"

extern char** environ;

namespace recur {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string run_dir(const ReportRunOptions& o, const std::string& name) {
  return o.out_dir + "/runs/" + name;
}

// What every planned model shares: recur train's training methods (augmentation, the weights'
// moving average), its run folder, hold-out (a tenth of the images, at most 5,000), epochs,
// threads, logging and the checkpoint measured.
PlannedModel planned(const std::string& name, const std::string& family, bool layered, int epochs,
                     const ReportRunOptions& o, const ImageSet& set, bool tiny) {
  PlannedModel p;
  p.name = name;
  p.family = family;
  p.layered = layered;
  p.epochs = epochs;
  p.checkpoint = "best.safetensors";
  TrainOptions& t = p.options;
  t = default_train_options();
  t.data_dir = o.data_dir;
  t.epochs = epochs;
  t.validation = std::min<std::int64_t>(5000, set.count / 10);
  t.threads = o.threads;
  t.display_step = tiny ? 5 : 100;
  t.out_dir = run_dir(o, name);
  return p;
}

// The training methods a model's figures depend on, for its fingerprint.
std::string methods_fingerprint(const TrainOptions& t) {
  return fmt::format(" augment_shift={} augment_rotate={} ema={}", t.augment_shift,
                     t.augment_rotate, t.optimizer.ema);
}

// The methods as the report's table describes a recipe.
std::string methods_text(const TrainOptions& t) {
  std::string s;
  if (t.augment_shift > 0 || t.augment_rotate > 0)
    s += fmt::format(", shifts of up to {} px and turns of up to {:g} degrees", t.augment_shift,
                     t.augment_rotate);
  if (t.optimizer.ema > 0) s += fmt::format(", weights averaged ({:g})", t.optimizer.ema);
  return s;
}

PlannedModel recurrent_model(const std::string& name, const std::string& family, CellKind cell,
                             ViewKind view, int layers, bool bidirectional, int epochs,
                             const ReportRunOptions& o, const ImageSet& set, bool tiny) {
  PlannedModel p = planned(name, family, false, epochs, o, set, tiny);
  TrainOptions& t = p.options;
  t.view = view;
  t.view_seed = view == ViewKind::permuted ? 1 : 0;
  t.model.cell = cell;
  t.model.layers = layers;
  t.model.bidirectional = bidirectional;
  t.model.num_classes = set.num_classes;
  t.model.init.recurrent.kind = auto_recurrent_init(cell);  // recur train's --init-recurrent auto
  if (!tiny) {
    // The cell's own recipe, as a bare `recur train --cell` has it (the plain RNN's lr and
    // epochs).
    apply_cell_defaults(t, {});
    p.epochs = t.epochs;
    epochs = t.epochs;
  }
  if (tiny) {
    t.model.hidden = 16;
    t.batch = 32;
  }
  const char* view_name = view == ViewKind::rows       ? "rows"
                          : view == ViewKind::pixels   ? "pixels"
                          : view == ViewKind::permuted ? "permuted pixels"
                                                       : "columns";
  p.description =
      fmt::format("{}{}{}-{} over {}, Adam {:g} cosine, batch {}, {} epochs{}",
                  layers > 1 ? fmt::format("{}-layer ", layers) : "", bidirectional ? "bi" : "",
                  cell == CellKind::lstm  ? "LSTM"
                  : cell == CellKind::gru ? "GRU"
                                          : "tanh RNN",
                  t.model.hidden, view_name, t.optimizer.lr, t.batch, epochs, methods_text(t));
  p.fingerprint = fmt::format(
      "recurrent {} cell={} hidden={} layers={} bidirectional={} view={} seed={} lr={} batch={} "
      "epochs={} validation={} init_recurrent={}{}",
      name, static_cast<int>(cell), t.model.hidden, layers, bidirectional, to_string(view),
      t.view_seed, t.optimizer.lr, t.batch, epochs, t.validation,
      static_cast<int>(t.model.init.recurrent.kind), methods_fingerprint(t));
  return p;
}

PlannedModel image_model(const std::string& name, const std::string& family,
                         std::vector<LayerSpec> layers, const std::string& shape, double lr,
                         int batch, int epochs, const ReportRunOptions& o, const ImageSet& set,
                         bool tiny) {
  PlannedModel p = planned(name, family, true, epochs, o, set, tiny);
  TrainOptions& s = p.options;
  s.layers = std::move(layers);
  s.optimizer.lr = static_cast<float>(lr);
  s.schedule.kind = ScheduleKind::cosine;
  s.schedule.min_lr = static_cast<float>(lr / 100);
  s.batch = batch;
  s.eval_batch = 1000;
  p.description = fmt::format("{}, Adam {:g} cosine, batch {}, {} epochs{}", shape, lr, batch,
                              epochs, methods_text(s));
  p.fingerprint = fmt::format(
      "layers {} model={} lr={} batch={} epochs={} validation={} holdout=first draw=role{}", name,
      layer_list_text(s.layers), lr, batch, epochs, s.validation, methods_fingerprint(s));
  return p;
}

// Everything a run's numbers depend on besides the recipe: the data (its files' sizes and
// shapes) and the thread count (training is deterministic per thread count).
std::string data_fingerprint(const ReportRunOptions& o, const ImageSet& set) {
  return fmt::format(" data={} count={} rows={} cols={} classes={} threads={}",
                     fs::absolute(o.data_dir).lexically_normal().string(), set.count, set.rows,
                     set.cols, set.num_classes, resolve_threads(o.threads));
}

const PlannedModel& find_planned(const std::vector<PlannedModel>& plan, const std::string& name) {
  for (const auto& p : plan)
    if (p.name == name) return p;
  throw Error("--train-one", "no model '" + name + "' in the report's plan");
}

constexpr int kThroughputBatch = kReportThroughputBatch;
using Timing = InferenceTiming;

template <typename InferBatch, typename InferOne>
Timing time_inference(std::int64_t test_count, InferBatch&& infer_batch, InferOne&& infer_one) {
  return time_report_inference(test_count, infer_batch, infer_one);
}

// Measures the trained model of `p` in its run folder on the test set.
ReportModel measure(const ReportRunOptions& o, const PlannedModel& p, const ImageSet& test,
                    std::shared_ptr<const ImageSet> test_ptr) {
  const std::string dir = run_dir(o, p.name);
  const std::string ckpt = dir + "/" + p.checkpoint;
  ReportModel m;
  m.name = p.name;
  m.family = p.family;
  m.description = p.description;
  m.epochs = p.epochs;
  m.checkpoint_bytes = static_cast<std::int64_t>(fs::file_size(ckpt));
  const int threads = resolve_threads(o.threads);
  EvalResult r;
  Timing timing;
  {
    // Every model is built from layers (the recurrent ones through their short form); runs
    // trained before that have fixed-shape checkpoints, which load through their layer form.
    // The test images are read as the checkpoint says (whole, or through its view).
    const Predictor predictor(ckpt);
    m.parameters = static_cast<std::int64_t>(predictor.model().num_params());
    m.int8_bytes = static_cast<std::int64_t>(int8_parameter_bytes(predictor.model()));
    const std::shared_ptr<const SequenceSource> samples = predictor.image_source(test_ptr);
    BatchRunner runner(predictor, threads);
    r = runner.evaluate(*samples, kThroughputBatch);
    BatchRunner single(predictor, 1);
    std::vector<std::int32_t> pred(kThroughputBatch);
    std::vector<std::int64_t> one(1);
    timing = time_inference(
        test.count,
        [&](const std::vector<std::int64_t>& idx) {
          runner.infer(*samples, idx, pred.data(), nullptr);
        },
        [&](std::int64_t i) {
          one[0] = i;
          single.infer(*samples, one, pred.data(), nullptr);
        });
  }
  m.test_accuracy = r.accuracy();
  m.test_count = r.count;
  m.inference_per_second = timing.per_second;
  m.latency_us = timing.latency_us;

  const int C = test.num_classes;
  m.confused = most_confused(confusion_counts(test.labels, r.predictions, C), C, 5);
  for (std::int64_t i : pick_misclassified(test.labels, r.predictions, 10)) {
    MisclassifiedImage img;
    img.width = test.cols;
    img.height = test.rows;
    const std::uint8_t* px = test.image(i);
    img.pixels.assign(px, px + static_cast<std::ptrdiff_t>(test.rows) * test.cols);
    img.truth = test.labels[static_cast<std::size_t>(i)];
    img.predicted = r.predictions[static_cast<std::size_t>(i)];
    m.misclassified.push_back(std::move(img));
  }
  read_training_record(dir, p.epochs, m);
  return m;
}

// Runs `executable report --train-one NAME ...` and returns its peak RSS (bytes, from wait4).
std::int64_t train_in_child(const ReportRunOptions& o, const std::string& name) {
  std::vector<std::string> args = {
      o.executable,  "report",
      "--train-one", name,
      "--data",      o.data_dir,
      "--out",       o.out_dir,
      "--threads",   std::to_string(o.threads),
      "--budget",    o.budget == ReportBudget::tiny ? "tiny" : "default"};
  if (o.long_views) args.push_back("--long");
  return run_training_child(args, name, run_dir(o, name));
}

bool trained(const ReportRunOptions& o, const PlannedModel& p) {
  const std::string dir = run_dir(o, p.name);
  std::error_code ec;
  if (!fs::exists(dir + "/plan.txt", ec) || !fs::exists(dir + "/summary.json", ec) ||
      !fs::exists(dir + "/train.json", ec) || !fs::exists(dir + "/" + p.checkpoint, ec))
    return false;
  return read_file(dir + "/plan.txt") == p.fingerprint;
}

}  // namespace

std::int64_t run_training_child(const std::vector<std::string>& args, const std::string& name,
                                const std::string& dir) {
  std::vector<std::string> a = args;
  std::vector<char*> argv;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, a[0].c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    throw Error(a[0], "cannot start the training process for " + name);
  int status = 0;
  rusage usage{};
  while (wait4(pid, &status, 0, &usage) < 0) {
    if (errno != EINTR) throw Error(a[0], "lost the training process for " + name);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(dir,
                fmt::format("training {} failed ({})", name,
                            WIFEXITED(status) ? fmt::format("exit code {}", WEXITSTATUS(status))
                                              : fmt::format("signal {}", WTERMSIG(status))));
  // The child's own peak, which its summary.json records: wait4's ru_maxrss would carry this
  // process's peak over (Linux keeps the larger of the two at exec), so a model trained after
  // a large one, or by a large report process, would show the parent's memory instead.
  std::error_code ec;
  if (fs::exists(dir + "/summary.json", ec)) {
    const nlohmann::json summary = nlohmann::json::parse(read_file(dir + "/summary.json"));
    if (summary.contains("peak_rss_bytes")) return summary.at("peak_rss_bytes").get<std::int64_t>();
  }
  return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;  // KiB on Linux
}

InferenceTiming time_report_inference(
    std::int64_t test_count, const std::function<void(const std::vector<std::int64_t>&)>& batch,
    const std::function<void(std::int64_t)>& one) {
  InferenceTiming t;
  const int B = static_cast<int>(std::min<std::int64_t>(kReportThroughputBatch, test_count));
  constexpr int kThroughputRuns = 5;
  std::vector<double> times;
  std::int64_t start = 0;
  for (int run = 0; run < 1 + kThroughputRuns; ++run) {
    if (start + B > test_count) start = 0;
    std::vector<std::int64_t> idx(static_cast<std::size_t>(B));
    for (int b = 0; b < B; ++b) idx[static_cast<std::size_t>(b)] = start + b;
    start += B;
    const auto t0 = Clock::now();
    batch(idx);
    if (run > 0) times.push_back(seconds_since(t0));
  }
  t.per_second = B / std::max(1e-12, median(times));
  times.clear();
  for (int run = 0; run < kReportLatencyWarmup + kReportLatencyRuns; ++run) {
    const std::int64_t i = run % test_count;
    const auto t0 = Clock::now();
    one(i);
    if (run >= kReportLatencyWarmup) times.push_back(seconds_since(t0));
  }
  t.latency_us = 1e6 * median(times);
  return t;
}

ReportBudget parse_report_budget(const std::string& name) {
  if (name == "default") return ReportBudget::standard;
  if (name == "tiny") return ReportBudget::tiny;
  throw Error("--budget", "unknown budget '" + name + "' (default, tiny)");
}

std::vector<PlannedModel> report_plan(const ReportRunOptions& o, const ImageSet& set) {
  const bool tiny = o.budget == ReportBudget::tiny;
  const int e = tiny ? 2 : 10;
  std::vector<PlannedModel> plan;
  plan.push_back(
      recurrent_model("rnn", "RNN", CellKind::rnn_tanh, ViewKind::rows, 1, false, e, o, set, tiny));
  plan.push_back(
      recurrent_model("lstm", "LSTM", CellKind::lstm, ViewKind::rows, 1, false, e, o, set, tiny));
  plan.push_back(
      recurrent_model("gru", "GRU", CellKind::gru, ViewKind::rows, 1, false, e, o, set, tiny));
  plan.push_back(recurrent_model("bilstm", "BiLSTM", CellKind::lstm, ViewKind::rows, 1, true, e, o,
                                 set, tiny));
  plan.push_back(recurrent_model("lstm-2layer", "LSTM", CellKind::lstm, ViewKind::rows, 2, false, e,
                                 o, set, tiny));
  const int h1 = tiny ? 32 : 256, h2 = tiny ? 16 : 128;
  plan.push_back(image_model(
      "mlp", "MLP",
      parse_layer_list(fmt::format("flatten, linear {}, relu, linear {}, relu, linear", h1, h2),
                       "mlp"),
      fmt::format("MLP {}-{}-{}-{}, ReLU", set.rows * set.cols, h1, h2, set.num_classes), 1e-3,
      tiny ? 32 : 128, tiny ? 2 : 10, o, set, tiny));
  const int c1 = tiny ? 2 : 6, c2 = tiny ? 4 : 16, f1 = tiny ? 16 : 120, f2 = tiny ? 8 : 84;
  plan.push_back(image_model(
      "cnn", "CNN",
      parse_layer_list(fmt::format("conv2d {} kernel=5 padding=2, relu, maxpool2d 2, conv2d {} "
                                   "kernel=5, relu, maxpool2d 2, flatten, linear {}, relu, "
                                   "linear {}, relu, linear",
                                   c1, c2, f1, f2),
                       "cnn"),
      fmt::format("LeNet-5-style CNN: conv {}@5x5 pad 2, pool, conv {}@5x5, pool, {}-{}-{}", c1, c2,
                  f1, f2, set.num_classes),
      2e-3, 64, tiny ? 2 : 20, o, set, tiny));  // 20 epochs: augmented images need more
  if (o.long_views) {
    const int el = tiny ? 1 : 10;
    plan.push_back(recurrent_model("lstm-pixels", "LSTM", CellKind::lstm, ViewKind::pixels, 1,
                                   false, el, o, set, tiny));
    plan.push_back(recurrent_model("lstm-permuted", "LSTM", CellKind::lstm, ViewKind::permuted, 1,
                                   false, el, o, set, tiny));
  }
  const std::string data = data_fingerprint(o, set);
  for (auto& p : plan) p.fingerprint += data;
  return plan;
}

void train_report_model(const ReportRunOptions& o, const std::string& name, std::ostream& out) {
  if (is_text_report_model(name)) {
    train_text_report_model(o, name, out);
    return;
  }
  auto train_set = std::make_shared<ImageSet>(load_mnist(o.data_dir, true));
  const std::vector<PlannedModel> plan = report_plan(o, *train_set);
  const PlannedModel& p = find_planned(plan, name);
  const std::string dir = run_dir(o, p.name);
  fs::remove_all(dir);
  const auto t0 = Clock::now();
  TrainOptions t = p.options;
  t.images = train_set;  // read once for the plan; the parent measures the test pass
  train(t, out, false);
  const double seconds = seconds_since(t0);
  write_file_atomic(dir + "/train.json", nlohmann::json{{"train_seconds", seconds}}.dump() + "\n");
}

void read_training_record(const std::string& dir, int epochs, ReportModel& m) {
  m.curve = epoch_curve_from_metrics(read_file(dir + "/metrics.jsonl"), dir + "/metrics.jsonl");
  const nlohmann::json train = nlohmann::json::parse(read_file(dir + "/train.json"));
  m.train_seconds_per_epoch = train.at("train_seconds").get<double>() / std::max(1, epochs);
  m.peak_rss_bytes = train.value("peak_rss_bytes", std::int64_t{0});
}

bool reuse_measures(const std::string& dir, const std::string& name, std::ostream& out,
                    Report& report) {
  const std::string measures = dir + "/measures.json";
  std::error_code ec;
  if (!fs::exists(measures, ec)) return false;
  Report one = report_from_json(read_file(measures), measures);
  out << fmt::format("{}: reused {}\n", name, dir);
  report.models.push_back(std::move(one.models.at(0)));
  return true;
}

void keep_measures(const std::string& dir, const std::string& name, ReportModel model,
                   std::ostream& out, Report& report) {
  Report one;
  one.models.push_back(model);
  write_file_atomic(dir + "/measures.json", report_to_json(one));
  out << fmt::format("{}: test accuracy {:.2f}%, {} parameters, {:.0f} samples/s, {:.0f} us\n",
                     name, 100 * model.test_accuracy, model.parameters, model.inference_per_second,
                     model.latency_us);
  report.models.push_back(std::move(model));
}

Report run_report(const ReportRunOptions& o, std::ostream& out) {
  const auto t0 = Clock::now();
  resolve_threads(o.threads);             // a bad --threads fails before anything is written
  if (o.text) check_text_report_data(o);  // so does missing text data
  const ImageSet train_set = load_mnist(o.data_dir, true);
  auto test_ptr = std::make_shared<ImageSet>(load_mnist(o.data_dir, false));
  if (test_ptr->rows != train_set.rows || test_ptr->cols != train_set.cols)
    throw Error(o.data_dir,
                fmt::format("test images are {}x{}, training images {}x{}", test_ptr->rows,
                            test_ptr->cols, train_set.rows, train_set.cols));
  const std::vector<PlannedModel> plan = report_plan(o, train_set);
  fs::create_directories(o.out_dir + "/runs");

  Report report;
  report.title = "recur report: RNNs against an MLP and a CNN";
  report.data = fmt::format(
      "{}: {} training images ({} held out for validation), {} test "
      "images, {}x{}, {} classes",
      o.data_dir, train_set.count, plan.front().options.validation, test_ptr->count, train_set.rows,
      train_set.cols, train_set.num_classes);
  report.machine =
      fmt::format("{} threads, {} CPUs allowed", resolve_threads(o.threads), allowed_cpus());
  for (const PlannedModel& p : plan) {
    const std::string dir = run_dir(o, p.name);
    if (trained(o, p)) {
      if (reuse_measures(dir, p.name, out, report)) continue;
      out << fmt::format("{}: reused the trained model in {}, measuring\n", p.name, dir);
    } else {
      out << fmt::format("{}: training ({})\n", p.name, p.description);
      out.flush();
      const std::int64_t rss = train_in_child(o, p.name);
      nlohmann::json train = nlohmann::json::parse(read_file(dir + "/train.json"));
      train["peak_rss_bytes"] = rss;
      write_file_atomic(dir + "/train.json", train.dump() + "\n");
      write_file_atomic(dir + "/plan.txt", p.fingerprint);
    }
    ReportModel m = measure(o, p, *test_ptr, test_ptr);
    keep_measures(dir, p.name, std::move(m), out, report);
  }
  if (o.text) add_text_report_models(o, report, out);
  write_file_atomic(o.out_dir + "/report.json", report_to_json(report));
  write_report(o.out_dir, report);
  out << fmt::format("wrote {}/report.html and {}/report.md ({} models) in {:.1f} s\n", o.out_dir,
                     o.out_dir, report.models.size(), seconds_since(t0));
  return report;
}

}  // namespace recur
