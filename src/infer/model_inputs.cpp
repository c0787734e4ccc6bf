// What a checkpoint's metadata says about its input (image size and view, vocabulary) and the
// block-wise forward every batch of fixed-length samples goes through.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "kernels/gemm.hpp"
#include "recur/error.hpp"
#include "recur/predictor.hpp"

namespace recur {

bool is_image_model(const Metadata& metadata) {
  return metadata.count("recur.image_rows") > 0;
}

bool is_text_model(const Metadata& metadata) {
  return metadata.count("recur.vocab") > 0;
}

TextCodec text_codec(const Metadata& metadata, const std::string& path) {
  auto v = metadata.find("recur.vocab");
  auto t = metadata.find("recur.text");
  if (v == metadata.end() || t == metadata.end())
    throw Error(path, "not a text model: its metadata has no vocabulary");
  TextCodec c;
  c.vocab = Vocabulary::from_json(v->second, path);
  try {
    const auto j = nlohmann::json::parse(t->second);
    c.max_len = j.at("max_len").get<int>();
    c.truncate = parse_truncate(j.at("truncate").get<std::string>());
    c.class_names = j.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path, std::string("the text settings in the metadata are invalid: ") + e.what());
  } catch (const Error& e) {
    throw Error(path, std::string("the text settings in the metadata are invalid: ") + e.what());
  }
  if (c.max_len < 1) throw Error(path, "the text settings in the metadata are invalid: max_len");
  return c;
}

std::shared_ptr<const SequenceSource> image_model_source(const Model<float>& model,
                                                         const Metadata& metadata,
                                                         std::shared_ptr<const ImageSet> set,
                                                         const std::string& model_path) {
  auto number = [&](const std::string& key) {
    auto it = metadata.find(key);
    if (it == metadata.end()) throw Error(model_path, "metadata has no " + key);
    try {
      std::size_t used = 0;
      const long long v = std::stoll(it->second, &used);
      if (used != it->second.size() || v < 0) throw std::invalid_argument(key);
      return v;
    } catch (const std::exception&) {
      throw Error(model_path, "metadata " + key + " is not a number: '" + it->second + "'");
    }
  };
  const ActShape& input = model.spec().input;
  if (input.kind == ActKind::image) {
    // A whole-image model's size is in its input shape (the report's models have no image
    // metadata).
    RECUR_CHECK(input.features == 1, model_path,
                fmt::format("the model reads images of {} channels; recur's images have one",
                            input.features));
    RECUR_CHECK(set->rows == input.height && set->cols == input.width, model_path,
                fmt::format("model reads {}x{} images but the images in {} are {}x{}", input.height,
                            input.width, set->source, set->rows, set->cols));
    return std::make_shared<ImageSamples>(set);
  }
  const long long rows = number("recur.image_rows"), cols = number("recur.image_cols");
  auto v = metadata.find("recur.view");
  if (v == metadata.end()) throw Error(model_path, "metadata has no recur.view");
  ViewKind kind;
  try {
    kind = parse_view(v->second);
  } catch (const Error& e) {
    throw Error(model_path, "metadata recur.view: " + std::string(e.what()));
  }
  const std::uint64_t seed = static_cast<std::uint64_t>(number("recur.view_seed"));
  if (set->rows != rows || set->cols != cols) {
    const SequenceView trained =
        SequenceView::make(kind, static_cast<int>(rows), static_cast<int>(cols), seed);
    const SequenceView given = SequenceView::make(kind, set->rows, set->cols, seed);
    throw Error(model_path,
                fmt::format("model expects {} steps of {} features ({} view of {}x{} images) but "
                            "the images in {} are {}x{}, which the {} view reads as {} steps of "
                            "{} features",
                            trained.steps(), trained.features(), v->second, rows, cols, set->source,
                            set->rows, set->cols, v->second, given.steps(), given.features()));
  }
  const SequenceView view = SequenceView::make(kind, set->rows, set->cols, seed);
  RECUR_CHECK(view.features() == model.spec().input.features, model_path,
              fmt::format("the model reads {} features per step, its {} view gives {}",
                          model.spec().input.features, v->second, view.features()));
  return std::make_shared<ImageSequences>(set, view);
}

void forward_in_blocks(const Model<float>& model, const SequenceSource& source, float* probs,
                       float* logits) {
  const std::int64_t n_all = source.size();
  const int C = model.spec().num_classes;
  const ActShape shape = source.input_shape();
  const std::size_t per_step = shape.ids ? 1 : shape.per_row();
  // Samples of varied lengths run longest first in blocks of 64 (as packed sequences: each block
  // is as long as its longest sample); equal lengths in their order, in blocks of 256.
  std::vector<std::int64_t> order(static_cast<std::size_t>(n_all));
  for (std::int64_t i = 0; i < n_all; ++i) order[static_cast<std::size_t>(i)] = i;
  bool varied = false;
  for (std::int64_t i = 0; i < n_all && !varied; ++i)
    varied = source.length(i) != source.max_length();
  if (varied)
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
      return source.length(a) > source.length(b);
    });
  const int block = varied ? 64 : 256;
  // BLAS on this thread alone: its own threads would split the products another way, and the
  // command line and the Python module must agree bit for bit.
  kernels::blas_single_threaded();
  ModelWorkspace<float> ws;
  std::vector<float> x;
  std::vector<std::int32_t> ids;
  std::vector<std::uint8_t> pixels;
  std::vector<int> lengths;
  const bool reads_pixels = model.reads_pixels();
  for (std::int64_t start = 0; start < n_all; start += block) {
    const int n = static_cast<int>(std::min<std::int64_t>(block, n_all - start));
    const std::int64_t* idx = order.data() + start;
    lengths.resize(static_cast<std::size_t>(n));
    for (int b = 0; b < n; ++b) lengths[static_cast<std::size_t>(b)] = source.length(idx[b]);
    const SeqInfo seq =
        varied ? SeqInfo::from_lengths(lengths) : SeqInfo::fixed(source.max_length(), n);
    const std::size_t elements = static_cast<std::size_t>(seq.steps) * n * per_step;
    ModelInput<float> in;
    in.batch = n;
    in.seq = &seq;
    if (shape.ids) {
      ids.assign(elements, 0);
      source.fill(idx, n, seq, ids.data(), nullptr);
      in.ids = ids.data();
    } else if (reads_pixels &&
               (pixels.resize(elements), source.fill_pixels(idx, n, seq, pixels.data()))) {
      in.pixels = pixels.data();  // an int8 model reads image bytes as they are
    } else {
      x.assign(elements, 0.f);
      source.fill(idx, n, seq, nullptr, x.data());
      in.x = x.data();
    }
    const float* out = model.forward(in, ws, false);
    for (int b = 0; b < n; ++b) {
      const std::size_t row = static_cast<std::size_t>(idx[b]) * C;
      const float* l = out + static_cast<std::size_t>(b) * C;
      std::copy(l, l + C, logits + row);
      softmax_probabilities(l, C, probs + row);
    }
  }
}

}  // namespace recur
