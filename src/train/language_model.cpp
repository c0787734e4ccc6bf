// The language model of recur pretrain (recur/pretrain.hpp): an embedding and a recurrent layer
// built by the layer registry, read out by one sampled-softmax output layer per direction.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/sampled_softmax.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/pretrain.hpp"

namespace recur {

LmDirection parse_lm_direction(const std::string& name) {
  if (name == "both") return LmDirection::both;
  if (name == "forward") return LmDirection::forward;
  if (name == "backward") return LmDirection::backward;
  throw Error("--direction", "must be both, forward or backward, got '" + name + "'");
}

std::string to_string(LmDirection d) {
  return d == LmDirection::both ? "both" : d == LmDirection::forward ? "forward" : "backward";
}

struct LanguageModel::Parts {
  std::unique_ptr<Layer<float>> embed, rnn;
  std::unique_ptr<PreparedWeights> prepared;
  // Per output half of the recurrent layer: the head's offsets in the arena and which language
  // model it is (0 forward: predicts the next word; 1 backward: the previous one).
  struct Head {
    std::size_t weight = 0, bias = 0;
    int lm = 0;
  };
  std::vector<Head> heads;
};

struct LanguageModel::Workspace {
  std::unique_ptr<LayerWorkspace<float>> embed, rnn;
  // The embedding's output and the recurrent layer's, their gradients, one head's rows.
  std::vector<float> e, r, de, dr, h, dh;
  kernels::SampledSoftmaxScratch<float> softmax;
  std::vector<std::size_t> rows;
  std::vector<std::int32_t> targets;
};

namespace {

// A batch of pieces, longest first, time-major: ids[t * B + b].
struct PieceBatch {
  std::vector<std::int32_t> ids;
  SeqInfo seq;
};

PieceBatch make_batch(std::vector<const std::vector<std::int32_t>*> pieces, bool reversed) {
  std::stable_sort(pieces.begin(), pieces.end(),
                   [](const auto* a, const auto* b) { return a->size() > b->size(); });
  std::vector<int> lengths;
  for (const auto* p : pieces) lengths.push_back(static_cast<int>(p->size()));
  PieceBatch batch;
  batch.seq = SeqInfo::from_lengths(lengths);
  const int B = batch.seq.batch;
  batch.ids.assign(static_cast<std::size_t>(batch.seq.steps) * B, Vocabulary::kPad);
  for (int b = 0; b < B; ++b) {
    const auto& p = *pieces[static_cast<std::size_t>(b)];
    const int n = static_cast<int>(p.size());
    for (int t = 0; t < n; ++t)
      batch.ids[static_cast<std::size_t>(t) * B + b] =
          p[static_cast<std::size_t>(reversed ? n - 1 - t : t)];
  }
  return batch;
}

// The rows of output half `half` that predict a word: (row in [steps * B], target id).
// A half that runs forward through `ids` predicts ids[t + 1]; the reverse half of a
// bidirectional layer predicts ids[t - 1].
void prediction_rows(const PieceBatch& batch, bool reverse_half, std::vector<std::size_t>& rows,
                     std::vector<std::int32_t>& targets) {
  rows.clear();
  targets.clear();
  const int B = batch.seq.batch;
  for (int b = 0; b < B; ++b) {
    const int n = batch.seq.lengths[static_cast<std::size_t>(b)];
    for (int t = reverse_half ? 1 : 0; t < (reverse_half ? n : n - 1); ++t) {
      rows.push_back(static_cast<std::size_t>(t) * B + b);
      const int source = reverse_half ? t - 1 : t + 1;
      targets.push_back(batch.ids[static_cast<std::size_t>(source) * B + b]);
    }
  }
}

}  // namespace

LanguageModel::LanguageModel(int vocab, int embed, int hidden, CellKind cell, LmDirection direction)
    : direction_(direction), vocab_(vocab), hidden_(hidden), parts_(std::make_unique<Parts>()) {
  LayerSpec e;
  e.type = "embedding";
  e.name = e.draw = "embed";
  e.vocab = vocab;
  e.size = embed;
  ActShape ids{ActKind::sequence, 0};
  ids.ids = true;
  parts_->embed = make_layer<float>(e, ids, "embed", layout_, "embedding");
  // The classifier's recurrent layer and initialisation (recur train's defaults).
  LayerSpec r;
  r.type = "recurrent";
  r.name = r.draw = "rnn";
  r.cell = cell;
  r.size = hidden;
  r.bidirectional = direction == LmDirection::both;
  r.init_recurrent.kind = auto_recurrent_init(cell);
  r.forget_bias = cell == CellKind::lstm ? 1.0 : 0.0;
  parts_->rnn = make_layer<float>(r, parts_->embed->output_shape(), "rnn", layout_, "recurrent");
  auto head = [&](const char* name, int lm) {
    Parts::Head h;
    h.weight = layout_.add(std::string("lm.") + name + ".weight", {vocab, hidden});
    h.bias = layout_.add(std::string("lm.") + name + ".bias", {vocab});
    h.lm = lm;
    parts_->heads.push_back(h);
  };
  if (direction != LmDirection::backward) head("forward", 0);
  if (direction != LmDirection::forward) head("backward", 1);
  params_.assign(layout_.total(), 0.f);
}

LanguageModel::~LanguageModel() = default;

void LanguageModel::init(std::uint64_t seed) {
  parts_->embed->init(params_.data(), seed);
  parts_->rnn->init(params_.data(), seed);
  Rng rng(seed ^ 0x6c6d68656164ull);  // "lmhead"
  const double a = 1.0 / std::sqrt(static_cast<double>(hidden_));
  for (const auto& h : parts_->heads) {
    float* w = params_.data() + h.weight;
    for (std::size_t i = 0; i < static_cast<std::size_t>(vocab_) * hidden_; ++i)
      w[i] = static_cast<float>(rng.uniform(-a, a));
    std::fill(params_.data() + h.bias, params_.data() + h.bias + vocab_, 0.f);
  }
  parts_->prepared.reset();
}

void LanguageModel::prepare(ThreadPool* pool) {
  auto& prepared = parts_->prepared;
  if (!prepared ||
      !parts_->rnn->prepare_into(params_.data(), PrepareFor::training, *prepared, pool))
    prepared = parts_->rnn->prepare(params_.data(), PrepareFor::training);
}

std::vector<std::pair<std::size_t, std::size_t>> LanguageModel::gradient_runs(
    const std::vector<std::int32_t>& words) const {
  struct Table {
    std::size_t offset, width;
  };
  // The embedding's table is the arena's first tensor; the heads' tensors come after the
  // recurrent layer's.
  const ParamInfo& embedding = layout_.entries().front();
  std::vector<Table> tables{{embedding.offset, embedding.size / static_cast<std::size_t>(vocab_)}};
  for (const auto& h : parts_->heads) {
    tables.push_back({h.weight, static_cast<std::size_t>(hidden_)});
    tables.push_back({h.bias, 1});
  }
  std::vector<std::pair<std::size_t, std::size_t>> taken, runs;
  for (const auto& t : tables) taken.emplace_back(t.offset, t.offset + t.width * vocab_);
  std::sort(taken.begin(), taken.end());
  std::size_t at = 0;
  for (const auto& [begin, end] : taken) {
    if (begin > at) runs.emplace_back(at, begin);
    at = std::max(at, end);
  }
  if (at < params_.size()) runs.emplace_back(at, params_.size());
  for (const auto& t : tables)
    for (const std::int32_t w : words) {
      const std::size_t begin = t.offset + static_cast<std::size_t>(w) * t.width;
      runs.emplace_back(begin, begin + t.width);
    }
  return runs;
}

void LanguageModel::WorkspaceDeleter::operator()(Workspace* ws) const {
  delete ws;
}

LanguageModel::WorkspacePtr LanguageModel::make_workspace() const {
  WorkspacePtr ws(new Workspace);
  ws->embed = parts_->embed->make_workspace();
  ws->rnn = parts_->rnn->make_workspace();
  return ws;
}

double LanguageModel::sampled_loss(const std::vector<const std::vector<std::int32_t>*>& pieces,
                                   const std::vector<std::int32_t>& cand,
                                   const std::vector<float>& logq, float scale, float* grads,
                                   Workspace* ws) const {
  if (pieces.empty()) return 0.0;
  WorkspacePtr own;
  if (!ws) {
    own = make_workspace();
    ws = own.get();
  }
  const PieceBatch batch = make_batch(pieces, direction_ == LmDirection::backward);
  const Layer<float>& embed = *parts_->embed;
  const Layer<float>& rnn = *parts_->rnn;
  LayerContext<float> ctx{params_.data(),   batch.seq.batch,  &batch.seq,
                          batch.ids.data(), grads != nullptr, nullptr};
  // The layers write every element of their outputs (and the recurrent layer of its input's
  // gradient), as a model's reused workspaces need; dr is zero but for the rows the heads
  // predict from.
  auto& [ews, rws, e, r, de, dr, h, dh, softmax, rows, targets] = *ws;
  e.resize(embed.output_size(ctx));
  r.resize(rnn.output_size(ctx));
  embed.forward(ctx, nullptr, nullptr, e.data(), ews.get());
  rnn.forward(ctx, parts_->prepared.get(), e.data(), r.data(), rws.get());
  const std::size_t width = static_cast<std::size_t>(directions()) * hidden_;
  if (grads) dr.assign(r.size(), 0.f);
  double loss = 0;
  for (std::size_t half = 0; half < parts_->heads.size(); ++half) {
    const auto& head = parts_->heads[half];
    prediction_rows(batch, half == 1, rows, targets);
    const int N = static_cast<int>(rows.size());
    h.resize(rows.size() * hidden_);
    for (int n = 0; n < N; ++n)
      std::copy_n(r.data() + rows[n] * width + half * hidden_, hidden_, h.data() + n * hidden_);
    if (grads) dh.resize(h.size());
    loss += kernels::sampled_softmax_loss<float>(
        h.data(), targets.data(), N, hidden_, params_.data() + head.weight,
        params_.data() + head.bias, cand.data(), static_cast<int>(cand.size()), logq.data(), scale,
        grads ? dh.data() : nullptr, grads ? grads + head.weight : nullptr,
        grads ? grads + head.bias : nullptr, softmax);
    if (!grads) continue;
    for (int n = 0; n < N; ++n)
      std::copy_n(dh.data() + n * hidden_, hidden_, dr.data() + rows[n] * width + half * hidden_);
  }
  if (grads) {
    de.resize(e.size());
    rnn.backward(ctx, parts_->prepared.get(), e.data(), r.data(), dr.data(), de.data(), grads,
                 rws.get());
    embed.backward(ctx, nullptr, nullptr, e.data(), de.data(), nullptr, grads, ews.get());
  }
  return loss;
}

void LanguageModel::full_loss(const std::vector<const std::vector<std::int32_t>*>& pieces,
                              double loss[2], std::int64_t count[2]) const {
  loss[0] = loss[1] = 0;
  count[0] = count[1] = 0;
  if (pieces.empty()) return;
  const PieceBatch batch = make_batch(pieces, direction_ == LmDirection::backward);
  LayerContext<float> ctx{params_.data(),   batch.seq.batch, &batch.seq,
                          batch.ids.data(), false,           nullptr};
  auto ews = parts_->embed->make_workspace();
  auto rws = parts_->rnn->make_workspace();
  std::vector<float> e(parts_->embed->output_size(ctx)), r(parts_->rnn->output_size(ctx));
  parts_->embed->forward(ctx, nullptr, nullptr, e.data(), ews.get());
  parts_->rnn->forward(ctx, parts_->prepared.get(), e.data(), r.data(), rws.get());
  const std::size_t width = static_cast<std::size_t>(directions()) * hidden_;
  std::vector<float> h, scratch;
  std::vector<std::size_t> rows;
  std::vector<std::int32_t> targets;
  for (std::size_t half = 0; half < parts_->heads.size(); ++half) {
    const auto& head = parts_->heads[half];
    prediction_rows(batch, half == 1, rows, targets);
    const int N = static_cast<int>(rows.size());
    h.resize(rows.size() * hidden_);
    for (int n = 0; n < N; ++n)
      std::copy_n(r.data() + rows[n] * width + half * hidden_, hidden_, h.data() + n * hidden_);
    loss[head.lm] += kernels::full_softmax_loss<float>(h.data(), targets.data(), N, hidden_,
                                                       params_.data() + head.weight,
                                                       params_.data() + head.bias, vocab_, scratch);
    count[head.lm] += N;
  }
}

std::vector<std::pair<std::string, const ParamInfo*>> LanguageModel::stored_tensors() const {
  std::vector<std::pair<std::string, const ParamInfo*>> out;
  for (const ParamInfo& p : layout_.entries()) {
    std::string name = p.name;
    if (direction_ == LmDirection::backward && name.rfind("rnn.", 0) == 0) name += "_reverse";
    out.emplace_back(name, &p);
  }
  return out;
}

}  // namespace recur
