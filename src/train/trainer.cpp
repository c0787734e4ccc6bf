#include <fmt/format.h>
#include <unistd.h>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <limits>
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
#include "recur/fit.hpp"
#include "recur/fs.hpp"
#include "recur/plot.hpp"
#include "recur/safetensors.hpp"
#include "recur/sha256.hpp"
#include "recur/sources.hpp"
#include "recur/train.hpp"
#include "recur/train_options.hpp"
#include "train/resume_file.hpp"
#include "train/run_dir.hpp"
#include "train/train_parts.hpp"

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

// The test images beside the training files, when the folder holds them.
std::shared_ptr<const ImageSet> load_test_set(const std::string& dir, const ImageSet& train_set) {
  try {
    for (const char* kind : {"images", "labels"}) find_mnist_file(dir, false, kind);
  } catch (const Error&) {
    return nullptr;  // a folder of training files only: no test pass
  }
  auto test = std::make_shared<ImageSet>(load_mnist(dir, false));
  RECUR_CHECK(test->rows == train_set.rows && test->cols == train_set.cols, test->source,
              fmt::format("test images are {}x{}, training images {}x{}", test->rows, test->cols,
                          train_set.rows, train_set.cols));
  return test;
}

}  // namespace

std::string without_local_paths(const std::string& config) {
  std::istringstream in(config);
  std::string line, kept;
  while (std::getline(in, line)) {
    const std::string key = line.substr(0, line.find('='));
    if (key == "data" || key == "out" || key == "init-from") continue;
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

namespace {

// --model replaces the short form of the model: refuses a short-form option set away from its
// default, naming it; and the projection's init flags, which only the short form's --projection
// takes.
void check_short_form_unused(const TrainOptions& o) {
  const TrainOptions d;
  const ModelConfig &m = o.model, &dm = d.model;
  const std::pair<const char*, bool> changed[] = {
      {"--cell", m.cell != dm.cell},
      {"--hidden", m.hidden != dm.hidden},
      {"--layers", m.layers != dm.layers},
      {"--bidirectional", m.bidirectional != dm.bidirectional},
      {"--projection", m.projection != dm.projection},
      {"--pooling", m.pooling != dm.pooling},
      {"--dropout", m.dropout != dm.dropout},
      {"--recurrent-dropout", m.recurrent_dropout != dm.recurrent_dropout},
      {"--untied", m.untied != dm.untied},
      {"--embed", o.embed != d.embed},
      {"--embed-dropout", o.embed_dropout != d.embed_dropout},
      {"--word-dropout", o.word_dropout != d.word_dropout},
      {"--head-dropout", o.head_dropout != d.head_dropout}};
  for (const auto& [name, differs] : changed)
    if (differs)
      throw Error("--model", std::string("the layer list replaces ") + name +
                                 "; describe that in the list instead (docs/LAYERS.md)");
  const WeightInit &p = m.init.projection, &dp = dm.init.projection;
  const std::pair<const char*, bool> projection[] = {
      {"--projection-init", p.kind != dp.kind},
      {"--projection-bias-init", p.bias != dp.bias},
      {"--projection-bias-value", p.bias_value != dp.bias_value}};
  for (const auto& [name, differs] : projection)
    if (differs)
      throw Error("--model", std::string(name) +
                                 " applies to the short form's --projection only; a layer list "
                                 "initialises its linear layers as PyTorch does");
}

// The model options as training reads them: --init-recurrent auto resolved from the cell, and
// a layer list given the init flags once it is final and before anything copies it.
TrainOptions resolve_model_options(const TrainOptions& given) {
  TrainOptions o = given;
  if (!o.layers.empty()) {
    check_short_form_unused(o);
    apply_init_flags(InitFlags{o.model.init, o.recurrent_init_auto, !o.model.bias}, o.layers);
  }
  if (o.recurrent_init_auto) o.model.init.recurrent.kind = auto_recurrent_init(o.model.cell);
  return o;
}

TrainSummary train_images(const TrainOptions& opt, const std::string& config, std::ostream& out,
                          bool interactive);

}  // namespace

TrainSummary train(const TrainOptions& options, std::ostream& out, bool interactive) {
  // The resolved config keeps the options as given ("auto", the list without the init flags).
  const std::string config = train_config_toml(options);
  check_text_options(options);
  const TrainOptions o = resolve_model_options(options);
  if (!o.images && is_sequence_data(o.data_dir))
    return train_sequence_data(o, config, out, interactive);
  return train_images(o, config, out, interactive);
}

namespace {

TrainSummary train_images(const TrainOptions& opt, const std::string& config, std::ostream& out,
                          bool interactive) {
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
  check_training_methods(opt.label_smoothing, opt.patience, opt.validation);
  RECUR_CHECK(opt.word_dropout == 0, "--word-dropout",
              "drops tokens of texts; these are images (--augment-shift, --augment-rotate "
              "vary them instead)");
  RECUR_CHECK(opt.train_limit >= 0, "--train-limit", "must not be negative");
  check_optimizer_config(opt.optimizer);
  check_schedule_options(opt.schedule);
  std::shared_ptr<const ImageSet> train_set = opt.images;
  if (train_set)
    check_image_set(*train_set);
  else
    train_set = std::make_shared<ImageSet>(load_training_set(opt.data_dir));
  RECUR_CHECK(opt.validation >= 0 && opt.validation < train_set->count, "--val",
              fmt::format("validation size {} must be at least 0 and less than the {} training "
                          "images",
                          opt.validation, train_set->count));
  const std::int64_t trainable =
      std::min(train_set->count - opt.validation,
               opt.train_limit > 0 ? opt.train_limit : std::numeric_limits<std::int64_t>::max());
  RECUR_CHECK(opt.batch <= trainable, "--batch",
              fmt::format("{} is more than the {} training images (at most {})", opt.batch,
                          trainable, trainable));
  const std::shared_ptr<const ImageSet> test_set =
      opt.images || !opt.test ? nullptr : load_test_set(opt.data_dir, *train_set);
  const int classes = std::max(train_set->num_classes, test_set ? test_set->num_classes : 0);

  // The model: the layer list, or the short form's fixed chain (model_spec_from_config).
  FitPlan so;
  std::shared_ptr<const SequenceSource> train, test;
  std::string shape;
  const bool listed = !opt.layers.empty();
  // Images keep MNIST's conventions whatever describes the model, so a short form and the layer
  // list that spells it out (with its names) train the same weights: the first --val images held
  // out, one seeded shuffle per epoch cut in order, --train-limit images after the hold-out.
  const Augment augment{opt.augment_shift, opt.augment_rotate};
  check_augment(augment, train_set->rows, train_set->cols);
  if (listed && reads_whole_images(opt.layers)) {
    auto samples = std::make_shared<ImageSamples>(train_set);
    samples->set_augment(augment);
    train = samples;
    if (test_set) test = std::make_shared<ImageSamples>(test_set);
    shape = fmt::format("{}x{} images", train_set->rows, train_set->cols);
  } else {
    const SequenceView view =
        SequenceView::make(opt.view, train_set->rows, train_set->cols, opt.view_seed);
    auto sequences = std::make_shared<ImageSequences>(train_set, view);
    sequences->set_augment(augment);
    train = sequences;
    if (test_set) test = std::make_shared<ImageSequences>(test_set, view);
    so.metadata["recur.view"] = to_string(opt.view);
    so.metadata["recur.view_seed"] = std::to_string(opt.view_seed);
    shape = fmt::format("{} view ({} steps x {} features)", to_string(opt.view), view.steps(),
                        view.features());
  }
  if (listed) {
    so.model.input = train->input_shape();
    so.model.num_classes = classes;
    so.model.layers = opt.layers;
    try {
      so.model.validate();
    } catch (const Error& e) {
      throw Error("--model", fmt::format("does not fit this data ({} in, {} classes): {}",
                                         to_string(train->input_shape()), classes, e.what()));
    }
    for (const LayerSpec& l : opt.layers)
      RECUR_CHECK(
          l.untied_steps == 0 || l.untied_steps == train->max_length(), "--model",
          fmt::format("the {} layer has untied weights for {} steps, but the {} view "
                      "reads these images as {} steps",
                      to_string(l.cell), l.untied_steps, to_string(opt.view), train->max_length()));
    so.title = "recur " + std::filesystem::path(opt.data_dir).filename().string();
  } else {
    ModelConfig mc = opt.model;
    mc.input_size = train->input_shape().features;
    mc.steps = train->max_length();
    mc.num_classes = classes;
    mc.validate();
    check_memory(mc, opt.batch, threads);
    so.model = model_spec_from_config(mc);
    so.title = fmt::format("{} {} on MNIST {}", to_string(mc.cell), mc.hidden, to_string(opt.view));
  }
  so.holdout = FitPlan::Holdout::first;
  so.batching = FitPlan::Batching::shuffled;
  so.data_name = opt.images ? train_set->source : "--data " + opt.data_dir;
  // What a shared checkpoint says of its training: the options and the data's checksums, never
  // the trainer's own folders (--data, --out).
  so.metadata["recur.image_rows"] = std::to_string(train_set->rows);
  so.metadata["recur.image_cols"] = std::to_string(train_set->cols);
  so.metadata["recur.train_config"] = without_local_paths(config);
  so.config_text = config;
  so.metadata["recur.train_data"] =
      opt.images ? describe_arrays(*train_set) : describe_training_data(opt.data_dir);

  if (listed) {
    out << fmt::format("recur train: {} on {}, {} parameters\n", layer_list_text(so.model.layers),
                       shape, so.model.parameter_count());
  } else {
    const LayerSpec& rnn = so.model.layers[so.model.layers.size() - 3];  // recurrent, pool, head
    out << fmt::format("recur train: {} {}x{} on {}, {} parameters\n", to_string(rnn.cell),
                       rnn.size, rnn.layers, shape, so.model.parameter_count());
  }
  const std::int64_t per_epoch = (trainable + opt.batch - 1) / opt.batch;
  std::int64_t total_steps = opt.epochs > 0 ? per_epoch * opt.epochs : opt.steps;
  if (opt.steps > 0) total_steps = std::min(total_steps, opt.steps);
  out << fmt::format(
      "data: {} training, {} validation images from {}; batch {}, {} steps, {} threads{}\n",
      trainable, opt.validation, opt.images ? train_set->source : opt.data_dir, opt.batch,
      total_steps, threads,
      test ? fmt::format("; {} test images at the end", test->size()) : std::string());
  return fit(opt, so, train, test, out, interactive);
}

}  // namespace

}  // namespace recur
