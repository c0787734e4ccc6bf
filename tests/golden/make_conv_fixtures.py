#!/usr/bin/env python3
"""Writes the golden fixtures of the convolutional layers with PyTorch (Debian's python3-torch).

Each fixture is a safetensors file (in tests/golden/conv/) holding a small torch.nn.Sequential of
Conv2d, MaxPool2d, ReLU, Tanh, Flatten and Linear layers: its weights under their state_dict names
("0.weight", ...), an input batch "x" [B, C, H, W], an upstream gradient "dy" on the output, and
what PyTorch computes from them in float64: the output "y", and the gradients of sum(y * dy) with
respect to every parameter and the input ("grad." prefix). The layer list is stored as JSON in
the metadata key "recur.layers" (recur's LayerSpec fields), the input shape in "recur.input".

Run from the repository root:  /usr/bin/python3 tests/golden/make_conv_fixtures.py
"""
import json
import os

import torch

from make_fixtures import write_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv")


def build(layers, channels):
    """torch modules and recur LayerSpecs for a list of (type, options) pairs."""
    modules, specs = [], []
    for kind, opt in layers:
        spec = {"type": kind}
        if kind == "conv2d":
            stride, padding = opt.get("stride", 1), opt.get("padding", 0)
            bias = opt.get("bias", True)
            modules.append(torch.nn.Conv2d(channels, opt["size"], opt["kernel"], stride=stride,
                                           padding=padding, bias=bias))
            channels = opt["size"]
            spec.update(size=opt["size"], kernel=opt["kernel"], stride=stride, padding=padding,
                        bias=bias)
        elif kind == "maxpool2d":
            stride, padding = opt.get("stride", 0), opt.get("padding", 0)
            modules.append(torch.nn.MaxPool2d(opt["kernel"], stride=stride or None,
                                              padding=padding))
            spec.update(kernel=opt["kernel"], stride=stride, padding=padding)
        elif kind == "linear":
            modules.append(torch.nn.Linear(channels, opt["size"]))
            channels = opt["size"]
            spec.update(size=opt["size"])
        elif kind == "relu":
            modules.append(torch.nn.ReLU())
        elif kind == "tanh":
            modules.append(torch.nn.Tanh())
        elif kind == "flatten":
            modules.append(torch.nn.Flatten())
            channels = opt.get("features", 0)
        specs.append(spec)
    return torch.nn.Sequential(*modules), specs


def make(name, input_shape, layers, seed):
    torch.manual_seed(seed)
    batch, channels, height, width = input_shape
    net, specs = build(layers, channels)
    net = net.double()
    x = torch.randn(batch, channels, height, width, dtype=torch.float64, requires_grad=True)
    y = net(x)
    dy = torch.randn_like(y)
    (y * dy).sum().backward()
    tensors = {k: v.detach() for k, v in net.state_dict().items()}
    tensors.update({"x": x.detach(), "y": y.detach(), "dy": dy, "grad.x": x.grad})
    for k, p in net.named_parameters():
        tensors["grad." + k] = p.grad
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                      {"recur.layers": json.dumps(specs), "recur.input": json.dumps(input_shape),
                       "generator": "tests/golden/make_conv_fixtures.py",
                       "torch": torch.__version__})


def main():
    os.makedirs(OUT, exist_ok=True)
    # LeNet-5's feature extractor on MNIST-sized digits.
    make("lenet", [2, 1, 28, 28],
         [("conv2d", {"size": 6, "kernel": 5, "padding": 2}), ("relu", {}),
          ("maxpool2d", {"kernel": 2}),
          ("conv2d", {"size": 16, "kernel": 5}), ("relu", {}), ("maxpool2d", {"kernel": 2}),
          ("flatten", {})], seed=1)
    # A whole small CNN classifier: convolutions, pooling, flatten and linear layers to 10 scores.
    classifier = [("conv2d", {"size": 4, "kernel": 3, "padding": 1}), ("relu", {}),
                  ("maxpool2d", {"kernel": 2}),
                  ("conv2d", {"size": 6, "kernel": 3}), ("relu", {}), ("maxpool2d", {"kernel": 2}),
                  ("flatten", {"features": 24}), ("linear", {"size": 16}), ("tanh", {}),
                  ("linear", {"size": 10})]
    make("classifier", [3, 1, 12, 12], classifier, seed=4)
    # The same classifier on a batch of 11: past the 8 rows from which recur's batched paths
    # (packed kernels) take over, and not a multiple of their blocks.
    make("classifier_b11", [11, 1, 12, 12], classifier, seed=5)
    # Strides, padding on both layer kinds, odd sizes, no bias, tanh.
    make("strided", [3, 2, 9, 7],
         [("conv2d", {"size": 4, "kernel": 3, "stride": 2, "padding": 1}), ("tanh", {}),
          ("maxpool2d", {"kernel": 3, "stride": 1, "padding": 1}),
          ("conv2d", {"size": 3, "kernel": 2, "stride": 1, "padding": 0, "bias": False}),
          ("relu", {}), ("maxpool2d", {"kernel": 2, "stride": 2}), ("flatten", {})], seed=2)
    # A 1x1 convolution and a kernel as large as the padded input.
    make("pointwise", [2, 3, 5, 5],
         [("conv2d", {"size": 2, "kernel": 1}), ("conv2d", {"size": 3, "kernel": 7,
                                                            "padding": 1}),
          ("flatten", {})], seed=3)
    print("fixtures written to", OUT)


if __name__ == "__main__":
    main()
