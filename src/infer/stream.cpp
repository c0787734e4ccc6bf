// Streaming inference: start a state, feed timesteps, read the running prediction.
#include "infer/stream.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <unordered_set>

#include "recur/error.hpp"

namespace recur {

struct StreamState::Impl {
  const Model<float>* model = nullptr;
  const Predictor::Stream* plan = nullptr;
  struct StageState {
    std::vector<float> h, c;  // [layers, hidden]: the state after the last step fed
    nn::StackWorkspace<float> stack_ws;
    std::unique_ptr<LayerWorkspace<float>> layer_ws;
  };
  std::vector<StageState> stages;
  std::vector<float> pooled;  // last: the last step's output; mean: the running sum; max: maximum
  std::vector<std::unique_ptr<LayerWorkspace<float>>> head_ws;  // layers after the pooling
  std::vector<float> step_a, step_b, vec_a, vec_b;              // scratch

  // A state of `plan` with zero h, c and nothing pooled.
  static std::shared_ptr<Impl> fresh(const Model<float>& model, const Predictor::Stream& plan) {
    auto s = std::make_shared<Impl>();
    s->model = &model;
    s->plan = &plan;
    for (const Predictor::Stream::Stage& stage : plan.stages) {
      StageState st;
      st.h.assign(stage.state_size, 0.f);
      if (stage.lstm) st.c.assign(stage.state_size, 0.f);
      st.layer_ws = model.layer(stage.layer).make_workspace();
      s->stages.push_back(std::move(st));
    }
    s->pooled.assign(
        static_cast<std::size_t>(plan.pooled) * (plan.pooling == Pooling::maxmean ? 2 : 1), 0.f);
    for (std::size_t i = plan.pool; i < model.num_layers(); ++i)
      s->head_ws.push_back(model.layer(i).make_workspace());
    return s;
  }
};

StreamState StreamState::clone() const {
  StreamState copy;
  copy.steps = steps;
  if (!impl) return copy;
  copy.impl = Impl::fresh(*impl->model, *impl->plan);
  for (std::size_t k = 0; k < impl->stages.size(); ++k) {
    copy.impl->stages[k].h = impl->stages[k].h;
    copy.impl->stages[k].c = impl->stages[k].c;
  }
  copy.impl->pooled = impl->pooled;
  return copy;
}

namespace {

// Why layer i (before the pooling) cannot run step by step, or "".
std::string unstreamable_layer(const Model<float>& model, std::size_t i) {
  const LayerSpec& l = model.layer(i).spec();
  const std::string which =
      fmt::format("layer {} ({} '{}')", i, l.type, model.spec().layer_name(i));
  if (l.type == "recurrent") {
    if (l.bidirectional)
      return which +
             " is bidirectional: its reverse direction starts at the sequence's last step, which "
             "a stream has not reached yet";
    if (l.untied_steps > 0)
      return which + " has untied weights, one set per position of a sequence of exactly " +
             std::to_string(l.untied_steps) + " steps";
    return "";
  }
  if (l.type == "embedding" || l.type == "linear" || l.type == "relu" || l.type == "tanh" ||
      l.type == "dropout")
    return "";
  return which + " looks across timesteps, so a step's output depends on steps not yet fed";
}

}  // namespace

std::unique_ptr<Predictor::Stream> plan_stream(const Model<float>& model, const std::string& path,
                                               std::string& why_not, bool int8) {
  const ModelSpec& spec = model.spec();
  if (spec.input.kind != ActKind::sequence) {
    why_not = "the model reads whole images at once, not a sequence of timesteps";
    return nullptr;
  }
  std::size_t pool = model.num_layers();
  for (std::size_t i = 0; i < model.num_layers() && pool == model.num_layers(); ++i)
    if (model.layer(i).spec().type == "pool") pool = i;
  if (pool == model.num_layers()) {
    why_not = "the model has no pooling layer to carry a running prediction";
    return nullptr;
  }
  auto plan = std::make_unique<Predictor::Stream>();
  plan->pool = pool;
  plan->pooling = model.layer(pool).spec().pooling;
  plan->pooled = model.layer(pool).input_shape().features;
  for (std::size_t i = 0; i < pool; ++i) {
    if (std::string why = unstreamable_layer(model, i); !why.empty()) {
      why_not = why;
      return nullptr;
    }
    Predictor::Stream::Stage stage;
    stage.layer = i;
    const Layer<float>& layer = model.layer(i);
    if (layer.spec().type == "recurrent") {
      const LayerSpec& l = layer.spec();
      nn::StackSpec s;
      s.cell = l.cell;
      s.input_size = layer.input_shape().features;
      s.hidden = l.size;
      s.layers = l.layers;
      s.directions = 1;
      s.bias = l.bias;
      s.dropout = l.dropout;
      ParamLayout own;
      stage.stack = std::make_unique<nn::RecurrentStack<float>>(s, own, spec.layer_name(i) + ".");
      // The stack's tensors lie in the model's arena in the order it registers them: one base
      // offset maps its layout onto the model's.
      const ParamInfo* first = model.layout().find(own.entries().front().name);
      RECUR_CHECK(first != nullptr, path, "internal: recurrent tensors not found");
      const std::size_t base = first->offset;
      for (const ParamInfo& e : own.entries()) {
        const ParamInfo* m = model.layout().find(e.name);
        RECUR_CHECK(m && m->offset == base + e.offset && m->size == e.size, path,
                    "internal: tensor " + e.name + " is not where the recurrent layer keeps it");
      }
      stage.params = model.params().data() + base;
      // The kernels of whole-sequence inference, so that a stream ends on the same bits.
      if (int8)
        stage.stack->prepare_int8(stage.params, stage.packed);
      else
        stage.stack->prepare(stage.params, stage.packed, false);
      stage.state_size = static_cast<std::size_t>(l.layers) * l.size;
      stage.lstm = l.cell == CellKind::lstm;
    }
    plan->stages.push_back(std::move(stage));
  }
  plan->reads_pixels = !plan->stages.empty() && plan->stages[0].stack &&
                       plan->stages[0].stack->reads_pixels(plan->stages[0].packed);
  return plan;
}

void Predictor::check_streamable() const {
  if (!stream_) throw Error(path_, "cannot be read step by step: " + not_streamable_);
}

bool Predictor::streamable() const {
  return stream_ != nullptr;
}

StreamState Predictor::start() const {
  check_streamable();
  StreamState s;
  s.impl = StreamState::Impl::fresh(*model_, *stream_);
  return s;
}

namespace {

// Pools one step's output `row` [F] into a state's accumulator, as the pooling layer does.
void pool_step(Pooling pooling, const float* row, int F, bool first, float* acc) {
  switch (pooling) {
    case Pooling::last:
      std::memcpy(acc, row, sizeof(float) * F);
      break;
    case Pooling::mean:
      if (first) std::fill(acc, acc + F, 0.f);
      for (int f = 0; f < F; ++f) acc[f] += row[f];
      break;
    case Pooling::max:
      if (first) {
        std::memcpy(acc, row, sizeof(float) * F);
      } else {
        for (int f = 0; f < F; ++f)
          if (row[f] > acc[f]) acc[f] = row[f];
      }
      break;
    case Pooling::maxmean:  // [max F, running sum F]
      pool_step(Pooling::max, row, F, first, acc);
      pool_step(Pooling::mean, row, F, first, acc + F);
      break;
  }
}

// Runs k new timesteps (x [k, F] or ids [k]) through the layers before the pooling and adds
// them to the pooling accumulator.
// `pixels` [k, F] (with x null) only when plan.reads_pixels.
void feed_steps(const Model<float>& model, const Predictor::Stream& plan, StreamState& state,
                const float* x, const std::int32_t* ids, int k,
                const std::uint8_t* pixels = nullptr) {
  StreamState::Impl& st = *state.impl;
  const SeqInfo seq = SeqInfo::fixed(k, 1);
  const LayerContext<float> ctx{model.params().data(), 1, &seq, ids, false, nullptr};
  const float* in = x;
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    const Predictor::Stream::Stage& stage = plan.stages[s];
    StreamState::Impl::StageState& ss = st.stages[s];
    if (stage.stack) {
      stage.stack->forward(stage.params, in, k, 1, ss.h.data(), stage.lstm ? ss.c.data() : nullptr,
                           false, nullptr, ss.stack_ws, nullptr, &stage.packed,
                           s == 0 ? pixels : nullptr);
      std::copy(ss.stack_ws.hn.begin(), ss.stack_ws.hn.begin() + ss.h.size(), ss.h.begin());
      if (stage.lstm)
        std::copy(ss.stack_ws.cn.begin(), ss.stack_ws.cn.begin() + ss.c.size(), ss.c.begin());
      in = ss.stack_ws.layers.back().out.data();
      continue;
    }
    const Layer<float>& layer = model.layer(stage.layer);
    std::vector<float>& out = in == st.step_a.data() ? st.step_b : st.step_a;
    out.resize(layer.output_size(ctx));
    layer.forward(ctx, model.prepared(stage.layer), in, out.data(), ss.layer_ws.get());
    in = out.data();
  }
  // The pooling layer's arithmetic, one step at a time in the same order.
  const int F = plan.pooled;
  for (int t = 0; t < k; ++t)
    pool_step(plan.pooling, in + static_cast<std::size_t>(t) * F, F, state.steps == 0 && t == 0,
              st.pooled.data());
  state.steps += k;
}

void check_state(const StreamState& state, const Predictor::Stream* plan, const char* what) {
  RECUR_CHECK(state.impl && state.impl->plan == plan, what,
              "the state was not made by this predictor's start()");
}

}  // namespace

void Predictor::feed(StreamState& state, const float* x, int k) const {
  check_streamable();
  check_state(state, stream_.get(), "feed");
  RECUR_CHECK(kind_ == InputKind::sequence || kind_ == InputKind::image_sequence, "feed",
              "this model reads " + to_string(kind_) + ", not float features");
  RECUR_CHECK(k >= 1, "feed", "needs at least one timestep, got " + std::to_string(k));
  feed_steps(*model_, *stream_, state, x, nullptr, k);
}

void Predictor::feed_pixels(StreamState& state, const std::uint8_t* steps, int k) const {
  check_streamable();
  RECUR_CHECK(kind_ == InputKind::image_sequence, "feed",
              "this model reads " + to_string(kind_) + ", not image pixels");
  RECUR_CHECK(k >= 1, "feed", "needs at least one timestep, got " + std::to_string(k));
  if (stream_->reads_pixels) {
    check_state(state, stream_.get(), "feed");
    feed_steps(*model_, *stream_, state, nullptr, nullptr, k, steps);
    return;
  }
  // The view's scaling: pixel / 255.f.
  std::vector<float> x(static_cast<std::size_t>(k) * features());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(steps[i]) / 255.f;
  feed(state, x.data(), k);
}

void Predictor::feed_tokens(StreamState& state, const std::int32_t* ids, int k) const {
  check_streamable();
  check_state(state, stream_.get(), "feed");
  RECUR_CHECK(kind_ == InputKind::text, "feed",
              "this model reads " + to_string(kind_) + ", not token ids");
  RECUR_CHECK(k >= 1, "feed", "needs at least one token, got " + std::to_string(k));
  const int vocab = text().vocab.size();
  for (int t = 0; t < k; ++t)
    RECUR_CHECK(ids[t] >= 0 && ids[t] < vocab, "feed",
                fmt::format("token id {} is outside the vocabulary [0, {})", ids[t], vocab));
  feed_steps(*model_, *stream_, state, nullptr, ids, k);
}

namespace {

// Step t of feed_many: rows[b] is the b-th state still running (B of them), `in` their inputs
// [B, F] (or ids [B]); runs the layers before the pooling on one timestep of B rows, carrying
// each state's h and c, and pools each row into its state. `scratch` lends its workspaces.
void step_rows(const Model<float>& model, const Predictor::Stream& plan,
               const std::vector<StreamState*>& rows, int B, int t, const float* x,
               const std::int32_t* ids, StreamState::Impl& scratch, std::vector<float>& h0,
               std::vector<float>& c0, const std::uint8_t* pixels) {
  const SeqInfo seq = SeqInfo::fixed(1, B);
  const LayerContext<float> ctx{model.params().data(), B, &seq, ids, false, nullptr};
  const float* in = x;
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    const Predictor::Stream::Stage& stage = plan.stages[s];
    StreamState::Impl::StageState& ws = scratch.stages[s];
    if (stage.stack) {
      // States keep h, c as [layers, hidden]; the stack reads [layers, B, hidden].
      const std::size_t H = static_cast<std::size_t>(stage.stack->spec().hidden);
      const std::size_t L = stage.state_size / H;
      h0.resize(L * B * H);
      c0.resize(stage.lstm ? L * B * H : 0);
      for (int b = 0; b < B; ++b) {
        const StreamState::Impl::StageState& own = rows[b]->impl->stages[s];
        for (std::size_t l = 0; l < L; ++l) {
          std::copy_n(own.h.data() + l * H, H, h0.data() + (l * B + b) * H);
          if (stage.lstm) std::copy_n(own.c.data() + l * H, H, c0.data() + (l * B + b) * H);
        }
      }
      stage.stack->forward(stage.params, in, 1, B, h0.data(), stage.lstm ? c0.data() : nullptr,
                           false, nullptr, ws.stack_ws, nullptr, &stage.packed,
                           s == 0 ? pixels : nullptr);
      for (int b = 0; b < B; ++b) {
        StreamState::Impl::StageState& own = rows[b]->impl->stages[s];
        for (std::size_t l = 0; l < L; ++l) {
          std::copy_n(ws.stack_ws.hn.data() + (l * B + b) * H, H, own.h.data() + l * H);
          if (stage.lstm)
            std::copy_n(ws.stack_ws.cn.data() + (l * B + b) * H, H, own.c.data() + l * H);
        }
      }
      in = ws.stack_ws.layers.back().out.data();
      continue;
    }
    const Layer<float>& layer = model.layer(stage.layer);
    std::vector<float>& out = in == scratch.step_a.data() ? scratch.step_b : scratch.step_a;
    out.resize(layer.output_size(ctx));
    layer.forward(ctx, model.prepared(stage.layer), in, out.data(), ws.layer_ws.get());
    in = out.data();
  }
  const int F = plan.pooled;
  for (int b = 0; b < B; ++b) {
    StreamState& st = *rows[b];
    pool_step(plan.pooling, in + static_cast<std::size_t>(b) * F, F, st.steps == 0 && t == 0,
              st.impl->pooled.data());
  }
}

}  // namespace

void Predictor::feed_many(std::span<const StreamFeed> feeds) const {
  check_streamable();
  const int F = kind_ == InputKind::text ? 0 : features();
  const int vocab = kind_ == InputKind::text ? text().vocab.size() : 0;
  // Everything is checked before any state moves.
  std::unordered_set<const StreamState::Impl*> seen;
  for (std::size_t i = 0; i < feeds.size(); ++i) {
    const StreamFeed& f = feeds[i];
    const std::string which = fmt::format("feeds[{}]", i);
    RECUR_CHECK(f.state != nullptr, "feed", which + ": no state");
    RECUR_CHECK(f.state->impl && f.state->impl->plan == stream_.get(), "feed",
                which + ": the state was not made by this predictor's start()");
    RECUR_CHECK(seen.insert(f.state->impl.get()).second, "feed",
                which + ": the state is given twice (feed a state once per call)");
    RECUR_CHECK(f.k >= 1, "feed",
                which + ": needs at least one timestep, got " + std::to_string(f.k));
    RECUR_CHECK((f.x != nullptr) + (f.pixels != nullptr) + (f.ids != nullptr) == 1, "feed",
                which + ": give exactly one of x, pixels, ids");
    if (f.ids) {
      RECUR_CHECK(kind_ == InputKind::text, "feed",
                  which + ": this model reads " + to_string(kind_) + ", not token ids");
      for (int t = 0; t < f.k; ++t)
        RECUR_CHECK(f.ids[t] >= 0 && f.ids[t] < vocab, "feed",
                    fmt::format("{}: token id {} is outside the vocabulary [0, {})", which,
                                f.ids[t], vocab));
    } else {
      RECUR_CHECK(
          f.x == nullptr || kind_ == InputKind::sequence || kind_ == InputKind::image_sequence,
          "feed", which + ": this model reads " + to_string(kind_) + ", not float features");
      RECUR_CHECK(f.pixels == nullptr || kind_ == InputKind::image_sequence, "feed",
                  which + ": this model reads " + to_string(kind_) + ", not image pixels");
    }
  }
  if (feeds.empty()) return;
  // A model that reads pixel bytes quantizes them otherwise than floats (kernels/int8_gemm.hpp):
  // feeds of each kind run as a call of their own (a row's bits never depend on the rows beside
  // it, so this changes nothing but the grouping).
  const bool pixel_steps = stream_->reads_pixels && kind_ != InputKind::text;
  if (pixel_steps) {
    std::vector<StreamFeed> as_pixels, as_floats;
    for (const StreamFeed& f : feeds) (f.pixels ? as_pixels : as_floats).push_back(f);
    if (!as_pixels.empty() && !as_floats.empty()) {
      feed_many(as_pixels);
      feed_many(as_floats);
      return;
    }
  }
  const bool by_pixels = pixel_steps && feeds.front().pixels != nullptr;
  // Longest first: the states still running at step t are a prefix of `order`.
  std::vector<std::size_t> order(feeds.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return feeds[a].k > feeds[b].k; });
  std::vector<StreamState*> rows(order.size());
  for (std::size_t b = 0; b < order.size(); ++b) rows[b] = feeds[order[b]].state;
  StreamState::Impl& scratch = *rows.front()->impl;
  std::vector<float> x, h0, c0;
  std::vector<std::int32_t> ids;
  std::vector<std::uint8_t> px;
  int B = static_cast<int>(order.size());
  for (int t = 0; t < feeds[order.front()].k; ++t) {
    while (feeds[order[static_cast<std::size_t>(B) - 1]].k <= t) --B;
    if (by_pixels) {
      px.resize(static_cast<std::size_t>(B) * F);
      for (int b = 0; b < B; ++b)
        std::copy_n(feeds[order[b]].pixels + static_cast<std::size_t>(t) * F, F,
                    px.data() + static_cast<std::size_t>(b) * F);
    } else if (kind_ == InputKind::text) {
      ids.resize(static_cast<std::size_t>(B));
      for (int b = 0; b < B; ++b) ids[static_cast<std::size_t>(b)] = feeds[order[b]].ids[t];
    } else {
      x.resize(static_cast<std::size_t>(B) * F);
      for (int b = 0; b < B; ++b) {
        const StreamFeed& f = feeds[order[b]];
        float* row = x.data() + static_cast<std::size_t>(b) * F;
        const std::size_t at = static_cast<std::size_t>(t) * F;
        if (f.x) {
          std::copy_n(f.x + at, F, row);
        } else {
          // The view's scaling, as feed_pixels: pixel / 255.f.
          for (int j = 0; j < F; ++j) row[j] = static_cast<float>(f.pixels[at + j]) / 255.f;
        }
      }
    }
    step_rows(*model_, *stream_, rows, B, t,
              kind_ == InputKind::text || by_pixels ? nullptr : x.data(),
              kind_ == InputKind::text ? ids.data() : nullptr, scratch, h0, c0,
              by_pixels ? px.data() : nullptr);
  }
  for (const StreamFeed& f : feeds) f.state->steps += f.k;
}

std::vector<float> Predictor::image_steps(const std::uint8_t* image) const {
  RECUR_CHECK(kind_ == InputKind::image_sequence, path_,
              "not a model of image sequences; it reads " + to_string(kind_));
  auto set = std::make_shared<ImageSet>();
  set->source = "image";
  set->count = 1;
  set->rows = rows_;
  set->cols = cols_;
  set->pixels.assign(image, image + static_cast<std::size_t>(rows_) * cols_);
  set->labels.assign(1, 0);
  const auto source = image_source(set);
  std::vector<float> x(static_cast<std::size_t>(steps_) * features());
  const std::int64_t first = 0;
  source->fill(&first, 1, SeqInfo::fixed(steps_, 1), nullptr, x.data());
  return x;
}

StreamReading Predictor::read(const StreamState& state) const {
  check_streamable();
  check_state(state, stream_.get(), "read");
  RECUR_CHECK(state.steps > 0, "read", "nothing has been fed yet: feed at least one timestep");
  StreamState::Impl& st = *state.impl;
  const Stream& plan = *stream_;
  const int F = plan.pooled;
  std::vector<float>& pooled = st.vec_a;
  pooled.assign(st.pooled.begin(), st.pooled.end());
  if (plan.pooling == Pooling::mean || plan.pooling == Pooling::maxmean) {
    const float inv = 1.f / static_cast<float>(state.steps);
    const int sum = plan.pooling == Pooling::maxmean ? F : 0;  // where the running sum starts
    for (int f = sum; f < sum + F; ++f) pooled[static_cast<std::size_t>(f)] *= inv;
  }
  const LayerContext<float> ctx{model_->params().data(), 1, nullptr, nullptr, false, nullptr};
  const float* in = pooled.data();
  for (std::size_t i = plan.pool + 1; i < model_->num_layers(); ++i) {
    const Layer<float>& layer = model_->layer(i);
    std::vector<float>& out = in == st.vec_a.data() ? st.vec_b : st.vec_a;
    out.resize(layer.output_size(ctx));
    layer.forward(ctx, model_->prepared(i), in, out.data(), st.head_ws[i - plan.pool].get());
    in = out.data();
  }
  const int C = num_classes();
  StreamReading r;
  r.steps = state.steps;
  r.logits.assign(in, in + C);
  r.probabilities.resize(static_cast<std::size_t>(C));
  softmax_probabilities(in, C, r.probabilities.data());
  for (int j = 1; j < C; ++j)
    if (r.logits[static_cast<std::size_t>(j)] > r.logits[static_cast<std::size_t>(r.label)])
      r.label = j;
  return r;
}

}  // namespace recur
