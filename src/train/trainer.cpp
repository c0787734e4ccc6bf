#include <fmt/format.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <sstream>
#include <type_traits>

#include "core/json_util.hpp"
#include "dist/comm.hpp"
#include "dist/data_parallel.hpp"
#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/plot.hpp"
#include "recur/safetensors.hpp"
#include "recur/sha256.hpp"
#include "recur/train.hpp"
#include "train/resume_file.hpp"
#include "train/run_dir.hpp"

namespace recur {

namespace {

std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
}

// The schedule's own values, checked before the step count is known (check_schedule_config
// checks them again with it). Each is checked whichever schedule is chosen, so a bad value is
// refused even while it has no effect.
void check_schedule_options(const ScheduleConfig& s) {
  RECUR_CHECK(s.warmup_steps >= 0, "--warmup",
              fmt::format("must be 0 or more, got {}", s.warmup_steps));
  RECUR_CHECK(s.step_size > 0, "--step-size",
              fmt::format("must be a positive number of steps, got {}", s.step_size));
  RECUR_CHECK(s.gamma > 0 && std::isfinite(s.gamma), "--gamma",
              fmt::format("must be a positive number, got {}", s.gamma));
  RECUR_CHECK(s.min_lr >= 0 && std::isfinite(s.min_lr), "--min-lr",
              fmt::format("must be a non-negative number, got {}", s.min_lr));
}

ImageSet load_training_set(const std::string& dir) {
  try {
    return load_mnist(dir, true);
  } catch (const Error& e) {
    throw Error("--data", e.what());
  }
}

// Refuses a batch whose training buffers would not fit in this machine's memory (an upper
// estimate: saved activations and their gradients for every step, the input batch, and the
// parameters with their gradients, optimizer state and per-thread gradient copies).
void check_memory(const ModelConfig& mc, int batch, int threads) {
  const double G = mc.cell == CellKind::lstm ? 4 : mc.cell == CellKind::gru ? 3 : 1;
  const double H = mc.hidden, D = mc.directions();
  const double width = std::max(mc.input_size, mc.projection);
  const double per_sample_step = mc.layers * D * (3 * G * H + 4 * H) + 2 * width;
  const double bytes = 4.0 * (static_cast<double>(batch) * mc.steps * per_sample_step +
                              static_cast<double>(mc.parameter_count()) * (4 + threads));
  const double memory = static_cast<double>(::sysconf(_SC_PHYS_PAGES)) * ::sysconf(_SC_PAGE_SIZE);
  if (memory > 0 && bytes > 0.8 * memory)
    throw Error("--batch",
                fmt::format("training batches of {} with this model (--hidden {}, "
                            "--layers {}, {} steps) would need about {:.1f} GB, more "
                            "than this machine's {:.1f} GB; use a smaller --batch or "
                            "model",
                            batch, mc.hidden, mc.layers, mc.steps, bytes / 1e9, memory / 1e9));
}

}  // namespace

std::string describe_training_data(const std::string& dir) {
  nlohmann::json files = nlohmann::json::object();
  bool mnist = true;
  for (const char* kind : {"images", "labels"}) {
    const std::filesystem::path path = find_mnist_file(dir, true, kind);
    const std::string sha = sha256_file_hex(path.string());
    files[path.filename().string()] = sha;
    bool known = false;
    for (const MnistFile& f : kMnistFiles) known = known || sha == f.sha256;
    mnist = mnist && known;
  }
  return nlohmann::json{{"name", mnist ? "mnist" : "idx"}, {"files", files}}.dump();
}

namespace {

// Images given in memory (the Python module): the SHA-256 of their pixels and labels.
std::string describe_arrays(const ImageSet& set) {
  return nlohmann::json{
      {"name", "arrays"},
      {"files",
       {{"pixels", sha256_hex(set.pixels.data(), set.pixels.size())},
        {"labels", sha256_hex(set.labels.data(), set.labels.size() * sizeof(std::int32_t))}}}}
      .dump();
}

// Where a run stands: enough to continue it exactly.
struct Position {
  std::int64_t step = 0, epoch = 0, cursor = 0, samples = 0, skipped = 0;
  double best = -1, train_seconds = 0, val_accuracy = 0, val_loss = 0;
};

void save_resume(const std::string& path, const Network<float>& net, Optimizer& opt,
                 const Position& pos, const Metadata& meta) {
  Metadata m = meta;
  m["recur.model"] = to_json(net.config());
  write_resume_file(path, net.layout(), net.params().data(), opt,
                    {{"step", pos.step},
                     {"epoch", pos.epoch},
                     {"cursor", pos.cursor},
                     {"samples", pos.samples},
                     {"skipped", pos.skipped},
                     {"best", pos.best},
                     {"train_seconds", pos.train_seconds},
                     {"val_accuracy", pos.val_accuracy},
                     {"val_loss", pos.val_loss}},
                    m);
}

Position load_resume(const std::string& path, Network<float>& net, Optimizer& opt) {
  const SafetensorsFile file = open_resume_file(path);
  auto model = file.metadata.find("recur.model");
  if (model == file.metadata.end()) throw Error(path, "not a recur resume checkpoint");
  if (model->second != to_json(net.config()))
    throw Error(path, "the checkpoint's model differs from the run's config.toml");
  const nlohmann::json j = read_resume_state(path, file, net.layout(), net.params().data(), opt);
  Position pos;
  try {
    pos.step = json_integer<std::int64_t>(j, "step", path);
    pos.epoch = json_integer<std::int64_t>(j, "epoch", path);
    pos.cursor = json_integer<std::int64_t>(j, "cursor", path);
    pos.samples = json_integer<std::int64_t>(j, "samples", path);
    pos.skipped = json_integer<std::int64_t>(j, "skipped", path);
    pos.best = json_number(j, "best", path);
    pos.train_seconds = json_number(j, "train_seconds", path);
    pos.val_accuracy = json_number(j, "val_accuracy", path);
    pos.val_loss = json_number(j, "val_loss", path);
  } catch (const nlohmann::json::exception&) {
    throw Error(path, "the run position in the metadata is unreadable");
  }
  return pos;
}

// Rank 0 of a data-parallel run read the checkpoint; the other ranks take it from there (they
// need no access to the run folder).
void share_resume(Network<float>& net, Optimizer& opt, Position& pos) {
  static_assert(std::is_trivially_copyable_v<Position>);
  share_resume_state(net.params().data(), net.num_params(), opt, &pos, sizeof(pos));
}

// What every rank of a data-parallel run must agree on: the model, the data it trains and
// validates on, and the schedule of steps (FNV-1a).
std::uint64_t run_fingerprint(const ModelConfig& model, const ImageSet& set, const Split& split,
                              const TrainOptions& opt, std::int64_t total_steps) {
  std::uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* data, std::size_t bytes) {
    for (std::size_t i = 0; i < bytes; ++i) {
      h ^= static_cast<const unsigned char*>(data)[i];
      h *= 1099511628211ull;
    }
  };
  const std::string json = to_json(model);
  mix(json.data(), json.size());
  for (const auto* part : {&split.train, &split.validation})
    for (std::int64_t i : *part) mix(&set.labels[i], sizeof(set.labels[i]));
  for (std::int64_t v :
       {static_cast<std::int64_t>(opt.batch), total_steps, static_cast<std::int64_t>(opt.seed)})
    mix(&v, sizeof(v));
  mix(&opt.optimizer.lr, sizeof(opt.optimizer.lr));
  return h;
}

bool all_finite(const std::vector<float>& v) {
  float acc = 0;
  for (float x : v) acc += x * 0.0f;  // NaN or inf anywhere makes the sum NaN
  return acc == 0.0f;
}

}  // namespace

std::string without_local_paths(const std::string& config) {
  std::istringstream in(config);
  std::string line, kept;
  while (std::getline(in, line)) {
    const std::string key = line.substr(0, line.find('='));
    if (key == "data" || key == "out") continue;
    kept += line + "\n";
  }
  return kept;
}

void install_stop_signals() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int stop_signal_received() {
  return g_stop_signal.load();
}

TrainSummary train(const TrainOptions& opt, std::ostream& out, bool interactive) {
  // Everything that can be wrong with the input is checked before the run directory is touched
  // and before any thread starts or any buffer is sized from an option.
  const int threads = resolve_threads(opt.threads);
  RECUR_CHECK(opt.batch > 0, "--batch", "must be a positive integer");
  RECUR_CHECK(opt.epochs > 0 || opt.steps > 0, "--epochs", "give a positive --epochs or --steps");
  RECUR_CHECK(opt.epochs >= 0, "--epochs", "must not be negative");
  RECUR_CHECK(opt.steps >= 0, "--steps", "must not be negative");
  RECUR_CHECK(opt.display_step > 0, "--display-step", "must be a positive integer");
  RECUR_CHECK(opt.eval_batch > 0 && opt.eval_batch <= kMaxEvalBatch, "--eval-batch",
              fmt::format("must be between 1 and {}, got {}", kMaxEvalBatch, opt.eval_batch));
  RECUR_CHECK(opt.checkpoint_every >= 0, "--checkpoint-every", "must not be negative");
  RECUR_CHECK(opt.clip_norm >= 0, "--clip-norm", "must not be negative");
  RECUR_CHECK(opt.clip_value >= 0, "--clip-value", "must not be negative");
  RECUR_CHECK(opt.train_limit >= 0, "--train-limit", "must not be negative");
  check_optimizer_config(opt.optimizer);
  check_schedule_options(opt.schedule);
  std::optional<ImageSet> loaded;
  if (opt.images)
    check_image_set(*opt.images);
  else
    loaded = load_training_set(opt.data_dir);
  const ImageSet& train_set = opt.images ? *opt.images : *loaded;
  const SequenceView view =
      SequenceView::make(opt.view, train_set.rows, train_set.cols, opt.view_seed);
  ModelConfig mc = opt.model;
  mc.input_size = view.features();
  mc.steps = view.steps();
  mc.num_classes = train_set.num_classes;
  mc.validate();
  Split split = split_train_validation(train_set.count, opt.validation);
  if (opt.train_limit > 0 && static_cast<std::int64_t>(split.train.size()) > opt.train_limit)
    split.train.resize(opt.train_limit);
  RECUR_CHECK(opt.batch <= static_cast<std::int64_t>(split.train.size()), "--batch",
              fmt::format("{} is more than the {} training images (at most {})", opt.batch,
                          split.train.size(), split.train.size()));
  check_memory(mc, opt.batch, threads);
  Network<float> net(mc);
  Batcher batcher(split.train, opt.batch, opt.seed);
  Optimizer optimizer(opt.optimizer, net.num_params());
  const std::int64_t per_epoch = batcher.batches_per_epoch();
  std::int64_t total_steps = opt.epochs > 0 ? per_epoch * opt.epochs : opt.steps;
  if (opt.steps > 0) total_steps = std::min(total_steps, opt.steps);
  ScheduleConfig schedule = opt.schedule;
  if (schedule.total_steps <= 0) schedule.total_steps = total_steps;
  check_schedule_config(schedule);
  const std::string resume_path = opt.out_dir + "/resume.safetensors";

  BatchRunner runner(net, threads);
  // Under mpirun: every rank's threads, and a check that all ranks run the same thing, before
  // rank 0 touches the run folder.
  dist::DataParallel parallel(
      runner, net.num_params(),
      dist::size() > 1 ? run_fingerprint(mc, train_set, split, opt, total_steps) : 0);

  Position pos;
  net.init(opt.seed);
  // In a data-parallel run (mpirun) rank 0 alone touches the run folder.
  const bool writer = dist::rank() == 0;
  MetricsLog log(opt.out_dir, writer);
  if (opt.resume) {
    if (writer) {
      pos = load_resume(resume_path, net, optimizer);
      if (std::filesystem::exists(opt.out_dir + "/summary.json"))
        throw Error("--resume", opt.out_dir + " is a finished run; nothing to resume");
      log.restore(pos.step);
      // A run killed inside a checkpoint write leaves that write's temporary file behind.
      remove_stale_temporaries(opt.out_dir);
    }
    share_resume(net, optimizer, pos);
  } else if (writer) {
    prepare_run_dir(opt.out_dir);
    write_file_atomic(opt.out_dir + "/config.toml", opt.config_text);
  }
  // What a shared checkpoint says of its training: the options and the data's checksums, never
  // the trainer's own folders (--data, --out).
  const Metadata meta = {{"recur.view", to_string(opt.view)},
                         {"recur.view_seed", std::to_string(opt.view_seed)},
                         {"recur.image_rows", std::to_string(train_set.rows)},
                         {"recur.image_cols", std::to_string(train_set.cols)},
                         {"recur.train_config", without_local_paths(opt.config_text)},
                         {"recur.train_data", opt.images ? describe_arrays(*opt.images)
                                                         : describe_training_data(opt.data_dir)}};

  out << fmt::format("recur train: {} {}x{} on {} view ({} steps x {} features), {} parameters\n",
                     to_string(mc.cell), mc.hidden, mc.layers, to_string(opt.view), mc.steps,
                     mc.input_size, net.num_params());
  out << fmt::format(
      "data: {} training, {} validation images from {}; batch {}, {} steps, {} threads\n",
      split.train.size(), split.validation.size(), opt.images ? train_set.source : opt.data_dir,
      opt.batch, total_steps, runner.threads());
  if (parallel.distributed())
    out << fmt::format("data-parallel: {} ranks, {} threads in all; rank 0 writes the run folder\n",
                       parallel.ranks(), parallel.total_threads());
  if (opt.resume)
    out << fmt::format("resuming {} at step {} (epoch {})\n", opt.out_dir, pos.step, pos.epoch + 1);
  out.flush();

  std::vector<float> grads(net.num_params());
  std::vector<std::int64_t> batch;
  const auto t0 = Clock::now();
  double window_loss = 0, window_correct = 0, window_count = 0;
  auto window_start = Clock::now();
  std::int64_t window_samples = 0;
  auto last_bar = Clock::now();
  const std::string title =
      fmt::format("{} {} on MNIST {}", to_string(mc.cell), mc.hidden, to_string(opt.view));

  auto checkpoint = [&]() {
    if (writer) save_resume(resume_path, net, optimizer, pos, meta);
  };
  auto report = [&](const TrainEvent& e) { return !opt.on_event || opt.on_event(e); };
  auto end_of_epoch = [&]() {
    if (!split.validation.empty()) {
      const EvalResult r = parallel.evaluate(train_set, view, split.validation, opt.eval_batch);
      pos.val_accuracy = r.accuracy();
      pos.val_loss = r.loss;
      log.log({{"kind", "validation"},
               {"step", pos.step},
               {"epoch", pos.epoch},
               {"loss", r.loss},
               {"accuracy", r.accuracy()}});
      if (!report({TrainEvent::Kind::validation, pos.step, total_steps, pos.epoch, r.loss,
                   r.accuracy()}))
        total_steps = pos.step;
      if (interactive) out << "\r\033[K";
      out << fmt::format("epoch {:>3}  step {:>6}  validation loss {:.4f}  accuracy {:.2f}%\n",
                         pos.epoch + 1, pos.step, r.loss, 100.0 * r.accuracy());
      out.flush();
    }
    Metadata m = meta;
    m["recur.step"] = std::to_string(pos.step);
    m["recur.epoch"] = std::to_string(pos.epoch + 1);
    m["recur.val_accuracy"] = fmt::format("{:.6f}", pos.val_accuracy);
    m["recur.val_loss"] = fmt::format("{:.6f}", pos.val_loss);
    if (writer) save_model(opt.out_dir + "/last.safetensors", net, m);
    if (split.validation.empty() || pos.val_accuracy > pos.best) {
      pos.best = pos.val_accuracy;
      if (writer) save_model(opt.out_dir + "/best.safetensors", net, m);
    }
    log.write_curves(title);
  };

  while (pos.step < total_steps) {
    batcher.seek(pos.epoch, pos.cursor);
    while (pos.step < total_steps && batcher.next(batch)) {
      const auto ts = Clock::now();
      const int B = static_cast<int>(batch.size());
      const auto step = parallel.train_batch(
          train_set, view, batch.data(), B, grads.data(),
          opt.seed * 1000003ull + static_cast<std::uint64_t>(pos.step), g_stop_signal.load());
      const BatchRunner::Stats& stats = step.stats;
      const double loss = stats.loss_sum / B;
      const bool finite = std::isfinite(loss) && all_finite(grads);
      if (!finite && !opt.skip_nonfinite)
        throw Error("training",
                    fmt::format("the {} became non-finite at step {} (loss {}); the last good "
                                "checkpoint is kept in {} (--skip-nonfinite skips such steps)",
                                std::isfinite(loss) ? "gradient" : "loss", pos.step + 1, loss,
                                opt.out_dir));
      const float lr = learning_rate_at(schedule, opt.optimizer.lr, pos.step);
      if (finite) {
        if (opt.clip_value > 0)
          clip_grad_value(grads.data(), grads.size(), static_cast<float>(opt.clip_value));
        if (opt.clip_norm > 0)
          clip_grad_norm(grads.data(), grads.size(), static_cast<float>(opt.clip_norm));
        optimizer.step(net.params().data(), grads.data(), lr);
        window_loss += stats.loss_sum;
        window_correct += stats.correct;
        window_count += B;
      } else {
        ++pos.skipped;
      }
      pos.train_seconds += seconds_since(ts);
      ++pos.step;
      pos.samples += B;
      pos.cursor = batcher.cursor();
      window_samples += B;
      if (!report({TrainEvent::Kind::step, pos.step, total_steps, pos.epoch, loss,
                   static_cast<double>(stats.correct) / B, lr}))
        total_steps = pos.step;
      if (pos.step % opt.display_step == 0 || pos.step == total_steps) {
        const double sps = window_samples / std::max(1e-9, seconds_since(window_start));
        const double wl = window_loss / std::max(1.0, window_count),
                     wa = window_correct / std::max(1.0, window_count);
        log.log({{"kind", "train"},
                 {"step", pos.step},
                 {"epoch", pos.epoch},
                 {"loss", wl},
                 {"accuracy", wa},
                 {"lr", lr},
                 {"samples_per_s", sps}});
        if (!report(
                {TrainEvent::Kind::train_log, pos.step, total_steps, pos.epoch, wl, wa, lr, sps}))
          total_steps = pos.step;
        if (interactive) out << "\r\033[K";
        out << fmt::format(
            "step {:>6}/{}  epoch {:>3}  loss {:.4f}  accuracy {:6.2f}%  {:>7.0f} samples/s  lr "
            "{:.3g}\n",
            pos.step, total_steps, pos.epoch + 1, wl, 100.0 * wa, sps, lr);
        out.flush();
        window_loss = window_correct = window_count = 0;
        window_samples = 0;
        window_start = Clock::now();
      } else if (interactive && seconds_since(last_bar) > 0.2) {
        const double sps = window_samples / std::max(1e-9, seconds_since(window_start));
        out << "\r\033[K"
            << fmt::format("{} step {}/{}  loss {:.4f}  accuracy {:.1f}%  {:.0f} samples/s",
                           progress_bar(static_cast<double>(pos.step) / total_steps, 30), pos.step,
                           total_steps, window_loss / std::max(1.0, window_count),
                           100.0 * window_correct / std::max(1.0, window_count), sps);
        out.flush();
        last_bar = Clock::now();
      }
      const bool epoch_done = pos.cursor >= batcher.size() || pos.step == total_steps;
      if (epoch_done) {
        end_of_epoch();
        if (pos.cursor >= batcher.size()) {
          ++pos.epoch;
          pos.cursor = 0;
        }
        checkpoint();
      } else if (opt.checkpoint_every > 0 && pos.step % opt.checkpoint_every == 0) {
        checkpoint();
      }
      // Every rank of a data-parallel run stops at the same step: the one whose exchange first
      // carried a rank's signal.
      if (const int sig = parallel.distributed() ? step.stop_signal : g_stop_signal.load();
          sig != 0) {
        if (!epoch_done) checkpoint();
        if (interactive) out << "\r\033[K";
        out.flush();
        throw StopRequested{
            sig, fmt::format("stopped by {} at step {}; checkpoint written. Resume with: recur "
                             "train --resume {}",
                             sig == SIGINT ? "SIGINT" : "SIGTERM", pos.step, opt.out_dir)};
      }
    }
    if (pos.cursor >= batcher.size()) {  // an epoch that ended exactly without a step left
      ++pos.epoch;
      pos.cursor = 0;
    }
  }

  TrainSummary summary;
  summary.val_accuracy = pos.val_accuracy;
  summary.val_loss = pos.val_loss;
  summary.best_val_accuracy = pos.best;
  summary.steps = pos.step;
  summary.samples = pos.samples;
  summary.skipped_steps = pos.skipped;
  summary.wall_seconds = seconds_since(t0);
  summary.samples_per_second = pos.samples / std::max(1e-9, pos.train_seconds);
  nlohmann::json s = {{"val_accuracy", summary.val_accuracy},
                      {"val_loss", summary.val_loss},
                      {"best_val_accuracy", pos.best},
                      {"steps", pos.step},
                      {"samples", pos.samples},
                      {"skipped_steps", pos.skipped},
                      {"wall_seconds", summary.wall_seconds},
                      {"train_samples_per_second", summary.samples_per_second},
                      {"threads", runner.threads()}};
  if (parallel.distributed()) s["ranks"] = parallel.ranks();
  if (writer) write_file_atomic(opt.out_dir + "/summary.json", s.dump(2) + "\n");
  out << fmt::format(
      "done: validation accuracy {:.2f}% (best {:.2f}%), {} steps, wall time {:.1f} s, {:.0f} "
      "training samples/s{}\n",
      100.0 * summary.val_accuracy, 100.0 * std::max(0.0, pos.best), pos.step, summary.wall_seconds,
      summary.samples_per_second,
      pos.skipped ? fmt::format(", {} non-finite steps skipped", pos.skipped) : std::string());
  return summary;
}

}  // namespace recur
