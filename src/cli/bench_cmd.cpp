// recur bench: end-to-end speed on real MNIST batches, measured on exactly the work the training
// loop does (the short form's layer list: Model::prepare, SequenceRunner::train_batch,
// Optimizer::step), plus inference throughput, batch-1
// latency, a large sgemm for reference, and the process's peak RSS. bench/peers/torch_rnn.py
// prints the same JSON keys for PyTorch; bench/compare.py puts the two side by side.
#include <fmt/core.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "cli/model_io.hpp"
#include "kernels/bf16_gemm.hpp"
#include "kernels/dispatch.hpp"
#include "kernels/gemm.hpp"
#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/fit.hpp"
#include "recur/model.hpp"
#include "recur/optim.hpp"
#include "recur/predictor.hpp"
#include "recur/train.hpp"

namespace recur::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct BenchOptions {
  std::string cell = "lstm", view = "rows", data_dir = "data/mnist", mode = "train";
  int hidden = 128, batch = 128, threads = 2, steps = 30, warmup = 3;
  int infer_batch = 1000, latency_runs = 500, sgemm_size = 2048;
  bool json = false, against_fp32 = false;
  std::string precision = "fp32";  // infer, latency and stream: fp32 or int8; train: fp32 or bf16
};

PrepareFor inference_preparation(const BenchOptions& o) {
  return parse_infer_precision(o.precision) == InferPrecision::int8 ? PrepareFor::int8
                                                                    : PrepareFor::inference;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The q-quantile (0 <= q <= 1) of the values, by the nearest rank below; median for q = 0.5
// takes the mean of the two middle values of an even count.
double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  if (q == 0.5 && v.size() % 2 == 0) return 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  return v[k];
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// Floating-point operations of one training step (forward + backward) of a one-layer,
// one-direction network, counting the GEMMs only (the pointwise cell work is not counted):
//   forward   2*S*B*(I+H)*G*H       input projection of all steps + h_{t-1} x W_hh^T per step
//   backward  2*S*B*(I+2H)*G*H      dW_ih, dW_hh, and dh_{t-1} = dgates x W_hh per step
//   head      3 * 2*B*H*C           logits, dW_head, dpooled
// The steps with a zero initial state are counted although recur skips some of their products.
double train_step_flops(const ModelConfig& c, int batch) {
  const double S = c.steps, B = batch, I = c.input_size, H = c.hidden,
               GH = static_cast<double>(gate_count(c.cell)) * c.hidden, C = c.num_classes;
  return 2 * S * B * (I + H) * GH + 2 * S * B * (I + 2 * H) * GH + 3 * 2 * B * H * C;
}

double infer_flops_per_sample(const ModelConfig& c) {
  const double S = c.steps, I = c.input_size, H = c.hidden,
               GH = static_cast<double>(gate_count(c.cell)) * c.hidden, C = c.num_classes;
  return 2 * S * (I + H) * GH + 2 * H * C;
}

ModelConfig model_for(const BenchOptions& o, const SequenceView& view, const ImageSet& set) {
  ModelConfig mc;
  mc.cell = parse_cell(o.cell);
  mc.hidden = o.hidden;
  mc.input_size = view.features();
  mc.steps = view.steps();
  mc.num_classes = set.num_classes;
  mc.validate();
  return mc;
}

// What every mode measures on: the MNIST images (training or test file), the view, and the model
// of the options with its seed-1 weights.
struct BenchSetup {
  std::shared_ptr<const ImageSet> set;
  SequenceView view;
  ModelConfig config;
  std::unique_ptr<Model<float>> net;
};

BenchSetup bench_setup(const BenchOptions& o, bool training_file) {
  BenchSetup b{
      std::make_shared<const ImageSet>(load_mnist(o.data_dir, training_file)), {}, {}, nullptr};
  b.view = SequenceView::make(parse_view(o.view), b.set->rows, b.set->cols);
  b.config = model_for(o, b.view, *b.set);
  b.net = std::make_unique<Model<float>>(model_spec_from_config(b.config));
  b.net->init(1);
  return b;
}

// The kernels the products run on: the bf16 or int8 kernel, or the float kernels' instruction set.
std::string kernel_name(const std::string& precision) {
  if (precision == "bf16") return kernels::to_string(kernels::bf16_kernel());
  if (precision == "int8") return int8_kernel_name();
  return kernels::to_string(kernels::isa());
}

nlohmann::json common_fields(const BenchOptions& o, const Model<float>& net) {
  return {{"impl", "recur"},          {"mode", o.mode},
          {"cell", o.cell},           {"hidden", o.hidden},
          {"batch", o.batch},         {"threads", o.threads},
          {"view", o.view},           {"steps", o.steps},
          {"warmup", o.warmup},       {"params", net.num_params()},
          {"precision", o.precision}, {"kernel", kernel_name(o.precision)}};
}

// Training: median and total samples/s over `steps` timed steps after `warmup` untimed ones.
nlohmann::json bench_train(const BenchOptions& o) {
  BenchSetup setup = bench_setup(o, true);
  const auto& set = setup.set;
  const SequenceView& view = setup.view;
  const ModelConfig& mc = setup.config;
  Model<float>& net = *setup.net;
  SequenceRunner runner(net, resolve_threads(o.threads));
  const ImageSequences samples(set, view);
  Optimizer optimizer(OptimizerConfig{}, net.num_params());  // Adam, lr 1e-3
  optimizer.set_range_runner(runner.range_runner());  // on the training threads, as the trainer
  const Split split = split_train_validation(set->count, 5000);
  Batcher batcher(split.train, o.batch, 1);
  std::vector<float> grads(net.num_params());
  std::vector<std::int64_t> batch;
  std::vector<double> times;
  double loss_first = 0, loss_last = 0;
  std::int64_t epoch = 0;
  batcher.start_epoch(epoch);
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    // A short last batch would skew the timing: start the next epoch instead.
    if (!batcher.next(batch) || static_cast<int>(batch.size()) < o.batch) {
      batcher.start_epoch(++epoch);
      batcher.next(batch);
    }
    const auto t0 = Clock::now();
    // Once per step for all threads, as the trainer does.
    runner.prepare_model(o.precision == "bf16" ? PrepareFor::training_bf16 : PrepareFor::training);
    const auto stats =
        runner.train_batch(samples, batch, grads.data(), static_cast<std::uint64_t>(step));
    optimizer.step(net.params().data(), grads.data(), OptimizerConfig{}.lr);
    const double dt = seconds_since(t0);
    if (step == 0) loss_first = stats.loss_sum / o.batch;
    loss_last = stats.loss_sum / o.batch;
    if (step >= o.warmup) times.push_back(dt);
  }
  double total = 0;
  for (double t : times) total += t;
  const double median = quantile(times, 0.5);
  const double flops = train_step_flops(mc, o.batch);
  nlohmann::json j = common_fields(o, net);
  j["train_samples_per_s"] = o.batch / median;
  j["train_samples_per_s_total"] = o.batch * static_cast<double>(times.size()) / total;
  j["step_ms_median"] = 1e3 * median;
  j["step_ms_min"] = 1e3 * quantile(times, 0.0);
  j["gflop_per_step"] = flops * 1e-9;
  j["effective_gflops"] = flops * 1e-9 / median;
  j["loss_first"] = loss_first;
  j["loss_last"] = loss_last;
  return j;
}

// The next indices.size() consecutive test images from `start`, back to the first image when the
// set has fewer left.
void next_test_batch(std::vector<std::int64_t>& indices, std::int64_t& start, std::int64_t count) {
  const auto B = static_cast<std::int64_t>(indices.size());
  if (start + B > count) start = 0;
  for (std::int64_t b = 0; b < B; ++b) indices[static_cast<std::size_t>(b)] = start + b;
  start += B;
}

// --against-fp32: the int8 model and the same weights in fp32 answer the same batches in turn,
// call by call (int8 first on even calls, fp32 first on odd ones), so that both see the same
// moment of a shared machine; the ratio is the median of the per-pair ratios fp32 time / int8
// time. A separate fp32 run minutes apart can differ by more than the int8 gain on a
// hypervisor's cores.
nlohmann::json int8_against_fp32(const BenchOptions& o, BenchSetup& setup,
                                 SequenceRunner& int8_runner, int threads,
                                 const ImageSequences& samples, int B) {
  Model<float> fp32(setup.net->spec());
  fp32.params() = setup.net->params();  // the same weights
  fp32.prepare(PrepareFor::inference);
  // The first runner pinned this thread to one CPU; the second pool still sees every CPU
  // (core/thread_pool.hpp) and puts its worker on the other one.
  SequenceRunner fp32_runner(fp32, threads);
  std::vector<std::int64_t> indices(B);
  std::vector<std::int32_t> predictions(B);
  std::vector<double> t8, t32, ratio;
  std::int64_t start = 0;
  const auto timed = [&](SequenceRunner& runner) {
    const auto t0 = Clock::now();
    runner.infer_batch(samples, indices, predictions.data(), nullptr);
    return seconds_since(t0);
  };
  for (int call = 0; call < o.warmup + o.steps; ++call) {
    next_test_batch(indices, start, setup.set->count);
    double a = 0, b = 0;
    if (call % 2 == 0) {
      a = timed(int8_runner);
      b = timed(fp32_runner);
    } else {
      b = timed(fp32_runner);
      a = timed(int8_runner);
    }
    if (call < o.warmup) continue;
    t8.push_back(a);
    t32.push_back(b);
    ratio.push_back(b / a);
  }
  return {{"paired_calls", static_cast<int>(ratio.size())},
          {"paired_int8_samples_per_s", B / quantile(t8, 0.5)},
          {"paired_fp32_samples_per_s", B / quantile(t32, 0.5)},
          {"int8_over_fp32", quantile(ratio, 0.5)},
          {"int8_over_fp32_p10", quantile(ratio, 0.1)},
          {"int8_over_fp32_p90", quantile(ratio, 0.9)}};
}

// Inference: batches of infer_batch consecutive test images, cycling through the test set.
nlohmann::json bench_infer(const BenchOptions& o) {
  BenchSetup setup = bench_setup(o, false);
  const auto& set = setup.set;
  const SequenceView& view = setup.view;
  const ModelConfig& mc = setup.config;
  Model<float>& net = *setup.net;
  net.prepare(inference_preparation(o));  // once per model for inference
  const int threads = resolve_threads(o.threads);
  SequenceRunner runner(net, threads);
  const ImageSequences samples(set, view);
  const int B = static_cast<int>(std::min<std::int64_t>(o.infer_batch, set->count));
  std::vector<std::int64_t> indices(B);
  std::vector<std::int32_t> predictions(B);
  std::vector<double> times;
  std::int64_t start = 0;
  for (int call = 0; call < o.warmup + o.steps; ++call) {
    next_test_batch(indices, start, set->count);
    const auto t0 = Clock::now();
    runner.infer_batch(samples, indices, predictions.data(), nullptr);
    const double dt = seconds_since(t0);
    if (call >= o.warmup) times.push_back(dt);
  }
  double total = 0;
  for (double t : times) total += t;
  const double median = quantile(times, 0.5);
  nlohmann::json j = common_fields(o, net);
  if (o.against_fp32) j.update(int8_against_fp32(o, setup, runner, threads, samples, B));
  j["infer_batch"] = B;
  j["infer_samples_per_s"] = B / median;
  j["infer_samples_per_s_total"] = B * static_cast<double>(times.size()) / total;
  j["infer_ms_median"] = 1e3 * median;
  j["infer_effective_gflops"] = infer_flops_per_sample(mc) * B * 1e-9 / median;
  return j;
}

// Batch-1 latency of one forward (with the uint8 -> float conversion and the argmax). One sample
// cannot be split, so this runs on the calling thread whatever --threads says.
nlohmann::json bench_latency(const BenchOptions& o) {
  BenchSetup setup = bench_setup(o, false);
  const auto& set = setup.set;
  const SequenceView& view = setup.view;
  Model<float>& net = *setup.net;
  net.prepare(inference_preparation(o));
  SequenceRunner runner(net, 1);
  const ImageSequences samples(set, view);
  std::vector<std::int64_t> one(1);
  const int runs = std::max(200, o.latency_runs);
  std::vector<double> times;
  std::int32_t prediction = 0;
  for (int run = 0; run < std::max(10, o.warmup) + runs; ++run) {
    one[0] = run % set->count;
    const auto t0 = Clock::now();
    runner.infer_batch(samples, one, &prediction, nullptr);
    const double dt = seconds_since(t0);
    if (run >= std::max(10, o.warmup)) times.push_back(dt);
  }
  nlohmann::json j = common_fields(o, net);
  j["latency_runs"] = runs;
  j["latency_us_median"] = 1e6 * quantile(times, 0.5);
  j["latency_us_p90"] = 1e6 * quantile(times, 0.9);
  j["latency_us_min"] = 1e6 * quantile(times, 0.0);
  return j;
}

// Streaming through the library's Predictor: the model is saved and loaded as a checkpoint of
// images read through the view, then each test image is fed one step at a time (feed_pixels,
// one view step per call) and read at the end, against predicting it whole (predict_images
// with one image). Reports the median of single feed calls, of a whole stream (every step fed
// and one read) and of the whole-image prediction.
nlohmann::json bench_stream(const BenchOptions& o) {
  BenchSetup setup = bench_setup(o, false);
  const auto& set = setup.set;
  Model<float>& net = *setup.net;
  const std::string path = (std::filesystem::temp_directory_path() /
                            fmt::format("recur-bench-stream-{}.safetensors", ::getpid()))
                               .string();
  save_checkpoint(path, net,
                  {{"recur.image_rows", std::to_string(set->rows)},
                   {"recur.image_cols", std::to_string(set->cols)},
                   {"recur.view", o.view},
                   {"recur.view_seed", "0"}});
  std::unique_ptr<Predictor> p;
  try {
    PredictorOptions options;
    options.precision = parse_infer_precision(o.precision);
    p = std::make_unique<Predictor>(path, options);
  } catch (...) {
    std::filesystem::remove(path);
    throw;
  }
  std::filesystem::remove(path);
  const int S = p->steps(), F = p->features();
  const int runs = std::max(200, o.latency_runs), warm = std::max(10, o.warmup);
  std::vector<double> step_times, stream_times, whole_times;
  double checksum = 0;
  for (int run = 0; run < warm + runs; ++run) {
    const std::uint8_t* image =
        set->pixels.data() + static_cast<std::size_t>(run % set->count) * set->rows * set->cols;
    // The view's steps of this image as uint8, for feed_pixels.
    const std::vector<float> x = p->image_steps(image);
    std::vector<std::uint8_t> steps(x.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      steps[i] = static_cast<std::uint8_t>(x[i] * 255.f + 0.5f);
    const auto t0 = Clock::now();
    StreamState state = p->start();
    for (int t = 0; t < S; ++t) {
      const auto ts = Clock::now();
      p->feed_pixels(state, steps.data() + static_cast<std::size_t>(t) * F, 1);
      if (run >= warm) step_times.push_back(seconds_since(ts));
    }
    const StreamReading r = p->read(state);
    const double stream_dt = seconds_since(t0);
    const auto t1 = Clock::now();
    const Predictions whole = p->predict_images(image, 1);
    const double whole_dt = seconds_since(t1);
    checksum += r.logits[0] - whole.logits[0];
    if (run >= warm) {
      stream_times.push_back(stream_dt);
      whole_times.push_back(whole_dt);
    }
  }
  nlohmann::json j = common_fields(o, net);
  j["latency_runs"] = runs;
  j["steps_per_sample"] = S;
  j["stream_step_us_median"] = 1e6 * quantile(step_times, 0.5);
  j["stream_us_median"] = 1e6 * quantile(stream_times, 0.5);
  j["whole_us_median"] = 1e6 * quantile(whole_times, 0.5);
  j["stream_over_whole"] = quantile(stream_times, 0.5) / quantile(whole_times, 0.5);
  j["stream_minus_whole_logit_sum"] = checksum;  // 0 when streams end on the whole's bits
  return j;
}

// GFLOP/s of C[N,N] = A[N,N] x B[N,N] with the rows of C split over `threads` std::threads, each
// calling single-threaded BLAS through kernels::gemm. Median of 5 runs after one warm-up.
double sgemm_gflops(int n, int threads) {
  const std::size_t nn = static_cast<std::size_t>(n) * n;
  std::vector<float> a(nn), b(nn), c(nn);
  for (std::size_t i = 0; i < nn; ++i) {
    a[i] = static_cast<float>(i % 13) * 0.01f - 0.06f;
    b[i] = static_cast<float>(i % 7) * 0.02f - 0.06f;
  }
  auto rows = [&](int k) {
    const int begin = static_cast<int>(static_cast<std::int64_t>(n) * k / threads);
    const int end = static_cast<int>(static_cast<std::int64_t>(n) * (k + 1) / threads);
    kernels::gemm<float>(false, false, end - begin, n, n, 1.0f,
                         a.data() + static_cast<std::size_t>(begin) * n, n, b.data(), n, 0.0f,
                         c.data() + static_cast<std::size_t>(begin) * n, n);
  };
  std::vector<double> times;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = Clock::now();
    std::vector<std::thread> workers;
    for (int k = 1; k < threads; ++k) workers.emplace_back(rows, k);
    rows(0);
    for (auto& w : workers) w.join();
    const double dt = seconds_since(t0);
    if (rep > 0) times.push_back(dt);
  }
  return 2.0 * n * n * static_cast<double>(n) * 1e-9 / quantile(times, 0.5);
}

nlohmann::json bench_sgemm(const BenchOptions& o) {
  RECUR_CHECK(o.sgemm_size > 0 && o.sgemm_size <= 8192, "--sgemm-size",
              fmt::format("must be between 1 and 8192, got {}", o.sgemm_size));
  kernels::blas_single_threaded();
  const int threads = resolve_threads(o.threads);
  nlohmann::json j = {{"impl", "recur"},
                      {"mode", o.mode},
                      {"threads", o.threads},
                      {"sgemm_size", o.sgemm_size},
                      {"sgemm_threads", threads}};
  j["sgemm_gflops_1t"] = sgemm_gflops(o.sgemm_size, 1);
  j["sgemm_gflops_mt"] = sgemm_gflops(o.sgemm_size, threads);
  return j;
}

void print_text(const nlohmann::json& j) {
  const std::string mode = j["mode"];
  if (mode != "sgemm")
    fmt::print(
        "recur bench {}: {} hidden {}, {} view, {} threads, {} parameters, {} ({} kernels)\n", mode,
        j["cell"].get<std::string>(), j["hidden"].get<int>(), j["view"].get<std::string>(),
        j["threads"].get<int>(), j["params"].get<std::size_t>(), j["precision"].get<std::string>(),
        j.value("kernel", std::string("?")));
  if (mode == "train") {
    fmt::print(
        "training   batch {}: {:.0f} samples/s (median step {:.2f} ms), {:.0f} samples/s over all "
        "{} steps\n",
        j["batch"].get<int>(), j["train_samples_per_s"].get<double>(),
        j["step_ms_median"].get<double>(), j["train_samples_per_s_total"].get<double>(),
        j["steps"].get<int>());
    fmt::print(
        "work       {:.3f} GFLOP per step: {:.1f} effective GFLOP/s; loss {:.4f} -> {:.4f}\n",
        j["gflop_per_step"].get<double>(), j["effective_gflops"].get<double>(),
        j["loss_first"].get<double>(), j["loss_last"].get<double>());
  } else if (mode == "infer") {
    fmt::print(
        "inference  batch {}: {:.0f} samples/s (median call {:.2f} ms), {:.1f} effective GFLOP/s\n",
        j["infer_batch"].get<int>(), j["infer_samples_per_s"].get<double>(),
        j["infer_ms_median"].get<double>(), j["infer_effective_gflops"].get<double>());
    if (j.contains("int8_over_fp32"))
      fmt::print(
          "against    fp32 in turn, {} pairs of calls: int8 {:.0f} samples/s, fp32 {:.0f} "
          "samples/s; int8 / fp32 speed {:.2f}x (median of the pairs; p10 {:.2f}x, p90 {:.2f}x)\n",
          j["paired_calls"].get<int>(), j["paired_int8_samples_per_s"].get<double>(),
          j["paired_fp32_samples_per_s"].get<double>(), j["int8_over_fp32"].get<double>(),
          j["int8_over_fp32_p10"].get<double>(), j["int8_over_fp32_p90"].get<double>());
  } else if (mode == "stream") {
    fmt::print(
        "streaming  one step {:.2f} us (median feed); {} steps fed one by one and read {:.1f} us "
        "against {:.1f} us for the whole image ({:.2f}x)\n",
        j["stream_step_us_median"].get<double>(), j["steps_per_sample"].get<int>(),
        j["stream_us_median"].get<double>(), j["whole_us_median"].get<double>(),
        j["stream_over_whole"].get<double>());
  } else if (mode == "latency") {
    fmt::print("latency    batch 1: median {:.1f} us, p90 {:.1f} us, min {:.1f} us over {} runs\n",
               j["latency_us_median"].get<double>(), j["latency_us_p90"].get<double>(),
               j["latency_us_min"].get<double>(), j["latency_runs"].get<int>());
  } else {
    fmt::print(
        "sgemm      {0}x{0}x{0}: {1:.1f} GFLOP/s on 1 thread, {2:.1f} GFLOP/s on {3} threads\n",
        j["sgemm_size"].get<int>(), j["sgemm_gflops_1t"].get<double>(),
        j["sgemm_gflops_mt"].get<double>(), j["sgemm_threads"].get<int>());
  }
  fmt::print("peak RSS   {:.1f} MB\n", j["peak_rss_mb"].get<double>());
}

int run_bench(const BenchOptions& o) {
  RECUR_CHECK(o.steps > 0, "--steps", "must be a positive integer");
  RECUR_CHECK(o.warmup >= 0, "--warmup", "must not be negative");
  RECUR_CHECK(o.batch > 0 && o.batch <= kMaxEvalBatch, "--batch",
              fmt::format("must be between 1 and {}, got {}", kMaxEvalBatch, o.batch));
  RECUR_CHECK(o.infer_batch > 0 && o.infer_batch <= kMaxEvalBatch, "--infer-batch",
              fmt::format("must be between 1 and {}, got {}", kMaxEvalBatch, o.infer_batch));
  resolve_threads(o.threads);  // refuses a count beyond the machine before anything starts
  if (o.precision == "bf16") {
    RECUR_CHECK(o.mode == "train", "--precision",
                "bf16 applies to --mode train (recur train --precision bf16), not " + o.mode);
    check_train_precision(TrainPrecision::bf16);
  } else if (parse_infer_precision(o.precision) == InferPrecision::int8) {
    RECUR_CHECK(o.mode == "infer" || o.mode == "latency" || o.mode == "stream", "--precision",
                "int8 applies to --mode infer, latency and stream, not " + o.mode);
    predictor_options(o.precision);  // the notice on a CPU without VNNI
  }
  RECUR_CHECK(!o.against_fp32 || (o.mode == "infer" && o.precision == "int8"), "--against-fp32",
              "applies to --mode infer --precision int8");
  nlohmann::json j;
  if (o.mode == "train")
    j = bench_train(o);
  else if (o.mode == "infer")
    j = bench_infer(o);
  else if (o.mode == "latency")
    j = bench_latency(o);
  else if (o.mode == "stream")
    j = bench_stream(o);
  else if (o.mode == "sgemm")
    j = bench_sgemm(o);
  else
    throw Error("--mode", "unknown mode '" + o.mode + "' (train, infer, latency, stream, sgemm)");
  j["peak_rss_mb"] = peak_rss_mb();
  if (o.json)
    std::cout << j.dump() << "\n";
  else
    print_text(j);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, Runner& run) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure training and inference speed on real MNIST batches (see bench/README.md)");
  cmd->add_option("--mode", o->mode, "train, infer, latency, stream or sgemm")
      ->capture_default_str();
  cmd->add_option("--cell", o->cell, "rnn (tanh), rnn_relu, lstm, gru")->capture_default_str();
  cmd->add_option("--hidden", o->hidden, "Hidden units")->capture_default_str();
  cmd->add_option("--batch", o->batch, "Training batch size")->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads; 0 = all cores")->capture_default_str();
  cmd->add_option("--steps", o->steps, "Timed training steps or inference calls")
      ->capture_default_str();
  cmd->add_option("--warmup", o->warmup, "Untimed steps or calls before them")
      ->capture_default_str();
  cmd->add_option("--view", o->view, "rows, cols, pixels, permuted")->capture_default_str();
  cmd->add_option("--data", o->data_dir, "Folder with the MNIST IDX files")->capture_default_str();
  cmd->add_option("--infer-batch", o->infer_batch, "Batch size of --mode infer")
      ->capture_default_str();
  cmd->add_option("--latency-runs", o->latency_runs,
                  "Timed runs of --mode latency and stream (at least 200)")
      ->capture_default_str();
  cmd->add_option("--sgemm-size", o->sgemm_size, "N of the N x N x N product of --mode sgemm")
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->add_flag("--against-fp32", o->against_fp32,
                "With --mode infer --precision int8: also run the same weights in fp32, the two "
                "taking turns call by call, and print the speed ratio");
  cmd->add_option("--precision", o->precision,
                  "fp32, or int8 (--mode infer, latency, stream): recurrent and linear layers "
                  "with int8 weights and activations (docs/INFERENCE.md), or bf16 (--mode "
                  "train): recurrent products in bf16 (docs/TRAINING.md)")
      ->capture_default_str();
  cmd->callback([o, &run] { run = [o]() { return run_bench(*o); }; });
}

}  // namespace recur::cli
