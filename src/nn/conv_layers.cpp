#include "nn/conv_layers.hpp"
#include "nn/layer_registry.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "nn/init_fill.hpp"
#include "recur/error.hpp"
#include "recur/limits.hpp"

namespace recur {

namespace {

using kernels::Conv2dDims;

std::string shape_text(const ActShape& s) {
  return std::to_string(s.features) + "x" + std::to_string(s.height) + "x" +
         std::to_string(s.width);
}

// Bounds that keep every size and index product of the kernels far inside int and size_t, so a
// description read from a file (a checkpoint's metadata) cannot make them overflow.
constexpr int kMaxWindow = 1024;                            // kernel, stride, padding
constexpr int kMaxChannels = 1 << 16;                       // image channels
constexpr std::size_t kMaxPerImage = std::size_t{1} << 28;  // elements of one image's buffers

void require_image(const LayerSpec& spec, const ActShape& in, const std::string& where) {
  RECUR_CHECK(in.kind == ActKind::image, where,
              spec.type + " needs an image input [channels, height, width], got a " +
                  (in.kind == ActKind::sequence ? "sequence" : "vector"));
  RECUR_CHECK(in.features >= 1 && in.features <= kMaxChannels && in.height >= 1 &&
                  in.height <= kMaxImageSide && in.width >= 1 && in.width <= kMaxImageSide,
              where,
              spec.type + " input " + shape_text(in) + " must have 1.." +
                  std::to_string(kMaxChannels) + " channels and sides of 1.." +
                  std::to_string(kMaxImageSide));
  RECUR_CHECK(in.per_row() <= kMaxPerImage, where,
              spec.type + " input " + shape_text(in) + " holds over " +
                  std::to_string(kMaxPerImage) + " values per image");
}

// The window sizes shared by conv2d and maxpool2d; checks them against the input.
Conv2dDims window_dims(const LayerSpec& spec, const ActShape& in, int default_stride,
                       const std::string& where) {
  const std::string& t = spec.type;
  RECUR_CHECK(spec.kernel >= 1, where,
              t + " kernel must be at least 1, got " + std::to_string(spec.kernel));
  RECUR_CHECK(spec.kernel <= kMaxWindow && spec.stride <= kMaxWindow && spec.padding <= kMaxWindow,
              where,
              t + " kernel, stride and padding must be at most " + std::to_string(kMaxWindow) +
                  ", got " + std::to_string(spec.kernel) + ", " + std::to_string(spec.stride) +
                  ", " + std::to_string(spec.padding));
  RECUR_CHECK(
      spec.stride >= 0, where,
      t + " stride must be at least 1 (0: the default), got " + std::to_string(spec.stride));
  RECUR_CHECK(spec.padding >= 0, where,
              t + " padding must not be negative, got " + std::to_string(spec.padding));
  Conv2dDims d;
  d.in_channels = in.features;
  d.height = in.height;
  d.width = in.width;
  d.kernel = spec.kernel;
  d.stride = spec.stride == 0 ? default_stride : spec.stride;
  d.padding = spec.padding;
  RECUR_CHECK(
      spec.kernel <= in.height + 2 * spec.padding && spec.kernel <= in.width + 2 * spec.padding,
      where,
      t + " kernel " + std::to_string(spec.kernel) + " is larger than the padded input " +
          std::to_string(in.height + 2 * spec.padding) + "x" +
          std::to_string(in.width + 2 * spec.padding) + " (input " + shape_text(in) + ")");
  return d;
}

// ---- conv2d ----

template <typename T>
struct ConvWorkspace : LayerWorkspace<T> {
  std::vector<T> col, dcol;
};

template <typename T>
class Conv2dLayer final : public Layer<T> {
 public:
  Conv2dLayer(const LayerSpec& spec, const ActShape& in, const std::string& name,
              ParamLayout& layout, const std::string& where)
      : name_(name) {
    require_image(spec, in, where);
    RECUR_CHECK(
        spec.size >= 1, where,
        "conv2d size (output channels) must be at least 1, got " + std::to_string(spec.size));
    RECUR_CHECK(spec.init.kind != InitKind::orthogonal, where,
                "conv2d init: orthogonal applies to recurrent matrices only");
    RECUR_CHECK(spec.size <= kMaxChannels, where,
                "conv2d size (output channels) must be at most " + std::to_string(kMaxChannels) +
                    ", got " + std::to_string(spec.size));
    dims_ = window_dims(spec, in, 1, where);
    dims_.out_channels = spec.size;
    const std::size_t out_per_image =
        static_cast<std::size_t>(spec.size) * dims_.out_height() * dims_.out_width();
    RECUR_CHECK(dims_.col_size() <= kMaxPerImage && out_per_image <= kMaxPerImage, where,
                "conv2d on a " + shape_text(in) + " input with kernel " +
                    std::to_string(spec.kernel) + " needs " +
                    std::to_string(std::max(dims_.col_size(), out_per_image)) +
                    " values per image, over the limit of " + std::to_string(kMaxPerImage));
    this->spec_ = spec;
    this->in_ = in;
    this->out_ = ActShape{ActKind::image, spec.size, dims_.out_height(), dims_.out_width(), false};
    const int k = spec.kernel;
    weight_ = layout.add(name + ".weight", {spec.size, in.features, k, k});
    if (spec.bias) bias_ = layout.add(name + ".bias", {spec.size});
  }

  void init(T* params, std::uint64_t seed) const override {
    const WeightInit& init = this->spec_.init;
    const int O = dims_.out_channels, C = dims_.in_channels, KK = dims_.kernel * dims_.kernel;
    // torch.nn.Conv2d.reset_parameters: kaiming_uniform_(a=sqrt(5)) gives bound 1/sqrt(fan_in),
    // and the bias takes the same bound.
    const double bound = 1.0 / std::sqrt(static_cast<double>(C) * KK);
    const std::string& key = this->spec_.draw.empty() ? name_ : this->spec_.draw;
    Rng rng = nn::tensor_rng(seed, key + ".weight");
    T* w = params + weight_;
    if (init.kind == InitKind::glorot) {
      // Xavier's fans of a convolution count the kernel on both sides: C*k*k in, O*k*k out.
      const double a = std::sqrt(6.0 / (static_cast<double>(C) * KK + static_cast<double>(O) * KK));
      for (std::size_t i = 0; i < static_cast<std::size_t>(O) * C * KK; ++i)
        w[i] = static_cast<T>(rng.uniform(-a, a));
    } else {
      nn::fill_matrix(w, O, C * KK, init, bound, rng);
    }
    if (!this->spec_.bias) return;
    Rng brng = nn::tensor_rng(seed, key + ".bias");
    nn::fill_bias(params + bias_, static_cast<std::size_t>(O), init, bound, brng);
  }

  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    auto ws = std::make_unique<ConvWorkspace<T>>();
    ws->col.resize(dims_.col_size());
    ws->dcol.resize(dims_.col_size());
    return ws;
  }

  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    ConvWorkspace<T> local;
    ConvWorkspace<T>& w = workspace(ws, local);
    kernels::conv2d_forward(dims(ctx), in, ctx.params + weight_, bias(ctx.params), out,
                            w.col.data());
  }

  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, const T*,
                const T* dout, T* din, T* grads, LayerWorkspace<T>* ws) const override {
    ConvWorkspace<T> local;
    ConvWorkspace<T>& w = workspace(ws, local);
    kernels::conv2d_backward(dims(ctx), in, ctx.params + weight_, dout, din, grads + weight_,
                             this->spec_.bias ? grads + bias_ : nullptr, w.col.data(),
                             w.dcol.data());
  }

 private:
  Conv2dDims dims(const LayerContext<T>& ctx) const {
    Conv2dDims d = dims_;
    d.batch = ctx.batch;
    return d;
  }
  const T* bias(const T* params) const { return this->spec_.bias ? params + bias_ : nullptr; }
  // The caller's workspace, or `local` sized here when there is none.
  ConvWorkspace<T>& workspace(LayerWorkspace<T>* ws, ConvWorkspace<T>& local) const {
    if (auto* cw = dynamic_cast<ConvWorkspace<T>*>(ws)) return *cw;
    local.col.resize(dims_.col_size());
    local.dcol.resize(dims_.col_size());
    return local;
  }

  std::string name_;
  Conv2dDims dims_;
  std::size_t weight_ = 0, bias_ = 0;
};

// ---- maxpool2d ----

template <typename T>
class MaxPool2dLayer final : public Layer<T> {
 public:
  MaxPool2dLayer(const LayerSpec& spec, const ActShape& in, const std::string& where) {
    require_image(spec, in, where);
    dims_ = window_dims(spec, in, spec.kernel, where);
    RECUR_CHECK(2 * spec.padding <= spec.kernel, where,
                "maxpool2d padding must be at most half the kernel (" +
                    std::to_string(spec.kernel) + "), got " + std::to_string(spec.padding));
    dims_.out_channels = in.features;
    this->spec_ = spec;
    this->in_ = in;
    this->out_ =
        ActShape{ActKind::image, in.features, dims_.out_height(), dims_.out_width(), false};
  }

  void init(T*, std::uint64_t) const override {}

  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>*) const override {
    Conv2dDims d = dims_;
    d.batch = ctx.batch;
    kernels::maxpool2d_forward(d, in, out);
  }

  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, const T*,
                const T* dout, T* din, T*, LayerWorkspace<T>*) const override {
    if (!din) return;
    Conv2dDims d = dims_;
    d.batch = ctx.batch;
    kernels::maxpool2d_backward(d, in, dout, din);
  }

 private:
  Conv2dDims dims_;
};

// ---- flatten ----

template <typename T>
class FlattenLayer final : public Layer<T> {
 public:
  FlattenLayer(const LayerSpec& spec, const ActShape& in, const std::string& where) {
    require_image(spec, in, where);
    this->spec_ = spec;
    this->in_ = in;
    this->out_ = ActShape{ActKind::vector, static_cast<int>(in.per_row()), 0, 0, false};
  }

  void init(T*, std::uint64_t) const override {}

  // NCHW images are already their flattened vectors in memory: both directions copy.
  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>*) const override {
    std::copy(in, in + static_cast<std::size_t>(ctx.batch) * this->in_.per_row(), out);
  }

  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T*,
                const T* dout, T* din, T*, LayerWorkspace<T>*) const override {
    if (din) std::copy(dout, dout + static_cast<std::size_t>(ctx.batch) * this->in_.per_row(), din);
  }
};

// ---- relu, tanh ----

template <typename T>
class ActivationLayer final : public Layer<T> {
 public:
  ActivationLayer(const LayerSpec& spec, const ActShape& in, const std::string& where)
      : relu_(spec.type == "relu") {
    RECUR_CHECK(spec.type == "relu" || spec.type == "tanh", where,
                "activation must be relu or tanh, got '" + spec.type + "'");
    RECUR_CHECK(!in.ids, where,
                spec.type + " needs features, got token ids (put an embedding first)");
    this->spec_ = spec;
    this->in_ = in;
    this->out_ = in;
  }

  void init(T*, std::uint64_t) const override {}

  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>*) const override {
    const std::size_t n = this->output_size(ctx);
    if (relu_) {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) out[i] = in[i] > T(0) ? in[i] : T(0);
    } else {
      for (std::size_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
    }
  }

  // From the output alone: relu' = [out > 0], tanh' = 1 - out^2.
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T* out,
                const T* dout, T* din, T*, LayerWorkspace<T>*) const override {
    if (!din) return;
    const std::size_t n = this->output_size(ctx);
    if (relu_) {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) din[i] = out[i] > T(0) ? dout[i] : T(0);
    } else {
#pragma omp simd
      for (std::size_t i = 0; i < n; ++i) din[i] = dout[i] * (T(1) - out[i] * out[i]);
    }
  }

 private:
  bool relu_;
};

}  // namespace

template <typename T>
std::unique_ptr<Layer<T>> make_conv2d(const LayerSpec& spec, const ActShape& in,
                                      const std::string& name, ParamLayout& layout,
                                      const std::string& where) {
  return std::make_unique<Conv2dLayer<T>>(spec, in, name, layout, where);
}

template <typename T>
std::unique_ptr<Layer<T>> make_maxpool2d(const LayerSpec& spec, const ActShape& in,
                                         const std::string&, ParamLayout&,
                                         const std::string& where) {
  return std::make_unique<MaxPool2dLayer<T>>(spec, in, where);
}

template <typename T>
std::unique_ptr<Layer<T>> make_flatten(const LayerSpec& spec, const ActShape& in,
                                       const std::string&, ParamLayout&, const std::string& where) {
  return std::make_unique<FlattenLayer<T>>(spec, in, where);
}

template <typename T>
std::unique_ptr<Layer<T>> make_activation(const LayerSpec& spec, const ActShape& in,
                                          const std::string&, ParamLayout&,
                                          const std::string& where) {
  return std::make_unique<ActivationLayer<T>>(spec, in, where);
}

#define RECUR_CONV_LAYERS_INSTANTIATE(T)                                                        \
  template std::unique_ptr<Layer<T>> make_conv2d<T>(                                            \
      const LayerSpec&, const ActShape&, const std::string&, ParamLayout&, const std::string&); \
  template std::unique_ptr<Layer<T>> make_maxpool2d<T>(                                         \
      const LayerSpec&, const ActShape&, const std::string&, ParamLayout&, const std::string&); \
  template std::unique_ptr<Layer<T>> make_flatten<T>(                                           \
      const LayerSpec&, const ActShape&, const std::string&, ParamLayout&, const std::string&); \
  template std::unique_ptr<Layer<T>> make_activation<T>(                                        \
      const LayerSpec&, const ActShape&, const std::string&, ParamLayout&, const std::string&);
RECUR_CONV_LAYERS_INSTANTIATE(float)
RECUR_CONV_LAYERS_INSTANTIATE(double)
#undef RECUR_CONV_LAYERS_INSTANTIATE

// ---- registry entries (nn/layer_registry.hpp) ----

namespace nn {

namespace {

LayerParam conv_param(const char* key, int LayerSpec::*field, int lo, const char* meta,
                      const char* doc, bool required = false) {
  return {.key = key,
          .json = key,
          .field = field,
          .label = key,
          .lo = lo,
          .hi = 4096,
          .required = required,
          .meta = meta,
          .doc = doc};
}

const LayerKind& no_param_kind(const char* type, const char* doc, const char* twin,
                               bool reads_images, MakeLayer<float> f, MakeLayer<double> d) {
  static std::vector<std::unique_ptr<LayerKind>> kinds;
  kinds.push_back(std::make_unique<LayerKind>(LayerKind{.type = type,
                                                        .words = {type},
                                                        .doc_layer = doc,
                                                        .twin = twin,
                                                        .reads_images = reads_images,
                                                        .make_float = f,
                                                        .make_double = d}));
  return *kinds.back();
}

}  // namespace

std::vector<LayerParam> conv_params(const char* stride_doc, const char* padding_doc) {
  return {{.key = "size",
           .json = "size",
           .field = &LayerSpec::size,
           .label = "the channels",
           .lo = 1,
           .hi = 1 << 20,
           .positional = true,
           .required = true,
           .missing = "needs its output channels, e.g. '{} 16 kernel=5'",
           .meta = "C",
           .doc = "output channels"},
          conv_param("kernel", &LayerSpec::kernel, 1, "K", "`kernel=K` (required)", true),
          conv_param("stride", &LayerSpec::stride, 1, "S", stride_doc),
          conv_param("padding", &LayerSpec::padding, 0, "P", padding_doc),
          bias_param(),
          {.json = "init", .field = &LayerSpec::init}};
}

const LayerKind& conv2d_kind() {
  static const LayerKind k{.type = "conv2d",
                           .words = {"conv2d"},
                           .params = conv_params("`stride=S`", "`padding=P`"),
                           .doc_layer = "`conv2d C`",
                           .twin = "`nn.Conv2d`",
                           .reads_images = true,
                           .make_float = &make_conv2d<float>,
                           .make_double = &make_conv2d<double>};
  return k;
}

const LayerKind& maxpool2d_kind() {
  static const LayerKind k{
      .type = "maxpool2d",
      .words = {"maxpool2d"},
      .params = {{.key = "kernel",
                  .json = "kernel",
                  .field = &LayerSpec::kernel,
                  .label = "the window",
                  .lo = 1,
                  .hi = 4096,
                  .positional = true,
                  .required = true,
                  .missing = "needs its window, e.g. 'maxpool2d 2'",
                  .meta = "K",
                  .doc = "window"},
                 conv_param("stride", &LayerSpec::stride, 1, "S", "`stride=S` (default K)"),
                 conv_param("padding", &LayerSpec::padding, 0, "P", "`padding=P`")},
      .doc_layer = "`maxpool2d K`",
      .twin = "`nn.MaxPool2d`",
      .reads_images = true,
      .make_float = &make_maxpool2d<float>,
      .make_double = &make_maxpool2d<double>};
  return k;
}

const LayerKind& flatten_kind() {
  static const LayerKind& k = no_param_kind("flatten", "`flatten`", "`nn.Flatten`", true,
                                            &make_flatten<float>, &make_flatten<double>);
  return k;
}
const LayerKind& relu_kind() {
  static const LayerKind& k = no_param_kind("relu", "`relu`", "`nn.ReLU`", false,
                                            &make_activation<float>, &make_activation<double>);
  return k;
}
const LayerKind& tanh_kind() {
  static const LayerKind& k = no_param_kind("tanh", "`tanh`", "`nn.Tanh`", false,
                                            &make_activation<float>, &make_activation<double>);
  return k;
}

}  // namespace nn

}  // namespace recur
