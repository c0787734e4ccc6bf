#include <chrono>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <ostream>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/plot.hpp"
#include "recur/train.hpp"

namespace recur {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// metrics.jsonl and curves.png, rewritten atomically at every log point.
class MetricsLog {
 public:
  explicit MetricsLog(std::string dir) : dir_(std::move(dir)) {}

  void train_point(std::int64_t step, std::int64_t epoch, double loss, double acc, double sps, double lr) {
    nlohmann::json j = {{"kind", "train"}, {"step", step},   {"epoch", epoch},     {"loss", loss},
                        {"accuracy", acc},  {"lr", lr},       {"samples_per_s", sps}};
    lines_ += j.dump() + "\n";
    curves_.train_step.push_back(static_cast<double>(step));
    curves_.train_loss.push_back(loss);
    curves_.train_acc.push_back(100.0 * acc);
    write_file_atomic(dir_ + "/metrics.jsonl", lines_);
  }

  void validation_point(std::int64_t step, std::int64_t epoch, double loss, double acc) {
    nlohmann::json j = {{"kind", "validation"}, {"step", step}, {"epoch", epoch}, {"loss", loss}, {"accuracy", acc}};
    lines_ += j.dump() + "\n";
    curves_.val_step.push_back(static_cast<double>(step));
    curves_.val_loss.push_back(loss);
    curves_.val_acc.push_back(100.0 * acc);
    write_file_atomic(dir_ + "/metrics.jsonl", lines_);
  }

  void write_curves(const std::string& title) { write_training_curves(dir_ + "/curves.png", curves_, title); }

 private:
  std::string dir_;
  std::string lines_;
  TrainingCurves curves_;
};

std::string progress_bar(double fraction, int width) {
  const int filled = static_cast<int>(fraction * width + 0.5);
  std::string s = "[";
  for (int k = 0; k < width; ++k) s += k < filled ? '#' : '.';
  return s + "]";
}

void prepare_run_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) throw Error("--out", dir + " exists and is not a folder");
    if (!fs::is_empty(dir, ec))
      throw Error("--out", dir + " exists and is not empty; choose another folder or remove it");
  }
  fs::create_directories(dir, ec);
  if (ec) throw Error("--out", "cannot create " + dir + ": " + ec.message());
}

}  // namespace

TrainSummary train(const TrainOptions& opt, std::ostream& out, bool interactive) {
  // Everything that can be wrong with the input is checked before the run directory exists.
  RECUR_CHECK(opt.batch > 0, "--batch", "must be a positive integer");
  RECUR_CHECK(opt.epochs > 0 || opt.steps > 0, "--epochs", "give a positive --epochs or --steps");
  RECUR_CHECK(opt.steps >= 0, "--steps", "must not be negative");
  RECUR_CHECK(opt.display_step > 0, "--display-step", "must be a positive integer");
  RECUR_CHECK(opt.eval_batch > 0, "--eval-batch", "must be a positive integer");
  RECUR_CHECK(opt.clip_norm >= 0, "--clip-norm", "must not be negative");
  RECUR_CHECK(opt.clip_value >= 0, "--clip-value", "must not be negative");
  const ImageSet train_set = load_mnist(opt.data_dir, true);
  const SequenceView view = SequenceView::make(opt.view, train_set.rows, train_set.cols, opt.view_seed);
  ModelConfig mc = opt.model;
  mc.input_size = view.features();
  mc.steps = view.steps();
  mc.num_classes = train_set.num_classes;
  Network<float> net(mc);
  Split split = split_train_validation(train_set.count, opt.validation);
  if (opt.train_limit > 0 && static_cast<std::int64_t>(split.train.size()) > opt.train_limit)
    split.train.resize(opt.train_limit);
  Batcher batcher(split.train, opt.batch, opt.seed);
  Optimizer optimizer(opt.optimizer, net.num_params());
  const std::int64_t per_epoch = batcher.batches_per_epoch();
  std::int64_t total_steps = opt.epochs > 0 ? per_epoch * opt.epochs : opt.steps;
  if (opt.steps > 0) total_steps = std::min(total_steps, opt.steps);
  ScheduleConfig schedule = opt.schedule;
  if (schedule.total_steps <= 0) schedule.total_steps = total_steps;

  prepare_run_dir(opt.out_dir);
  write_file_atomic(opt.out_dir + "/config.toml", opt.config_text);
  net.init(opt.seed);
  BatchRunner runner(net, opt.threads);
  MetricsLog log(opt.out_dir);
  Metadata meta = {{"recur.view", to_string(opt.view)},
                   {"recur.view_seed", std::to_string(opt.view_seed)},
                   {"recur.image_rows", std::to_string(train_set.rows)},
                   {"recur.image_cols", std::to_string(train_set.cols)},
                   {"recur.train_config", opt.config_text}};

  out << fmt::format("recur train: {} {}x{} on {} view ({} steps x {} features), {} parameters\n",
                     to_string(mc.cell), mc.hidden, mc.layers, to_string(opt.view), mc.steps,
                     mc.input_size, net.num_params());
  out << fmt::format("data: {} training, {} validation images from {}; batch {}, {} steps, {} threads\n",
                     split.train.size(), split.validation.size(), opt.data_dir, opt.batch, total_steps,
                     runner.threads());
  out.flush();

  std::vector<float> grads(net.num_params());
  std::vector<std::int64_t> batch;
  TrainSummary summary;
  const auto t0 = Clock::now();
  double train_seconds = 0;
  std::int64_t step = 0, samples = 0;
  double window_loss = 0, window_correct = 0, window_count = 0;
  auto window_start = Clock::now();
  std::int64_t window_samples = 0;
  auto last_bar = Clock::now();
  double best = -1;
  const std::string title = fmt::format("{} {} on MNIST {}", to_string(mc.cell), mc.hidden, to_string(opt.view));

  auto validate_and_save = [&](std::int64_t epoch) {
    if (!split.validation.empty()) {
      const EvalResult r = evaluate(runner, train_set, view, split.validation, opt.eval_batch);
      summary.val_accuracy = r.accuracy();
      summary.val_loss = r.loss;
      log.validation_point(step, epoch, r.loss, r.accuracy());
      if (interactive) out << "\r\033[K";
      out << fmt::format("epoch {:>3}  step {:>6}  validation loss {:.4f}  accuracy {:.2f}%\n", epoch + 1,
                         step, r.loss, 100.0 * r.accuracy());
      out.flush();
    }
    Metadata m = meta;
    m["recur.step"] = std::to_string(step);
    m["recur.epoch"] = std::to_string(epoch + 1);
    m["recur.val_accuracy"] = fmt::format("{:.6f}", summary.val_accuracy);
    m["recur.val_loss"] = fmt::format("{:.6f}", summary.val_loss);
    save_model(opt.out_dir + "/last.safetensors", net, m);
    save_optimizer(opt.out_dir + "/last.optim.safetensors", optimizer, {{"recur.step", std::to_string(step)}});
    if (split.validation.empty() || summary.val_accuracy > best) {
      best = summary.val_accuracy;
      save_model(opt.out_dir + "/best.safetensors", net, m);
    }
    log.write_curves(title);
  };

  for (std::int64_t epoch = 0; step < total_steps; ++epoch) {
    batcher.start_epoch(epoch);
    while (step < total_steps && batcher.next(batch)) {
      const auto ts = Clock::now();
      const int B = static_cast<int>(batch.size());
      const auto stats = runner.train_batch(train_set, view, batch.data(), B, grads.data(),
                                            opt.seed * 1000003ull + static_cast<std::uint64_t>(step));
      const double loss = stats.loss_sum / B;
      if (!std::isfinite(loss))
        throw Error("training", fmt::format("the loss became {} at step {}; the last good checkpoint is {}/last.safetensors",
                                            loss, step + 1, opt.out_dir));
      if (opt.clip_value > 0) clip_grad_value(grads.data(), grads.size(), static_cast<float>(opt.clip_value));
      if (opt.clip_norm > 0) clip_grad_norm(grads.data(), grads.size(), static_cast<float>(opt.clip_norm));
      const float lr = learning_rate_at(schedule, opt.optimizer.lr, step);
      optimizer.step(net.params().data(), grads.data(), lr);
      train_seconds += seconds_since(ts);
      ++step;
      samples += B;
      window_samples += B;
      window_loss += stats.loss_sum;
      window_correct += stats.correct;
      window_count += B;
      if (step % opt.display_step == 0 || step == total_steps) {
        const double sps = window_samples / std::max(1e-9, seconds_since(window_start));
        const double wl = window_loss / window_count, wa = window_correct / window_count;
        log.train_point(step, epoch, wl, wa, sps, lr);
        if (interactive) out << "\r\033[K";
        out << fmt::format("step {:>6}/{}  epoch {:>3}  loss {:.4f}  accuracy {:6.2f}%  {:>7.0f} samples/s  lr {:.3g}\n",
                           step, total_steps, epoch + 1, wl, 100.0 * wa, sps, lr);
        out.flush();
        window_loss = window_correct = window_count = 0;
        window_samples = 0;
        window_start = Clock::now();
      } else if (interactive && seconds_since(last_bar) > 0.2) {
        const double sps = window_samples / std::max(1e-9, seconds_since(window_start));
        out << "\r\033[K"
            << fmt::format("{} step {}/{}  loss {:.4f}  accuracy {:.1f}%  {:.0f} samples/s",
                           progress_bar(static_cast<double>(step) / total_steps, 30), step, total_steps,
                           window_loss / std::max(1.0, window_count),
                           100.0 * window_correct / std::max(1.0, window_count), sps);
        out.flush();
        last_bar = Clock::now();
      }
    }
    // An epoch ends at the end of the data or at the last step.
    validate_and_save(epoch);
  }

  summary.steps = step;
  summary.samples = samples;
  summary.wall_seconds = seconds_since(t0);
  summary.samples_per_second = samples / std::max(1e-9, train_seconds);
  summary.best_val_accuracy = best;
  nlohmann::json s = {{"val_accuracy", summary.val_accuracy},   {"val_loss", summary.val_loss},
                      {"best_val_accuracy", best},               {"steps", step},
                      {"samples", samples},                      {"wall_seconds", summary.wall_seconds},
                      {"train_samples_per_second", summary.samples_per_second},
                      {"threads", runner.threads()}};
  write_file_atomic(opt.out_dir + "/summary.json", s.dump(2) + "\n");
  out << fmt::format("done: validation accuracy {:.2f}% (best {:.2f}%), {} steps, wall time {:.1f} s, {:.0f} training samples/s\n",
                     100.0 * summary.val_accuracy, 100.0 * std::max(0.0, best), step, summary.wall_seconds,
                     summary.samples_per_second);
  return summary;
}

}  // namespace recur
