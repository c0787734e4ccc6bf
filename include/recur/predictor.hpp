// Inference on a trained checkpoint: load it once, then classify batches of images, float
// sequences or texts, or read a sequence step by step with the state carried between calls.
//
//   Predictor p("runs/lstm/best.safetensors");          // either checkpoint format
//   Predictions r = p.predict_images(pixels, n);          // uint8 [n, rows, cols]
//   StreamState s = p.start();                            // unidirectional recurrent models
//   p.feed_pixels(s, row, 1); ... p.read(s).probabilities // the prediction so far
//
// Results are those of `recur predict --json`, `recur eval` and Python's predict, bit for bit:
// those front ends run through this class.
//
// Threading: a Predictor is immutable after construction (weights loaded and packed once) and
// may be shared by any number of threads; every const member makes its own workspace, so
// concurrent calls give exactly the results of serial ones. A StreamState belongs to one thread
// at a time (move it between threads freely, never use it from two at once). A BatchRunner
// holds a thread pool and buffers: one per calling thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "recur/checkpoint.hpp"
#include "recur/data.hpp"
#include "recur/fit.hpp"
#include "recur/layers.hpp"
#include "recur/text.hpp"
#include "recur/train.hpp"

namespace recur {

// ---- what a checkpoint says about its input ----

// A model of images trained by recur train (its metadata has recur.image_rows).
bool is_image_model(const Metadata& metadata);
// A model of texts (its metadata has the vocabulary, recur.vocab).
bool is_text_model(const Metadata& metadata);

// How a text model turns text into ids: read back from a checkpoint's metadata.
struct TextCodec {
  Vocabulary vocab;
  int max_len = 400;
  Truncate truncate = Truncate::head;
  std::vector<std::string> class_names;
};
// Throws Error(path, ...) when the checkpoint has no (valid) vocabulary: not a text model.
TextCodec text_codec(const Metadata& metadata, const std::string& path);

// The images of `set` as an image model reads them: whole images, or sequences through the
// view in its metadata. Throws Error(model_path or set->source, ...) when the image size differs
// from the model's or the metadata is invalid.
std::shared_ptr<const SequenceSource> image_model_source(const Model<float>& model,
                                                         const Metadata& metadata,
                                                         std::shared_ptr<const ImageSet> set,
                                                         const std::string& model_path);

// Logits and softmax probabilities [N, C] of every sample of `source` (images, sequences or
// token ids), in the source's order, on this thread: samples of one length in blocks of 256,
// of varied lengths longest first in blocks of 64 (packed sequences). With `model` prepared for
// inference (Model::prepare(PrepareFor::inference), as the Predictor does) each sample's result
// is the same bits whatever else is in its block; unprepared, each call packs for itself.
void forward_in_blocks(const Model<float>& model, const SequenceSource& source, float* probs,
                       float* logits);

// Probabilities come from softmax_probabilities (recur/model.hpp), as everywhere.

// ---- the predictor ----

enum class InputKind {
  image_sequence,  // images read step by step through a view (rows, cols, pixels, permuted)
  whole_image,     // images as one input [1, rows, cols] (MLP, CNN)
  text,            // token ids of texts, tokenized by the checkpoint's vocabulary
  sequence,        // float feature sequences [steps, features] with lengths (.npy-trained)
};
std::string to_string(InputKind kind);

// Results of a batch, row-major; row i belongs to input i.
struct Predictions {
  std::int64_t count = 0;
  int classes = 0;
  std::vector<std::int32_t> labels;  // [count]: the likeliest class (first largest logit)
  std::vector<float> probabilities;  // [count, classes]
  std::vector<float> logits;         // [count, classes]
};

// The state of one sequence read step by step: per recurrent layer h (and c for LSTM) of each
// stacked layer, the pooling accumulator (last step, running sum, or running maximum) and the
// steps read so far. Made by Predictor::start; only the predictor that made it may feed it.
struct StreamState {
  std::int64_t steps = 0;  // timesteps fed so far
  struct Impl;
  std::shared_ptr<Impl> impl;  // opaque; copying a StreamState shares it (use clone())
  StreamState clone() const;   // an independent copy, e.g. to try a continuation
};

// One state's next k >= 1 timesteps for Predictor::feed_many; exactly one of x, pixels, ids is
// set, as feed, feed_pixels or feed_tokens would take it.
struct StreamFeed {
  StreamState* state = nullptr;
  const float* x = nullptr;              // [k, features()]
  const std::uint8_t* pixels = nullptr;  // [k, features()], the view's step order
  const std::int32_t* ids = nullptr;     // [k] token ids
  int k = 0;
};

// The running prediction of a stream.
struct StreamReading {
  std::int64_t steps = 0;
  std::int32_t label = 0;
  std::vector<float> probabilities;  // [classes]
  std::vector<float> logits;         // [classes]
};

// ---- precision ----

// How a predictor computes: fp32 (the default), or int8: the recurrent and linear layers' weights
// quantized per output row, their inputs per row as each step arrives, int32 sums scaled back to
// fp32 (Model::prepare(PrepareFor::int8); docs/INFERENCE.md). Other layers stay fp32.
enum class InferPrecision { fp32, int8 };
std::string to_string(InferPrecision precision);
// "fp32" or "int8"; anything else throws Error(flag, ...).
InferPrecision parse_infer_precision(const std::string& name,
                                     const std::string& flag = "--precision");
// The int8 kernel this CPU runs ("avx512_vnni", "avx_vnni"; "portable" where it has neither:
// plain C++, the same results, slower than fp32).
std::string int8_kernel_name();

struct PredictorOptions {
  InferPrecision precision = InferPrecision::fp32;
};

class Predictor {
 public:
  // Loads either checkpoint format (version 1 through its layer form). Throws Error(path, ...)
  // for a file that is not a valid recur model or whose input metadata is invalid.
  explicit Predictor(const std::string& path);
  Predictor(const std::string& path, const PredictorOptions& options);
  ~Predictor();
  Predictor(Predictor&&) noexcept;
  Predictor& operator=(Predictor&&) noexcept;

  const std::string& path() const { return path_; }
  const Model<float>& model() const { return *model_; }
  const Metadata& metadata() const { return metadata_; }
  int format() const { return format_; }  // 1: a fixed-shape checkpoint, 2: a layer list
  InferPrecision precision() const { return precision_; }
  InputKind input_kind() const { return kind_; }
  int num_classes() const;
  // Image models: the image size; sequence models: the steps and features per step they read
  // (steps: the view's for images, 0 for text and arrays, whose lengths vary).
  int image_rows() const { return rows_; }
  int image_cols() const { return cols_; }
  int steps() const { return steps_; }
  int features() const;
  std::string view_name() const;  // "image" for whole images, "" for text and arrays
  // Text models only (else Error(path, "not a text model")).
  const TextCodec& text() const;

  // uint8 images [n, image_rows, image_cols] (image models), read as `recur predict` reads an
  // IDX file: through the view, pixels scaled to [0, 1]; computed in blocks of 256.
  Predictions predict_images(const std::uint8_t* pixels, std::int64_t n) const;
  // float sequences x [n, steps, features()] with lengths [n] (each in [1, steps]; null = all
  // steps). Models of image sequences take exactly their view's steps, all full length. Runs as
  // forward_in_blocks; a sample's result equals its result alone, bit for bit. Throws
  // Error("x", ...) / Error("lengths", ...).
  Predictions predict_sequences(const float* x, std::int64_t n, int steps,
                                const int* lengths = nullptr) const;
  // Texts (text models), each tokenized as training did, run longest first in blocks of 64; a
  // text's result never depends on the others (each row's arithmetic is its own), bit for bit
  // the result of predicting it alone. Throws Error("texts", "text N " + text_problem) (N from 1)
  // for the first text it cannot read.
  Predictions predict_texts(const std::vector<std::string>& texts) const;
  // Why predict_texts cannot read `text`, as a clause ("is empty: there is nothing to classify",
  // "holds only whitespace: ...", "has invalid UTF-8 at byte N", "is longer than N bytes"); ""
  // when it can.
  std::string text_problem(const std::string& text) const;
  // An image set as this model reads it (for BatchRunner): Error as image_model_source.
  std::shared_ptr<const SequenceSource> image_source(std::shared_ptr<const ImageSet> set) const;

  // ---- streaming ----
  // Throws Error(path, reason) when the model cannot be read step by step: it reads whole
  // images, has a bidirectional layer (the reverse direction starts at the end), a layer that
  // looks across steps (conv1d) or untied weights (one set per position), or no pooling.
  void check_streamable() const;
  bool streamable() const;
  // A fresh state (zero h and c, nothing pooled yet). Throws as check_streamable.
  StreamState start() const;
  // Feeds k >= 1 timesteps and carries the state on; each step costs one timestep's arithmetic.
  //   feed:        float features x [k, features()] (sequence and image-sequence models)
  //   feed_pixels: uint8 [k, features()] in the view's step order (image-sequence models),
  //                scaled to [0, 1] as the view scales them. An int8 model whose first layer is
  //                recurrent reads the bytes themselves (p with the scale 1 / 255: exact), as
  //                predict_images does, where feed's floats are quantized per row: pixels fed as
  //                floats may differ from feed_pixels in their last bits.
  //   feed_tokens: token ids [k], each in [0, vocabulary size) (text models)
  // Feeding a sequence in pieces ends where feeding it whole does: the logits equal those of
  // predicting it as a batch of one (1e-5; bit for bit where BLAS splits no product by rows).
  // Throws Error("feed", ...) for a wrong input kind, k < 1 or an id out of range; the state
  // is unchanged then.
  void feed(StreamState& state, const float* x, int k) const;
  void feed_pixels(StreamState& state, const std::uint8_t* steps, int k) const;
  void feed_tokens(StreamState& state, const std::int32_t* ids, int k) const;
  // Feeds several states at once, one timestep at a time: step t runs the rows of every state
  // with more than t steps to go together through the prepared weights, so n sessions fed one
  // step each cost one batched step instead of n. Each state ends bit for bit where feeding it
  // alone (feed / feed_pixels / feed_tokens with its k) ends: rows never depend on their batch
  // (an int8 model that reads pixel bytes runs the pixel feeds and the float feeds as two calls).
  // Contract: the states are distinct, made by this predictor, and held by the calling thread
  // for the call (the first one's scratch serves the whole batch); the predictor stays shareable.
  // Every feed is checked first: Error("feed", "feeds[i]: ...") (a wrong input kind, k < 1, an
  // id out of range, a state given twice) leaves every state unchanged.
  void feed_many(std::span<const StreamFeed> feeds) const;
  // One image [image_rows, image_cols] as its view's steps, floats [steps(), features()]
  // (image-sequence models): what feed takes, so an image can be fed a few steps at a time.
  std::vector<float> image_steps(const std::uint8_t* image) const;
  // The tokens of a text as a text model reads them, without truncation (text models).
  std::vector<std::int32_t> text_tokens(const std::string& text) const;
  // The prediction after the steps fed so far. Throws Error("read", ...) before the first feed.
  StreamReading read(const StreamState& state) const;

  struct Stream;  // the streaming plan (layers before pooling, pooling, head)

 private:
  std::string path_;
  std::unique_ptr<Model<float>> model_;
  Metadata metadata_;
  int format_ = 2;
  InputKind kind_ = InputKind::sequence;
  int rows_ = 0, cols_ = 0, steps_ = 0;
  std::unique_ptr<TextCodec> text_;
  std::unique_ptr<Stream> stream_;  // null when not streamable
  std::string not_streamable_;      // why, when stream_ is null
  InferPrecision precision_ = InferPrecision::fp32;
};

// Batches split across threads (recur eval, recur report): a SequenceRunner over the
// predictor's model, its pool and per-thread buffers. One per calling thread; the predictor
// must outlive it. Results as recur::evaluate_sequences / SequenceRunner::infer_batch.
class BatchRunner {
 public:
  BatchRunner(const Predictor& predictor, int threads);
  ~BatchRunner();
  // Accuracy, loss and per-sample predictions/probabilities, `batch` samples per pass.
  EvalResult evaluate(const SequenceSource& source, int batch);
  // predictions[k] (and probs[k * C ...] when non-null) for sample idx[k].
  void infer(const SequenceSource& source, const std::vector<std::int64_t>& idx,
             std::int32_t* predictions, float* probs);

 private:
  std::unique_ptr<SequenceRunner> runner_;
};

}  // namespace recur
