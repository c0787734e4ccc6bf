// Predictor: load once, classify batches (images, float sequences, texts). The streaming side is
// in stream.cpp.
#include "recur/predictor.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "infer/stream.hpp"
#include "kernels/gemm.hpp"
#include "kernels/int8_gemm.hpp"
#include "recur/error.hpp"
#include "recur/image.hpp"

namespace recur {

std::string to_string(InputKind kind) {
  switch (kind) {
    case InputKind::image_sequence:
      return "image_sequence";
    case InputKind::whole_image:
      return "whole_image";
    case InputKind::text:
      return "text";
    case InputKind::sequence:
      return "sequence";
  }
  return "sequence";
}

namespace {

int image_side(const Metadata& metadata, const std::string& key, const std::string& path) {
  auto it = metadata.find(key);
  int v = 0;
  std::size_t used = 0;
  try {
    if (it != metadata.end()) v = std::stoi(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (it == metadata.end() || used != it->second.size() || v < 1 || v > kMaxImageSide)
    throw Error(path, "metadata " + key + " is missing or invalid");
  return v;
}

Predictions empty_predictions(std::int64_t n, int C) {
  Predictions r;
  r.count = n;
  r.classes = C;
  r.labels.assign(static_cast<std::size_t>(n), 0);
  r.probabilities.assign(static_cast<std::size_t>(n) * C, 0.f);
  r.logits.assign(r.probabilities.size(), 0.f);
  return r;
}

// labels[i] = the first largest logit of row i.
void fill_labels(Predictions& r) {
  for (std::int64_t i = 0; i < r.count; ++i) {
    const float* z = r.logits.data() + i * r.classes;
    int best = 0;
    for (int j = 1; j < r.classes; ++j)
      if (z[j] > z[best]) best = j;
    r.labels[static_cast<std::size_t>(i)] = best;
  }
}

}  // namespace

std::string to_string(InferPrecision precision) {
  return precision == InferPrecision::int8 ? "int8" : "fp32";
}

InferPrecision parse_infer_precision(const std::string& name, const std::string& flag) {
  if (name == "fp32") return InferPrecision::fp32;
  if (name == "int8") return InferPrecision::int8;
  throw Error(flag, "unknown precision '" + name + "' (fp32, int8)");
}

std::string int8_kernel_name() {
  return kernels::to_string(kernels::int8_kernel());
}

Predictor::Predictor(const std::string& path) : Predictor(path, PredictorOptions{}) {}

Predictor::Predictor(const std::string& path, const PredictorOptions& options)
    : path_(path), precision_(options.precision) {
  LoadedCheckpoint loaded = load_checkpoint(path);
  model_ = std::move(loaded.model);
  metadata_ = std::move(loaded.metadata);
  format_ = loaded.format;
  const ActShape& in = model_->spec().input;
  if (in.kind == ActKind::image || is_image_model(metadata_)) {
    kind_ = in.kind == ActKind::image ? InputKind::whole_image : InputKind::image_sequence;
    rows_ = kind_ == InputKind::whole_image ? in.height
                                            : image_side(metadata_, "recur.image_rows", path);
    cols_ = kind_ == InputKind::whole_image ? in.width
                                            : image_side(metadata_, "recur.image_cols", path);
    // The view and the model's input are checked once, on an empty set of the model's size.
    auto probe = std::make_shared<ImageSet>();
    probe->rows = rows_;
    probe->cols = cols_;
    probe->source = "images of the model's size";
    const auto source = image_model_source(*model_, metadata_, probe, path);
    if (kind_ == InputKind::image_sequence) steps_ = source->max_length();
  } else if (is_text_model(metadata_) || in.ids) {
    kind_ = InputKind::text;
    text_ = std::make_unique<TextCodec>(text_codec(metadata_, path));
  } else {
    kind_ = InputKind::sequence;
  }
  // recur owns the threading: BLAS runs on the calling thread, so results never depend on how
  // BLAS would split a product between its threads.
  kernels::blas_single_threaded();
  const bool int8 = precision_ == InferPrecision::int8;
  model_->prepare(int8 ? PrepareFor::int8 : PrepareFor::inference);
  stream_ = plan_stream(*model_, path_, not_streamable_, int8);
}

Predictor::~Predictor() = default;
Predictor::Predictor(Predictor&&) noexcept = default;
Predictor& Predictor::operator=(Predictor&&) noexcept = default;

int Predictor::num_classes() const {
  return model_->spec().num_classes;
}

int Predictor::features() const {
  return model_->spec().input.features;
}

std::string Predictor::view_name() const {
  if (kind_ == InputKind::whole_image) return "image";
  auto v = metadata_.find("recur.view");
  return v == metadata_.end() ? std::string() : v->second;
}

const TextCodec& Predictor::text() const {
  if (!text_) throw Error(path_, "not a text model: its metadata has no vocabulary");
  return *text_;
}

std::shared_ptr<const SequenceSource> Predictor::image_source(
    std::shared_ptr<const ImageSet> set) const {
  RECUR_CHECK(kind_ == InputKind::image_sequence || kind_ == InputKind::whole_image, path_,
              "not an image model; it reads " + to_string(kind_));
  return image_model_source(*model_, metadata_, std::move(set), path_);
}

Predictions Predictor::predict_images(const std::uint8_t* pixels, std::int64_t n) const {
  RECUR_CHECK(n >= 0, "images", "the count must not be negative");
  auto set = std::make_shared<ImageSet>();
  set->source = "images";
  set->count = n;
  set->rows = rows_;
  set->cols = cols_;
  set->num_classes = num_classes();
  set->pixels.assign(pixels, pixels + n * rows_ * cols_);
  set->labels.assign(static_cast<std::size_t>(n), 0);
  const auto source = image_source(set);
  Predictions r = empty_predictions(n, num_classes());
  forward_in_blocks(*model_, *source, r.probabilities.data(), r.logits.data());
  fill_labels(r);
  return r;
}

Predictions Predictor::predict_sequences(const float* x, std::int64_t n, int steps,
                                         const int* lengths) const {
  RECUR_CHECK(kind_ == InputKind::sequence || kind_ == InputKind::image_sequence, "x",
              path_ + " reads " + to_string(kind_) + ", not float sequences");
  RECUR_CHECK(n >= 0 && steps >= 1, "x",
              fmt::format("needs a count >= 0 and steps >= 1, got {} and {}", n, steps));
  const int F = features();
  bool full = true;
  for (std::int64_t i = 0; lengths && i < n; ++i) {
    RECUR_CHECK(lengths[i] >= 1 && lengths[i] <= steps, "lengths",
                fmt::format("lengths[{}] is {}, outside [1, {}]", i, lengths[i], steps));
    full = full && lengths[i] == steps;
  }
  if (kind_ == InputKind::image_sequence)
    RECUR_CHECK(
        steps == steps_ && full, "x",
        fmt::format("the model reads sequences of exactly {} steps ({} view of {}x{} "
                    "images), got {} steps{}",
                    steps_, view_name(), rows_, cols_, steps, full ? "" : " with shorter lengths"));
  const std::int64_t per_sample = static_cast<std::int64_t>(steps) * F;
  for (std::int64_t k = 0; k < n * per_sample; ++k)
    if (!std::isfinite(x[k]))
      throw Error("x", fmt::format("x[{}, {}, {}] is {}: inputs must be finite", k / per_sample,
                                   (k / F) % steps, k % F, x[k]));
  Predictions r = empty_predictions(n, num_classes());
  auto set = std::make_shared<SequenceSet>();
  static const std::string kSource = "x";  // a literal here trips GCC 12's -Wrestrict
  set->source = kSource;
  set->count = n;
  set->steps = steps;
  set->features = F;
  set->num_classes = num_classes();
  set->x.assign(x, x + n * per_sample);
  if (lengths)
    set->lengths.assign(lengths, lengths + n);
  else
    set->lengths.assign(static_cast<std::size_t>(n), steps);
  set->labels.assign(static_cast<std::size_t>(n), 0);
  forward_in_blocks(*model_, ArraySequences(set), r.probabilities.data(), r.logits.data());
  fill_labels(r);
  return r;
}

std::string Predictor::text_problem(const std::string& text) const {
  std::size_t bad = 0;
  if (!valid_utf8(text, &bad)) return fmt::format("has invalid UTF-8 at byte {}", bad);
  if (text.size() > kMaxTextBytes) return fmt::format("is longer than {} bytes", kMaxTextBytes);
  if (text.empty()) return "is empty: there is nothing to classify";
  if (tokenize(text).empty()) return "holds only whitespace: there is nothing to classify";
  return {};
}

Predictions Predictor::predict_texts(const std::vector<std::string>& texts) const {
  const TextCodec& codec = text();
  for (std::size_t i = 0; i < texts.size(); ++i)
    if (const std::string problem = text_problem(texts[i]); !problem.empty())
      throw Error("texts", fmt::format("text {} {}", i + 1, problem));
  TextSet set;
  set.source = "texts";
  set.num_classes = num_classes();
  set.texts = texts;
  set.labels.assign(texts.size(), 0);
  const TokenSequences tokens(set, codec.vocab, codec.max_len, codec.truncate);
  Predictions r = empty_predictions(static_cast<std::int64_t>(texts.size()), num_classes());
  forward_in_blocks(*model_, tokens, r.probabilities.data(), r.logits.data());
  fill_labels(r);
  return r;
}

std::vector<std::int32_t> Predictor::text_tokens(const std::string& text) const {
  const TextCodec& codec = this->text();
  std::vector<std::int32_t> ids;
  for (const std::string& token : tokenize(text)) ids.push_back(codec.vocab.id(token));
  return ids;
}

// ---- BatchRunner ----

BatchRunner::BatchRunner(const Predictor& predictor, int threads)
    // SequenceRunner calls only the model's const members (forward, backward), and inference
    // never reaches backward: the shared model stays unchanged.
    : runner_(std::make_unique<SequenceRunner>(const_cast<Model<float>&>(predictor.model()),
                                               threads)) {}

BatchRunner::~BatchRunner() = default;

EvalResult BatchRunner::evaluate(const SequenceSource& source, int batch) {
  return evaluate_sequences(*runner_, source, batch);
}

void BatchRunner::infer(const SequenceSource& source, const std::vector<std::int64_t>& idx,
                        std::int32_t* predictions, float* probs) {
  runner_->infer_batch(source, idx, predictions, probs);
}

}  // namespace recur
