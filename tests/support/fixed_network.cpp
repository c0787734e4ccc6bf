// The fixed-shape network recur trained before models were built from layers (projection,
// recurrent stack, pooling, head over one arena, initialised tensor by tensor by name), kept for
// the tests as the oracle of version-1 checkpoints: their layer form (model_spec_from_config)
// must give its initial values, logits and gradients bit for bit, and the short form must train
// to its weights (TrainFromMemory.ShortFormTrainsBitForBitAsTheFixedShapeNetwork). Also the
// writer of version-1 files, which the library reads but no longer writes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/gemm.hpp"
#include "nn/init_fill.hpp"
#include "nn/recurrent.hpp"
#include "recur/error.hpp"
#include "recur/safetensors.hpp"
#include "support/fixed_network.hpp"

namespace recur {

using kernels::gemm;

template <typename T>
struct NetworkBuffers {
  nn::StackWorkspace<T> stack;
  std::vector<T> projected;  // [S, B, P] input projection output
  std::vector<T> pooled;     // [B, D*H]
  std::vector<int> argmax;   // [B, D*H] max pooling: the step each maximum came from
  std::vector<T> logits;     // [B, C]
  std::vector<T> dpooled;    // [B, D*H]
  int batch = 0;
};

template <typename T>
NetworkWorkspace<T>::NetworkWorkspace() : buffers_(std::make_unique<NetworkBuffers<T>>()) {}
template <typename T>
NetworkWorkspace<T>::~NetworkWorkspace() = default;
template <typename T>
NetworkWorkspace<T>::NetworkWorkspace(NetworkWorkspace&&) noexcept = default;
template <typename T>
NetworkWorkspace<T>& NetworkWorkspace<T>::operator=(NetworkWorkspace&&) noexcept = default;

namespace {

nn::StackSpec stack_spec(const ModelConfig& c) {
  nn::StackSpec s;
  s.cell = c.cell;
  s.input_size = c.projection > 0 ? c.projection : c.input_size;
  s.hidden = c.hidden;
  s.layers = c.layers;
  s.directions = c.directions();
  s.steps = c.steps;
  s.untied = c.untied;
  s.bias = c.bias;
  s.dropout = c.dropout;
  return s;
}

// Offsets of the Dense layers, looked up once.
struct DenseOffsets {
  std::size_t weight = 0, bias = 0;
};

DenseOffsets dense(const ParamLayout& layout, const std::string& name) {
  const ParamInfo* w = layout.find(name + ".weight");
  const ParamInfo* b = layout.find(name + ".bias");
  RECUR_ASSERT(w && b);
  return {w->offset, b->offset};
}

}  // namespace

template <typename T>
struct Network<T>::Impl {
  nn::RecurrentStack<T> stack;
  DenseOffsets proj, head;
  std::unique_ptr<nn::StackPacked> packed;  // prepare(): null when not prepared
  Impl(const ModelConfig& c, ParamLayout& layout) : stack(make_stack(c, layout)) {
    if (c.projection > 0) proj = dense(layout, "proj");
    layout.add("head.weight", {c.num_classes, c.hidden * c.directions()});
    layout.add("head.bias", {c.num_classes});
    head = dense(layout, "head");
  }
  static nn::RecurrentStack<T> make_stack(const ModelConfig& c, ParamLayout& layout) {
    if (c.projection > 0) {
      layout.add("proj.weight", {c.projection, c.input_size});
      layout.add("proj.bias", {c.projection});
    }
    return nn::RecurrentStack<T>(stack_spec(c), layout, "rnn.");
  }
};

template <typename T>
Network<T>::Network(const ModelConfig& config) : config_(config) {
  config_.validate();
  impl_ = std::make_unique<Impl>(config_, layout_);
  params_.assign(layout_.total(), T(0));
}

template <typename T>
Network<T>::~Network() = default;

template <typename T>
void Network<T>::prepare() {
  auto packed = std::make_unique<nn::StackPacked>();
  impl_->stack.prepare(params_.data(), *packed);
  impl_->packed = packed->dirs.empty() ? nullptr : std::move(packed);
}

template <typename T>
void Network<T>::drop_prepared() {
  impl_->packed.reset();
}

template <typename T>
const T* Network<T>::forward(const T* x, int B, NetworkWorkspace<T>& workspace, bool train,
                             Rng* rng, const T* h0, const T* c0) const {
  const ModelConfig& c = config_;
  NetworkBuffers<T>& ws = workspace.buffers();
  const int S = c.steps, H = c.hidden, D = c.directions(), DH = D * H, C = c.num_classes;
  const std::size_t SB = static_cast<std::size_t>(S) * B;
  const nn::RecurrentStack<T>& stack = impl_->stack;
  const T* p = params_.data();
  ws.batch = B;

  const T* stack_in = x;
  if (c.projection > 0) {
    const DenseOffsets& proj = impl_->proj;
    if (ws.projected.size() < SB * c.projection) ws.projected.resize(SB * c.projection);
    T* out = ws.projected.data();
    gemm<T>(false, true, static_cast<int>(SB), c.projection, c.input_size, T(1), x, c.input_size,
            p + proj.weight, c.input_size, T(0), out, c.projection);
    const T* bias = p + proj.bias;
    for (std::size_t r = 0; r < SB; ++r)
      for (int j = 0; j < c.projection; ++j) out[r * c.projection + j] += bias[j];
    stack_in = out;
  }
  stack.forward(p, stack_in, S, B, h0, c0, train, rng, ws.stack, nullptr, impl_->packed.get());
  const T* Y = ws.stack.layers.back().out.data();

  if (ws.pooled.size() < static_cast<std::size_t>(B) * DH)
    ws.pooled.resize(static_cast<std::size_t>(B) * DH);
  T* pooled = ws.pooled.data();
  switch (c.pooling) {
    case Pooling::last:
      for (int b = 0; b < B; ++b) {
        std::memcpy(pooled + b * DH, Y + (static_cast<std::size_t>(S - 1) * B + b) * DH,
                    sizeof(T) * H);
        if (D == 2)
          std::memcpy(pooled + b * DH + H, Y + static_cast<std::size_t>(b) * DH + H, sizeof(T) * H);
      }
      break;
    case Pooling::mean: {
      std::fill(pooled, pooled + static_cast<std::size_t>(B) * DH, T(0));
      for (int t = 0; t < S; ++t)
        for (int k = 0; k < B * DH; ++k) pooled[k] += Y[static_cast<std::size_t>(t) * B * DH + k];
      const T inv = T(1) / T(S);
      for (int k = 0; k < B * DH; ++k) pooled[k] *= inv;
      break;
    }
    case Pooling::max: {
      ws.argmax.assign(static_cast<std::size_t>(B) * DH, 0);
      std::memcpy(pooled, Y, sizeof(T) * B * DH);
      for (int t = 1; t < S; ++t)
        for (int k = 0; k < B * DH; ++k) {
          const T v = Y[static_cast<std::size_t>(t) * B * DH + k];
          if (v > pooled[k]) {
            pooled[k] = v;
            ws.argmax[k] = t;
          }
        }
      break;
    }
    case Pooling::maxmean:  // newer than the fixed-shape network (no version-1 file holds it)
      throw Error("fixed network", "maxmean pooling is not part of the fixed-shape network");
  }

  const DenseOffsets& head = impl_->head;
  if (ws.logits.size() < static_cast<std::size_t>(B) * C)
    ws.logits.resize(static_cast<std::size_t>(B) * C);
  T* logits = ws.logits.data();
  gemm<T>(false, true, B, C, DH, T(1), pooled, DH, p + head.weight, DH, T(0), logits, C);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < C; ++k) logits[b * C + k] += p[head.bias + k];
  return logits;
}

template <typename T>
void Network<T>::backward(const T* x, int B, NetworkWorkspace<T>& workspace, const T* dlogits,
                          T* grads, T* dx, T* dh0, T* dc0) const {
  const ModelConfig& c = config_;
  NetworkBuffers<T>& ws = workspace.buffers();
  RECUR_ASSERT(B == ws.batch);
  const int S = c.steps, H = c.hidden, D = c.directions(), DH = D * H, C = c.num_classes;
  const std::size_t SB = static_cast<std::size_t>(S) * B;
  const nn::RecurrentStack<T>& stack = impl_->stack;
  const T* p = params_.data();

  // Head.
  const DenseOffsets& head = impl_->head;
  gemm<T>(true, false, C, DH, B, T(1), dlogits, C, ws.pooled.data(), DH, T(1), grads + head.weight,
          DH);
  for (int b = 0; b < B; ++b)
    for (int k = 0; k < C; ++k) grads[head.bias + k] += dlogits[b * C + k];
  if (ws.dpooled.size() < static_cast<std::size_t>(B) * DH)
    ws.dpooled.resize(static_cast<std::size_t>(B) * DH);
  T* dpooled = ws.dpooled.data();
  gemm<T>(false, false, B, DH, C, T(1), dlogits, C, p + head.weight, DH, T(0), dpooled, DH);

  // Pooling: scatter into the gradient on the output sequence.
  T* dY = ws.stack.layers.back().dout.data();
  std::fill(dY, dY + SB * DH, T(0));
  switch (c.pooling) {
    case Pooling::last:
      for (int b = 0; b < B; ++b) {
        std::memcpy(dY + (static_cast<std::size_t>(S - 1) * B + b) * DH, dpooled + b * DH,
                    sizeof(T) * H);
        if (D == 2)
          std::memcpy(dY + static_cast<std::size_t>(b) * DH + H, dpooled + b * DH + H,
                      sizeof(T) * H);
      }
      break;
    case Pooling::mean: {
      const T inv = T(1) / T(S);
      for (int t = 0; t < S; ++t)
        for (int k = 0; k < B * DH; ++k)
          dY[static_cast<std::size_t>(t) * B * DH + k] = dpooled[k] * inv;
      break;
    }
    case Pooling::max:
      for (int k = 0; k < B * DH; ++k)
        dY[static_cast<std::size_t>(ws.argmax[k]) * B * DH + k] = dpooled[k];
      break;
    case Pooling::maxmean:
      throw Error("fixed network", "maxmean pooling is not part of the fixed-shape network");
  }

  const bool want_dinput = dx != nullptr || c.projection > 0;
  stack.backward(p, nullptr, nullptr, ws.stack, grads, want_dinput, dh0, dc0);

  if (c.projection > 0) {
    const DenseOffsets& proj = impl_->proj;
    const T* dP = ws.stack.dinput.data();
    gemm<T>(true, false, c.projection, c.input_size, static_cast<int>(SB), T(1), dP, c.projection,
            x, c.input_size, T(1), grads + proj.weight, c.input_size);
    for (std::size_t r = 0; r < SB; ++r)
      for (int j = 0; j < c.projection; ++j) grads[proj.bias + j] += dP[r * c.projection + j];
    if (dx)
      gemm<T>(false, false, static_cast<int>(SB), c.input_size, c.projection, T(1), dP,
              c.projection, p + proj.weight, c.input_size, T(0), dx, c.input_size);
  } else if (dx) {
    std::memcpy(dx, ws.stack.dinput.data(), sizeof(T) * SB * c.input_size);
  }
}

template <typename T>
const T* Network<T>::final_h(const NetworkWorkspace<T>& ws) const {
  return ws.buffers().stack.hn.data();
}
template <typename T>
const T* Network<T>::final_c(const NetworkWorkspace<T>& ws) const {
  return ws.buffers().stack.cn.data();
}
template <typename T>
const T* Network<T>::outputs(const NetworkWorkspace<T>& ws) const {
  return ws.buffers().stack.layers.back().out.data();
}

// ---- initialisation: one seeded stream per tensor, chosen by the tensor's name ----

namespace {

using nn::fill_bias;
using nn::fill_matrix;
using nn::tensor_rng;

bool starts_with(const std::string& s, const char* prefix) {
  return s.rfind(prefix, 0) == 0;
}

}  // namespace

template <typename T>
void Network<T>::init(std::uint64_t seed) {
  const ModelConfig& c = config_;
  const double rnn_bound = 1.0 / std::sqrt(static_cast<double>(c.hidden));
  const int H = c.hidden;
  for (const ParamInfo& info : layout_.entries()) {
    Rng rng = tensor_rng(seed, info.name);
    T* w = params_.data() + info.offset;
    const std::string& name = info.name;
    if (starts_with(name, "proj.") || starts_with(name, "head.")) {
      const WeightInit& spec = starts_with(name, "proj.") ? c.init.projection : c.init.head;
      const ParamInfo* weight = layout_.find(name.substr(0, 5) + "weight");
      const int out = static_cast<int>(weight->shape[0]), in = static_cast<int>(weight->shape[1]);
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      RECUR_CHECK(spec.kind != InitKind::orthogonal,
                  starts_with(name, "proj.") ? "--projection-init" : "--head-init",
                  "orthogonal applies to recurrent matrices only (--init-recurrent)");
      if (name.ends_with(".weight"))
        fill_matrix(w, out, in, spec, bound, rng);
      else
        fill_bias(w, info.size, spec, bound, rng);
    } else if (starts_with(name, "rnn.weight_")) {
      const bool input_side = starts_with(name, "rnn.weight_ih");
      const WeightInit& spec = input_side ? c.init.input : c.init.recurrent;
      const int cols = static_cast<int>(info.shape.back());
      // One block per gate (and per timestep in the untied variant).
      const std::size_t blocks = info.size / (static_cast<std::size_t>(H) * cols);
      for (std::size_t k = 0; k < blocks; ++k)
        fill_matrix(w + k * H * cols, H, cols, spec, rnn_bound, rng);
    } else if (starts_with(name, "rnn.bias_")) {
      const bool input_side = starts_with(name, "rnn.bias_ih");
      fill_bias(w, info.size, input_side ? c.init.input : c.init.recurrent, rnn_bound, rng);
      if (input_side && c.cell == CellKind::lstm)
        for (int j = 0; j < H; ++j)
          w[lstm_gate::kForget * H + j] += static_cast<T>(c.init.forget_bias);
    } else {
      RECUR_ASSERT(false);
    }
  }
}

// ---- version-1 files ----

void save_model(const std::string& path, const Network<float>& net, const Metadata& extra) {
  std::vector<TensorRef> refs;
  for (const ParamInfo& p : net.layout().entries())
    refs.push_back({p.name, DType::F32, p.shape, net.params().data() + p.offset});
  Metadata meta = extra;
  meta["recur.format"] = "recur-model-1";
  meta["recur.model"] = to_json(net.config());
  write_safetensors(path, refs, meta);
}

template class Network<float>;
template class Network<double>;
template class NetworkWorkspace<float>;
template class NetworkWorkspace<double>;

}  // namespace recur
