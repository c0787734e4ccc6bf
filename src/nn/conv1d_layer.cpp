// conv1d: a 1-D convolution over a sequence of features, "same" padding, stride 1
// (nn/conv_layers.hpp; kernels/conv1d.hpp does the work).
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/conv1d.hpp"
#include "nn/conv_layers.hpp"
#include "nn/init_fill.hpp"
#include "nn/layer_registry.hpp"
#include "recur/error.hpp"

namespace recur {

namespace {

constexpr int kMaxConv1dKernel = 1023;
constexpr int kMaxConv1dChannels = 1 << 16;

template <typename T>
struct Conv1dWorkspace final : LayerWorkspace<T> {
  std::vector<T> col, dcol;
};

struct Conv1dPrepared final : PreparedWeights {
  kernels::PackedMatrix packed;  // w as [C, F*k] and b, for inference
};

template <typename T>
class Conv1dLayer final : public Layer<T> {
 public:
  Conv1dLayer(const LayerSpec& spec, const ActShape& in, const std::string& name,
              ParamLayout& layout, const std::string& where)
      : name_(name) {
    RECUR_CHECK(in.kind == ActKind::sequence && !in.ids, where,
                "conv1d reads a sequence of features (after an embedding for text), got a " +
                    to_string(in));
    RECUR_CHECK(in.features >= 1 && in.features <= kMaxConv1dChannels, where,
                "conv1d input features must be in [1, " + std::to_string(kMaxConv1dChannels) +
                    "], got " + std::to_string(in.features));
    RECUR_CHECK(spec.size >= 1 && spec.size <= kMaxConv1dChannels, where,
                "conv1d size (output channels) must be in [1, " +
                    std::to_string(kMaxConv1dChannels) + "], got " + std::to_string(spec.size));
    RECUR_CHECK(spec.kernel >= 1 && spec.kernel <= kMaxConv1dKernel && spec.kernel % 2 == 1, where,
                "conv1d kernel must be odd and in [1, " + std::to_string(kMaxConv1dKernel) +
                    "] (\"same\" padding of kernel/2), got " + std::to_string(spec.kernel));
    RECUR_CHECK(spec.stride == 0 || spec.stride == 1, where,
                "conv1d stride must be 1 (0: the default), got " + std::to_string(spec.stride));
    RECUR_CHECK(spec.padding == 0 || spec.padding == spec.kernel / 2, where,
                "conv1d padding is always \"same\" (kernel/2 = " + std::to_string(spec.kernel / 2) +
                    "; 0: the default), got " + std::to_string(spec.padding));
    RECUR_CHECK(spec.init.kind != InitKind::orthogonal, where,
                "conv1d init: orthogonal applies to recurrent matrices only");
    this->spec_ = spec;
    this->spec_.stride = 1;
    this->spec_.padding = spec.kernel / 2;
    this->in_ = in;
    this->out_ = ActShape{ActKind::sequence, spec.size};
    dims_.in_features = in.features;
    dims_.out_channels = spec.size;
    dims_.kernel = spec.kernel;
    weight_ = layout.add(name + ".weight", {spec.size, in.features, spec.kernel});
    if (spec.bias) bias_ = layout.add(name + ".bias", {spec.size});
  }

  void init(T* params, std::uint64_t seed) const override {
    const WeightInit& init = this->spec_.init;
    const int C = dims_.out_channels, F = dims_.in_features, K = dims_.kernel;
    // torch.nn.Conv1d.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(F*k), and
    // the bias takes the same bound.
    const double bound = 1.0 / std::sqrt(static_cast<double>(F) * K);
    const std::string& key = this->spec_.draw.empty() ? name_ : this->spec_.draw;
    Rng rng = nn::tensor_rng(seed, key + ".weight");
    T* w = params + weight_;
    if (init.kind == InitKind::glorot) {
      const double a = std::sqrt(6.0 / (static_cast<double>(F) * K + static_cast<double>(C) * K));
      for (std::size_t i = 0; i < static_cast<std::size_t>(C) * F * K; ++i)
        w[i] = static_cast<T>(rng.uniform(-a, a));
    } else {
      nn::fill_matrix(w, C, F * K, init, bound, rng);
    }
    if (!this->spec_.bias) return;
    Rng brng = nn::tensor_rng(seed, key + ".bias");
    nn::fill_bias(params + bias_, static_cast<std::size_t>(C), init, bound, brng);
  }

  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<Conv1dWorkspace<T>>();
  }

  // Inference packs the weights (and bias) for recur's kernel, so that a row's output never
  // depends on the rows batched with it; training keeps BLAS, as its backward does.
  std::unique_ptr<PreparedWeights> prepare(const T* params, PrepareFor use) const override {
    if constexpr (!std::is_same_v<T, float>) {
      return nullptr;
    } else {
      if (for_training(use)) return nullptr;  // int8: fp32 as for inference
      auto p = std::make_unique<Conv1dPrepared>();
      kernels::pack_weights_pair(dims_.out_channels, params + weight_,
                                 static_cast<int>(dims_.col_width()), nullptr, 0,
                                 this->spec_.bias ? params + bias_ : nullptr, nullptr, p->packed);
      return p;
    }
  }

  void forward(const LayerContext<T>& ctx, const PreparedWeights* prepared, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    Conv1dWorkspace<T> local;
    Conv1dWorkspace<T>& w = workspace(ws, local);
    const kernels::PackedMatrix* packed =
        prepared && !ctx.train ? &static_cast<const Conv1dPrepared*>(prepared)->packed : nullptr;
    kernels::conv1d_forward(dims(ctx), batch_sizes(ctx), in, ctx.params + weight_,
                            this->spec_.bias ? ctx.params + bias_ : nullptr, out, w.col, packed);
  }

  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, const T*,
                const T* dout, T* din, T* grads, LayerWorkspace<T>* ws) const override {
    Conv1dWorkspace<T> local;
    Conv1dWorkspace<T>& w = workspace(ws, local);
    kernels::conv1d_backward(dims(ctx), batch_sizes(ctx), in, ctx.params + weight_, dout, din,
                             grads + weight_, this->spec_.bias ? grads + bias_ : nullptr, w.col,
                             w.dcol);
  }

 private:
  kernels::Conv1dDims dims(const LayerContext<T>& ctx) const {
    kernels::Conv1dDims d = dims_;
    d.steps = ctx.seq->steps;
    d.batch = ctx.batch;
    return d;
  }
  static const int* batch_sizes(const LayerContext<T>& ctx) {
    return ctx.seq->full ? nullptr : ctx.seq->batch_sizes.data();
  }
  static Conv1dWorkspace<T>& workspace(LayerWorkspace<T>* ws, Conv1dWorkspace<T>& local) {
    if (auto* cw = dynamic_cast<Conv1dWorkspace<T>*>(ws)) return *cw;
    return local;
  }

  std::string name_;
  kernels::Conv1dDims dims_;
  std::size_t weight_ = 0, bias_ = 0;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_conv1d(const LayerSpec& spec, const ActShape& in,
                                      const std::string& name, ParamLayout& layout,
                                      const std::string& where) {
  return std::make_unique<Conv1dLayer<T>>(spec, in, name, layout, where);
}

template std::unique_ptr<Layer<float>> make_conv1d<float>(const LayerSpec&, const ActShape&,
                                                          const std::string&, ParamLayout&,
                                                          const std::string&);
template std::unique_ptr<Layer<double>> make_conv1d<double>(const LayerSpec&, const ActShape&,
                                                            const std::string&, ParamLayout&,
                                                            const std::string&);

namespace nn {

const LayerKind& conv1d_kind() {
  static const LayerKind k{
      .type = "conv1d",
      .words = {"conv1d"},
      .params = conv_params("`stride=1` (only)", "`padding=K/2` (only: \"same\")"),
      .doc_layer = "`conv1d C`",
      .twin = "`nn.Conv1d` (padding K/2, K odd)",
      .make_float = &make_conv1d<float>,
      .make_double = &make_conv1d<double>};
  return k;
}

}  // namespace nn

}  // namespace recur
