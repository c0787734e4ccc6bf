// The layers of convolutional models, for Model<T>'s chain (see recur/layers.hpp for the layer
// contract: backward adds parameter gradients and assigns the input gradient, which may be null):
//
//   conv2d     image [B, C, H, W] -> image [B, O, OH, OW]; tensors NAME.weight [O, C, k, k] and
//              NAME.bias [O] (spec.bias), as torch.nn.Conv2d(C, O, k, stride, padding). spec.size
//              = O, spec.kernel = k, spec.stride (0 = 1, PyTorch's default), spec.padding (zeros).
//   maxpool2d  image [B, C, H, W] -> image [B, C, OH, OW], as torch.nn.MaxPool2d(k, stride,
//              padding): spec.stride 0 = the kernel (PyTorch's default), padding at most k/2.
//   flatten    image [B, C, H, W] -> vector [B, C*H*W] in NCHW order (torch.nn.Flatten).
//   relu, tanh elementwise on any activation (sequence, vector, image); no tensors.
//   conv1d     sequence [S, B, F] -> sequence [S, B, C] (nn/conv1d_layer.cpp); tensors
//              NAME.weight [C, F, k] and NAME.bias [C], as torch.nn.Conv1d(F, C, k,
//              padding=k//2): spec.size = C, spec.kernel = k (odd), stride 1, "same" padding.
//              Steps past a sample's own length count as zeros, and its padded outputs are zero.
//
// Each factory checks the spec against the input shape and throws recur::Error(where, reason)
// naming the field (e.g. "conv2d kernel 7 is larger than the padded input 5x5").
#pragma once

#include <memory>
#include <string>

#include "recur/layers.hpp"

namespace recur {

template <typename T>
std::unique_ptr<Layer<T>> make_conv2d(const LayerSpec& spec, const ActShape& in,
                                      const std::string& name, ParamLayout& layout,
                                      const std::string& where);
template <typename T>
std::unique_ptr<Layer<T>> make_maxpool2d(const LayerSpec& spec, const ActShape& in,
                                         const std::string& name, ParamLayout& layout,
                                         const std::string& where);
template <typename T>
std::unique_ptr<Layer<T>> make_flatten(const LayerSpec& spec, const ActShape& in,
                                       const std::string& name, ParamLayout& layout,
                                       const std::string& where);
template <typename T>
std::unique_ptr<Layer<T>> make_conv1d(const LayerSpec& spec, const ActShape& in,
                                      const std::string& name, ParamLayout& layout,
                                      const std::string& where);
// spec.type "relu" or "tanh".
template <typename T>
std::unique_ptr<Layer<T>> make_activation(const LayerSpec& spec, const ActShape& in,
                                          const std::string& name, ParamLayout& layout,
                                          const std::string& where);

}  // namespace recur
