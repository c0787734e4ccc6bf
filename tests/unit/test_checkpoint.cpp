// Model checkpoints: a save/load round trip is exact, and a checkpoint that does not fit its own
// model config (shape, missing or extra tensor, dtype, config) is refused with a clear reason.
#include <gtest/gtest.h>

#include <filesystem>

#include "recur/checkpoint.hpp"
#include "recur/error.hpp"
#include "recur/safetensors.hpp"
#include "support/fixed_network.hpp"

namespace recur {
namespace {

namespace fs = std::filesystem;

struct CheckpointTest : ::testing::Test {
  fs::path dir = fs::temp_directory_path() / ("recur-ckpt-" + std::to_string(::getpid()));
  void SetUp() override { fs::create_directories(dir); }
  void TearDown() override { fs::remove_all(dir); }

  static ModelConfig config() {
    ModelConfig c;
    c.cell = CellKind::gru;
    c.hidden = 6;
    c.layers = 2;
    c.bidirectional = true;
    c.projection = 5;
    return c;
  }

  // Writes the tensors of a saved model, changed by `edit`, with its metadata.
  std::string variant(const std::string& name,
                      const std::function<void(std::vector<TensorRef>&,
                                               std::map<std::string, std::string>&)>& edit) {
    const SafetensorsFile good = read_safetensors((dir / "good.safetensors").string());
    std::vector<TensorRef> refs;
    for (const auto& [n, t] : good.tensors) refs.push_back({n, t.dtype, t.shape, t.bytes.data()});
    auto meta = good.metadata;
    meta.erase("recur.checksum");
    edit(refs, meta);
    const std::string path = (dir / name).string();
    write_safetensors(path, refs, meta);
    return path;
  }

  void save_good() {
    Network<float> net(config());
    net.init(4);
    save_model((dir / "good.safetensors").string(), net, {{"recur.view", "rows"}});
  }
};

void expect_error(const std::string& path, const std::string& part) {
  try {
    load_checkpoint(path);  // version-1 files read through their layer form
    FAIL() << "no error for " << path;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, RoundTripIsExact) {
  Network<float> net(config());
  net.init(4);
  save_model((dir / "m.safetensors").string(), net, {{"recur.view", "cols"}});
  const LoadedCheckpoint m = load_checkpoint((dir / "m.safetensors").string());
  EXPECT_EQ(m.format, 1);
  EXPECT_EQ(m.model->params(), net.params());
  EXPECT_EQ(to_json(m.model->spec()), to_json(model_spec_from_config(net.config())));
  EXPECT_EQ(m.metadata.at("recur.view"), "cols");
}

TEST_F(CheckpointTest, ShapeNotMatchingTheConfig) {
  save_good();
  static const float big[1000] = {};
  expect_error(variant("shape.safetensors",
                       [](auto& refs, auto&) {
                         for (auto& r : refs)
                           if (r.name == "rnn.weight_hh_l1") {
                             r.shape = {18, 7};
                             r.data = big;
                           }
                       }),
               "tensor 'rnn.weight_hh_l1' has shape [18, 7] but the model config needs [18, 6]");
}

TEST_F(CheckpointTest, MissingAndUnexpectedTensors) {
  save_good();
  expect_error(variant("missing.safetensors",
                       [](auto& refs, auto&) {
                         std::erase_if(refs,
                                       [](const TensorRef& r) { return r.name == "head.bias"; });
                       }),
               "tensor 'head.bias' is missing");
  static const float extra[2] = {1, 2};
  expect_error(variant("extra.safetensors",
                       [](auto& refs, auto&) {
                         refs.push_back({"rnn.weight_ih_l2", DType::F32, {2}, extra});
                       }),
               "unexpected tensor 'rnn.weight_ih_l2'");
}

TEST_F(CheckpointTest, WrongDtypeAndBadConfig) {
  save_good();
  static const std::int32_t ints[10] = {};
  expect_error(variant("dtype.safetensors",
                       [](auto& refs, auto&) {
                         for (auto& r : refs)
                           if (r.name == "head.bias") {
                             r.dtype = DType::I32;
                             r.data = ints;
                           }
                       }),
               "has dtype I32, expected F32");
  expect_error(
      variant("noconfig.safetensors", [](auto&, auto& meta) { meta.erase("recur.model"); }),
      "not a recur model");
  expect_error(variant("badconfig.safetensors",
                       [](auto&, auto& meta) { meta["recur.model"] = "{\"cell\": 3}"; }),
               "model config in the metadata is invalid");
  expect_error(variant("negative.safetensors",
                       [](auto&, auto& meta) {
                         std::string j = meta["recur.model"];
                         j.replace(j.find("\"hidden\":6"), 10, "\"hidden\":-6");
                         meta["recur.model"] = j;
                       }),
               "--hidden: must be at least 1 and at most 65536, got -6");
}

}  // namespace
}  // namespace recur
