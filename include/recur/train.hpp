// Training: one run description (TrainOptions) for every data recur reads (IDX images through a
// view or whole, IMDb and other text, .npy arrays), the short form (--cell, --hidden, ...) or a
// layer list, through the trainer of models built from layers (recur/fit.hpp). Also the
// thread-count helpers every runner uses. Same seed, same thread count, same data:
// bit-identical weights.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "recur/data.hpp"
#include "recur/layers.hpp"
#include "recur/model.hpp"
#include "recur/optim.hpp"
#include "recur/text.hpp"

namespace recur {

class ThreadPool;

// CPUs this process may run on (its affinity mask).
int allowed_cpus();
// The largest thread count a pool may have: kThreadsPerCpu x allowed_cpus(), less the threads
// the process runs besides the calling one (BLAS's helpers, another pool), so that the whole
// process stays within kThreadsPerCpu threads per CPU. At least 1.
constexpr int kThreadsPerCpu = 4;
int max_threads();
// Threads the process runs now (/proc/self/status; 1 where that cannot be read).
int process_threads();
// Threads to use: `requested` if positive, else every core this process may run on. Throws
// recur::Error naming --threads for a negative count or one above max_threads().
int resolve_threads(int requested);

struct EvalResult {
  std::int64_t count = 0, correct = 0;
  double loss = 0;                        // mean cross-entropy
  std::vector<std::int32_t> predictions;  // per evaluated index
  std::vector<float> probabilities;       // [count, C]
  double accuracy() const { return count ? static_cast<double>(correct) / count : 0.0; }
};
// What train() reports to TrainOptions::on_event: every step (the step's own batch loss and
// accuracy), every log point (the means since the last one, as logged to metrics.jsonl) and
// every validation.
struct TrainEvent {
  enum class Kind { step, train_log, validation };
  Kind kind = Kind::step;
  std::int64_t step = 0, total_steps = 0, epoch = 0;
  double loss = 0, accuracy = 0, lr = 0, samples_per_second = 0;
};

// The defaults are the best recipe the project knows for MNIST rows, whichever the cell
// (examples/mnist-lstm.toml; the README's results table): Adam at 4e-3 with a cosine decay to
// 5e-5, gradients clipped to norm 5, LSTM forget-gate bias 1, orthogonal recurrent weights,
// batch 128, 10 epochs.
// The largest --eval-batch (validation and `recur eval` batches): its buffers are sized from it.
constexpr int kMaxEvalBatch = 1 << 16;

// The arithmetic of a training step (--precision): fp32, or bf16: the recurrent layers' products
// (input and recurrent sides, forward and backward, weight and input gradients) take bf16
// operands and accumulate in fp32, while the master weights, gradients and optimizer state stay
// fp32, so the checkpoints are fp32 models that recur eval and predict run in fp32. bf16 needs a
// CPU with AVX512_BF16 (kernels/bf16_gemm.hpp); on any other CPU it is refused (docs/TRAINING.md).
enum class TrainPrecision { fp32, bf16 };
std::string to_string(TrainPrecision precision);
// Throws Error(where, ...) for a name other than fp32 or bf16.
TrainPrecision parse_train_precision(const std::string& name,
                                     const std::string& where = "--precision");
// Throws Error("--precision", ...) (recur train exits 2) when `precision` is bf16 and this CPU
// has no bf16 kernel (or RECUR_BF16_KERNEL=none pretends so).
void check_train_precision(TrainPrecision precision);

// What a run is: its data, its model, its optimizer and schedule, and how it runs. recur train's
// flags, a TOML config and Python's keywords all set it through one table
// (recur/train_options.hpp).
struct TrainOptions {
  // IDX images (a folder), "imdb" (data/imdb), a text folder or label<TAB>text file, or a
  // folder of .npy arrays (is_sequence_data).
  std::string data_dir = "data/mnist";
  // Images to train on instead of the IDX files in data_dir; the first `validation` of them are
  // the validation split, as with the files. Checked like a file's contents.
  std::shared_ptr<const ImageSet> images;
  // Called from the training thread at every event; returning false makes the current step the
  // last (validation, checkpoints and summary then follow as at a run's planned end). An
  // exception thrown here leaves train() as it is (the run folder keeps its last checkpoint).
  std::function<bool(const TrainEvent&)> on_event;
  // The model as a layer list (`recur train --model`); empty: the short form, `model` below.
  std::vector<LayerSpec> layers;
  // Text: the embedding width of the short form, the vocabulary (size, least count), the tokens
  // kept per text and which end, a separate test file; dropouts around the short form.
  int embed = 128;
  int vocab = 20000;
  int min_count = 2;
  int max_len = 500;
  Truncate truncate = Truncate::tail;  // a review's verdict tends to come at its end
  std::string test_data;
  double head_dropout = 0;
  double embed_dropout = 0;
  double word_dropout = 0;  // text: whole tokens dropped in training (the embedding's dropout=)
  // Images: each training image moved by up to `augment_shift` pixels along each axis and
  // turned by up to `augment_rotate` degrees, drawn afresh every time it is read.
  int augment_shift = 0;
  double augment_rotate = 0;
  ViewKind view = ViewKind::rows;
  std::uint64_t view_seed = 0;  // permuted view's permutation
  ModelConfig model = [] {      // input_size and steps are set from the view
    ModelConfig m;
    m.init.forget_bias = 1.0;
    // --init-recurrent auto for the default cell (orthogonal for LSTM); a caller changing the
    // cell asks auto_recurrent_init again, as `recur train` does.
    m.init.recurrent.kind = auto_recurrent_init(m.cell);
    return m;
  }();
  // --init-recurrent auto: train() sets model.init.recurrent.kind from the cell (and a layer
  // list's recurrent layers from theirs) with auto_recurrent_init.
  bool recurrent_init_auto = false;
  // --init-from: a checkpoint (a pretrained language model, another run) whose tensors of the
  // same name and shape replace the initial weights (init_from_checkpoint, recur/pretrain.hpp).
  std::string init_from;
  OptimizerConfig optimizer = [] {
    OptimizerConfig o;
    o.lr = 4e-3f;
    return o;
  }();
  ScheduleConfig schedule = [] {
    ScheduleConfig s;
    s.kind = ScheduleKind::cosine;
    s.min_lr = 5e-5f;
    return s;
  }();
  double clip_norm = 5;        // 0 = off
  double clip_value = 0;       // 0 = off
  double label_smoothing = 0;  // 0 = off (--label-smoothing)
  std::int64_t patience = 0;   // early stopping after N validations without progress (--patience)
  int batch = 128;
  int epochs = 10;
  std::int64_t steps = 0;  // stop after this many steps; 0 = run all epochs
  std::int64_t validation = 5000;
  std::int64_t train_limit = 0;  // use only the first N training images after the split; 0 = all
  std::uint64_t seed = 1;
  int threads = 0;
  std::int64_t display_step = 100;
  int eval_batch = 1000;
  std::string out_dir = "runs/latest";
  std::int64_t checkpoint_every =
      0;                        // also write resume.safetensors every N steps; 0 = epoch ends only
  bool resume = false;          // continue the run in out_dir from its resume.safetensors
  bool skip_nonfinite = false;  // skip (and count) steps whose loss or gradient is not finite
  TrainPrecision precision = TrainPrecision::fp32;
  // Evaluate the test images beside the training files (data_dir) at the end, when it has them.
  bool test = true;
};

// A resolved config (key=value lines) without the options that name the trainer's own folders
// (data, out, init-from): what a checkpoint's metadata keeps, so a shared file reveals no local
// layout.
std::string without_local_paths(const std::string& config);
// What a checkpoint says of IDX training data in `dir`: its files' names and SHA-256, and name
// "mnist" when they are MNIST's (JSON).
std::string describe_training_data(const std::string& dir);

// Set by SIGINT / SIGTERM (see install_stop_signals): training finishes the current step, writes
// resume.safetensors and stops with StopRequested.
void install_stop_signals();
// The signal that install_stop_signals' handler caught, or 0 (fit checks it too).
int stop_signal_received();
struct StopRequested {
  int signal = 0;
  std::string message;
};

// What a finished run reports (and writes to summary.json).
struct TrainSummary {
  double test_accuracy = 0, test_loss = 0, val_accuracy = 0, val_loss = 0, best_val_accuracy = 0;
  double train_seconds = 0, wall_seconds = 0, samples_per_second = 0;
  std::int64_t steps = 0, samples = 0, skipped_steps = 0;
  bool tested = false;  // test_accuracy / test_loss hold a test pass
};

// Trains the model (the short form's chain, model_spec_from_config, or the layer list `layers`)
// with fit (recur/fit.hpp) on the data options name. Images keep MNIST's conventions, the first
// `validation` images held out and one seeded shuffle per epoch cut in order, so the short form
// gives bit for bit the weights the fixed-shape trainer gave before it
// (TrainFromMemory.ShortFormTrainsBitForBitAsTheFixedShapeNetwork) and a list that spells it out
// with its names the same; text and arrays (is_sequence_data) hold out a seeded draw and cut
// batches by length. Logs to `out`
// (a progress bar when `interactive`) and writes the run directory (checkpoints in the layer
// format, "recur-model-2"):
// config.toml, metrics.jsonl, last.safetensors, best.safetensors, resume.safetensors (weights,
// optimizer state and position, written as one atomic file at every epoch end and every
// checkpoint_every steps), curves.png, summary.json (written last: a run directory without it
// is unfinished). A resumed run ends bit-identical to one never interrupted. Throws
// StopRequested after a stop signal, recur::Error for bad input or a non-finite loss.
TrainSummary train(const TrainOptions& options, std::ostream& out, bool interactive);

}  // namespace recur
