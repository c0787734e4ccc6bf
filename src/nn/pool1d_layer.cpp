// maxpool1d, avgpool1d: strided max / average pooling over time, sequence [S, B, F] -> sequence
// [S', B, F], as torch.nn.MaxPool1d / AvgPool1d(kernel, stride) on each sample alone; the layers
// that change sequence lengths (kernels/pool1d.hpp states the length rule: PyTorch's
// floor((L - K) / S) + 1, and one output for a sample shorter than the window). Their registry
// entries are at the end of this file.
#include <string>
#include <vector>

#include "kernels/pool1d.hpp"
#include "nn/layer_registry.hpp"
#include "recur/error.hpp"

namespace recur {

namespace {

constexpr int kMaxPool1dWindow = 4096;

template <typename T>
struct Pool1dWorkspace final : LayerWorkspace<T> {
  std::vector<std::int32_t> arg;  // max: the input step of each output's maximum
};

// spec.type "maxpool1d" or "avgpool1d".
template <typename T>
class Pool1dLayer final : public Layer<T> {
 public:
  Pool1dLayer(const LayerSpec& spec, const ActShape& in, const std::string&, ParamLayout&,
              const std::string& where)
      : average_(spec.type == "avgpool1d") {
    RECUR_CHECK(in.kind == ActKind::sequence && !in.ids, where,
                spec.type +
                    " pools a sequence of features over time (after an embedding for text), "
                    "got a " +
                    to_string(in));
    RECUR_CHECK(spec.kernel >= 1 && spec.kernel <= kMaxPool1dWindow, where,
                spec.type + " window must be in [1, " + std::to_string(kMaxPool1dWindow) +
                    "], got " + std::to_string(spec.kernel));
    RECUR_CHECK(spec.stride >= 0 && spec.stride <= kMaxPool1dWindow, where,
                spec.type + " stride must be in [1, " + std::to_string(kMaxPool1dWindow) +
                    "] (0: the window), got " + std::to_string(spec.stride));
    this->spec_ = spec;
    this->in_ = in;
    this->out_ = in;  // same features (and halves of a bidirectional output), fewer steps
  }
  void init(T*, std::uint64_t) const override {}
  bool changes_lengths() const override { return true; }
  SeqInfo output_lengths(const SeqInfo& in) const override {
    std::vector<int> out(in.lengths.size());
    for (std::size_t b = 0; b < out.size(); ++b)
      out[b] = kernels::pool1d_length(in.lengths[b], this->spec_.kernel, stride());
    return SeqInfo::from_lengths(out);
  }
  std::unique_ptr<LayerWorkspace<T>> make_workspace() const override {
    return std::make_unique<Pool1dWorkspace<T>>();
  }
  void forward(const LayerContext<T>& ctx, const PreparedWeights*, const T* in, T* out,
               LayerWorkspace<T>* ws) const override {
    const kernels::Pool1dDims d = dims(ctx);
    if (average_) return kernels::avgpool1d_forward(d, ctx.seq->lengths.data(), in, out);
    auto& arg = static_cast<Pool1dWorkspace<T>*>(ws)->arg;
    arg.resize(static_cast<std::size_t>(d.out_steps()) * d.batch * d.features);
    kernels::maxpool1d_forward(d, ctx.seq->lengths.data(), in, out, arg.data());
  }
  void backward(const LayerContext<T>& ctx, const PreparedWeights*, const T*, const T*,
                const T* dout, T* din, T*, LayerWorkspace<T>* ws) const override {
    if (!din) return;
    if (average_) return kernels::avgpool1d_backward(dims(ctx), ctx.seq->lengths.data(), dout, din);
    const auto& arg = static_cast<Pool1dWorkspace<T>*>(ws)->arg;
    kernels::maxpool1d_backward(dims(ctx), arg.data(), dout, din);
  }

 private:
  int stride() const { return this->spec_.stride > 0 ? this->spec_.stride : this->spec_.kernel; }
  kernels::Pool1dDims dims(const LayerContext<T>& ctx) const {
    return {ctx.seq->steps, ctx.batch, this->in_.features, this->spec_.kernel, stride()};
  }
  bool average_;
};

}  // namespace

namespace nn {

namespace {

// K [stride=S], both kinds.
std::vector<LayerParam> pool1d_params(const char* missing) {
  return {{.key = "kernel",
           .json = "kernel",
           .field = &LayerSpec::kernel,
           .label = "the window",
           .lo = 1,
           .hi = kMaxPool1dWindow,
           .positional = true,
           .required = true,
           .missing = missing,
           .meta = "K",
           .doc = "window (steps)"},
          {.key = "stride",
           .json = "stride",
           .field = &LayerSpec::stride,
           .label = "stride",
           .lo = 1,
           .hi = kMaxPool1dWindow,
           .meta = "S",
           .doc = "`stride=S` (default K); a sample of L >= K steps gives (L - K) / S + 1 "
                  "(floor), a shorter one 1"}};
}

}  // namespace

const LayerKind& maxpool1d_kind() {
  static const LayerKind k{.type = "maxpool1d",
                           .words = {"maxpool1d"},
                           .params = pool1d_params("needs its window, e.g. 'maxpool1d 2'"),
                           .doc_layer = "`maxpool1d K`",
                           .twin = "`nn.MaxPool1d` over time",
                           .make_float = &construct_layer<Pool1dLayer, float>,
                           .make_double = &construct_layer<Pool1dLayer, double>};
  return k;
}

const LayerKind& avgpool1d_kind() {
  static const LayerKind k{.type = "avgpool1d",
                           .words = {"avgpool1d"},
                           .params = pool1d_params("needs its window, e.g. 'avgpool1d 2'"),
                           .doc_layer = "`avgpool1d K`",
                           .twin = "`nn.AvgPool1d` over time",
                           .make_float = &construct_layer<Pool1dLayer, float>,
                           .make_double = &construct_layer<Pool1dLayer, double>};
  return k;
}

}  // namespace nn

}  // namespace recur
