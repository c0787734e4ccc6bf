// train() on an in-memory ImageSet (TrainOptions::images, what the Python module uses) against
// the same images read from IDX files, TrainOptions::on_event (reports and early stop), and
// check_image_set's messages.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include "recur/data.hpp"
#include "recur/error.hpp"
#include "recur/fs.hpp"
#include "recur/optim.hpp"
#include "recur/rng.hpp"
#include "recur/safetensors.hpp"
#include "recur/train.hpp"
#include "support/fixed_network.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "recur-train-memory-XXXXXX").string();
    RECUR_ASSERT(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// 240 images of 6x5: class k (of 3) brightens row 2k; the rest is pseudo-random noise.
ImageSet synthetic_set() {
  ImageSet s;
  s.source = "synthetic";
  s.count = 240;
  s.rows = 6;
  s.cols = 5;
  s.num_classes = 10;  // as load_mnist reads it
  std::uint32_t state = 12345;
  for (std::int64_t i = 0; i < s.count; ++i) {
    const int label = static_cast<int>(i % 3);
    s.labels.push_back(label);
    for (int r = 0; r < s.rows; ++r)
      for (int c = 0; c < s.cols; ++c) {
        state = state * 1664525u + 1013904223u;
        const int noise = static_cast<int>(state >> 26);
        s.pixels.push_back(static_cast<std::uint8_t>(r == 2 * label ? 200 + noise : noise));
      }
  }
  return s;
}

void write_idx(const ImageSet& s, const std::string& dir) {
  auto be32 = [](std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
  };
  std::string images = {0, 0, 8, 3}, labels = {0, 0, 8, 1};
  be32(images, static_cast<std::uint32_t>(s.count));
  be32(images, static_cast<std::uint32_t>(s.rows));
  be32(images, static_cast<std::uint32_t>(s.cols));
  images.append(s.pixels.begin(), s.pixels.end());
  be32(labels, static_cast<std::uint32_t>(s.count));
  for (std::int32_t l : s.labels) labels += static_cast<char>(l);
  fs::create_directories(dir);
  std::ofstream(dir + "/train-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir + "/train-labels-idx1-ubyte", std::ios::binary) << labels;
}

TrainOptions small_run(const std::string& out) {
  TrainOptions o;
  o.model.cell = CellKind::gru;
  o.model.hidden = 8;
  o.batch = 16;
  o.steps = 20;
  o.epochs = 0;
  o.validation = 40;
  o.display_step = 5;
  o.threads = 2;
  o.out_dir = out;
  return o;
}

TEST(TrainFromMemory, SameWeightsAsFromTheFiles) {
  TempDir tmp;
  const ImageSet set = synthetic_set();
  write_idx(set, tmp.path("data"));
  std::ostringstream log;
  TrainOptions from_files = small_run(tmp.path("files"));
  from_files.data_dir = tmp.path("data");
  train(from_files, log, false);
  TrainOptions from_memory = small_run(tmp.path("memory"));
  from_memory.images = std::make_shared<const ImageSet>(set);
  train(from_memory, log, false);
  // The same weights, bit for bit; only the metadata's description of the data differs
  // (file checksums against array checksums).
  const SafetensorsFile a = read_safetensors(tmp.path("files/last.safetensors"));
  const SafetensorsFile b = read_safetensors(tmp.path("memory/last.safetensors"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors) EXPECT_EQ(t.bytes, b.at(name).bytes) << name;
  EXPECT_EQ(nlohmann::json::parse(b.metadata.at("recur.train_data")).at("name"), "arrays");
  EXPECT_NE(log.str().find("from synthetic;"), std::string::npos) << log.str();
}

TEST(TrainFromMemory, EventsReportEveryStepLogAndValidation) {
  TempDir tmp;
  TrainOptions o = small_run(tmp.path("run"));
  o.images = std::make_shared<const ImageSet>(synthetic_set());
  std::vector<std::int64_t> steps, logs, validations;
  o.on_event = [&](const TrainEvent& e) {
    EXPECT_EQ(e.total_steps, 20);
    (e.kind == TrainEvent::Kind::step        ? steps
     : e.kind == TrainEvent::Kind::train_log ? logs
                                             : validations)
        .push_back(e.step);
    return true;
  };
  std::ostringstream log;
  const TrainSummary s = train(o, log, false);
  EXPECT_EQ(s.steps, 20);
  ASSERT_EQ(steps.size(), 20u);
  EXPECT_EQ(steps.front(), 1);
  EXPECT_EQ(logs, (std::vector<std::int64_t>{5, 10, 15, 20}));
  // 200 training images in batches of 16: epochs end at steps 13 and 20 (the last step).
  EXPECT_EQ(validations, (std::vector<std::int64_t>{13, 20}));
}

TEST(TrainFromMemory, FalseFromOnEventEndsTheRunAtThatStep) {
  TempDir tmp;
  TrainOptions o = small_run(tmp.path("run"));
  o.images = std::make_shared<const ImageSet>(synthetic_set());
  std::vector<std::int64_t> logs, validations;
  o.on_event = [&](const TrainEvent& e) {
    if (e.kind == TrainEvent::Kind::train_log) logs.push_back(e.step);
    if (e.kind == TrainEvent::Kind::validation) validations.push_back(e.step);
    return !(e.kind == TrainEvent::Kind::step && e.step == 7);
  };
  std::ostringstream log;
  const TrainSummary s = train(o, log, false);
  EXPECT_EQ(s.steps, 7);
  EXPECT_EQ(logs, (std::vector<std::int64_t>{5, 7}));  // the last step's window is logged
  EXPECT_EQ(validations, (std::vector<std::int64_t>{7}));
  EXPECT_TRUE(fs::exists(tmp.path("run/last.safetensors")));
  EXPECT_TRUE(fs::exists(tmp.path("run/summary.json")));
}

TEST(TrainFromMemory, ExceptionFromOnEventLeavesTrain) {
  TempDir tmp;
  TrainOptions o = small_run(tmp.path("run"));
  o.images = std::make_shared<const ImageSet>(synthetic_set());
  o.on_event = [](const TrainEvent& e) -> bool {
    if (e.step == 3) throw std::runtime_error("interrupted");
    return true;
  };
  std::ostringstream log;
  EXPECT_THROW(train(o, log, false), std::runtime_error);
  EXPECT_FALSE(fs::exists(tmp.path("run/summary.json")));
}

void expect_error(const ImageSet& s, const std::string& message) {
  try {
    check_image_set(s);
    ADD_FAILURE() << "no error for: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

TEST(CheckImageSet, NamesWhatIsWrong) {
  EXPECT_NO_THROW(check_image_set(synthetic_set()));
  ImageSet s = synthetic_set();
  s.labels[7] = 10;
  expect_error(s, "synthetic: label 10 of image 7 is outside 0..9");
  s = synthetic_set();
  s.pixels.pop_back();
  expect_error(s, "synthetic: 240 images of 6x5 need 7200 pixels but 7199 are given");
  s = synthetic_set();
  s.labels.pop_back();
  expect_error(s, "synthetic: 240 images but 239 labels");
  s = synthetic_set();
  s.num_classes = 1;
  expect_error(s, "synthetic: needs at least 2 classes, got 1");
  s = synthetic_set();
  s.cols = 0;
  expect_error(s, "synthetic: images are 6x0; each side must be in 1..16384");
  s = ImageSet{};
  s.source = "empty";
  expect_error(s, "empty: holds no images");
  // train() checks an in-memory set before anything else happens.
  TempDir tmp;
  TrainOptions o = small_run(tmp.path("run"));
  ImageSet bad = synthetic_set();
  bad.labels[0] = -1;
  o.images = std::make_shared<const ImageSet>(bad);
  std::ostringstream log;
  EXPECT_THROW(train(o, log, false), Error);
  EXPECT_FALSE(fs::exists(tmp.path("run")));
}

// The short form trains through its layer list (model_spec_from_config) with fit;
// here the fixed-shape Network, in the loop recur trained it with before: the first `val` images
// held out, one Batcher shuffle per epoch cut in order, each batch split into near-equal
// contiguous chunks (one per thread, dropout stream splitmix64(seed * 1000003 + step + chunk)),
// chunk gradients summed in order, clipping, Adam. Both must end with the same weights, bit for
// bit: every figure measured with the old trainer stays valid.
TEST(TrainFromMemory, ShortFormTrainsBitForBitAsTheFixedShapeNetwork) {
  TempDir tmp;
  const ImageSet set = synthetic_set();
  for (const bool projection_dropout : {false, true}) {
    TrainOptions o = small_run(tmp.path(projection_dropout ? "b" : "a"));
    o.images = std::make_shared<const ImageSet>(set);
    o.threads = 2;
    o.batch = 15;  // chunks of 8 and 7; the last batch of an epoch is short
    o.steps = 30;
    if (projection_dropout) {
      o.model.cell = CellKind::lstm;
      o.model.layers = 2;
      o.model.dropout = 0.3;
      o.model.projection = 6;
      o.model.bidirectional = true;
      o.model.pooling = Pooling::mean;
    }
    std::ostringstream log;
    train(o, log, false);

    const SequenceView view = SequenceView::make(o.view, set.rows, set.cols, o.view_seed);
    ModelConfig mc = o.model;
    mc.input_size = view.features();
    mc.steps = view.steps();
    mc.num_classes = set.num_classes;
    Network<float> net(mc);
    net.init(o.seed);
    Optimizer adam(o.optimizer, net.num_params());
    ScheduleConfig schedule = o.schedule;
    const Split split = split_train_validation(set.count, o.validation);
    Batcher batcher(split.train, o.batch, o.seed);
    schedule.total_steps = o.steps;
    std::vector<float> grads(net.num_params()), chunk(net.num_params());
    std::vector<std::int64_t> batch;
    std::int64_t epoch = 0;
    batcher.seek(epoch, 0);
    for (std::int64_t step = 0; step < o.steps; ++step) {
      if (!batcher.next(batch)) {
        batcher.seek(++epoch, 0);
        batcher.next(batch);
      }
      const int B = static_cast<int>(batch.size()), parts = std::min(2, B);
      std::fill(grads.begin(), grads.end(), 0.f);
      for (int k = 0, begin = 0; k < parts; ++k) {
        const int n = B / parts + (k < B % parts ? 1 : 0);
        std::vector<float> x(static_cast<std::size_t>(view.steps()) * n * view.features());
        std::vector<std::int32_t> labels(static_cast<std::size_t>(n));
        view.fill(set, batch.data() + begin, n, x.data());
        view.fill_labels(set, batch.data() + begin, n, labels.data());
        std::uint64_t stream = o.seed * 1000003ull + static_cast<std::uint64_t>(step + k);
        Rng rng(splitmix64(stream));
        NetworkWorkspace<float> ws;
        const float* logits = net.forward(x.data(), n, ws, true, &rng);
        std::vector<float> dlogits(static_cast<std::size_t>(n) * mc.num_classes);
        softmax_cross_entropy<float>(logits, labels.data(), n, mc.num_classes, 1.0f / B,
                                     dlogits.data(), nullptr);
        std::fill(chunk.begin(), chunk.end(), 0.f);
        net.backward(x.data(), n, ws, dlogits.data(), chunk.data());
        for (std::size_t j = 0; j < grads.size(); ++j) grads[j] += chunk[j];
        begin += n;
      }
      clip_grad_norm(grads.data(), grads.size(), static_cast<float>(o.clip_norm));
      adam.step(net.params().data(), grads.data(),
                learning_rate_at(schedule, o.optimizer.lr, step));
    }
    const SafetensorsFile trained =
        read_safetensors(tmp.path(projection_dropout ? "b" : "a") + "/last.safetensors");
    ASSERT_EQ(trained.tensors.size(), net.layout().entries().size());
    for (const ParamInfo& p : net.layout().entries()) {
      const std::vector<float> got = trained.at(p.name).as_f32();
      ASSERT_EQ(got.size(), p.size) << p.name;
      for (std::size_t j = 0; j < p.size; ++j)
        ASSERT_EQ(got[j], net.params()[p.offset + j]) << p.name << "[" << j << "]";
    }
  }
}

}  // namespace
}  // namespace recur
