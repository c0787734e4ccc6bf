#!/usr/bin/env python3
"""Writes the golden fixtures of the recurrent engine with PyTorch (Debian's python3-torch).

Each fixture is a safetensors file holding a small model's weights under the PyTorch state_dict
names recur uses, an input batch, initial states, labels, and what PyTorch computes from them in
float64: the output sequence, final states, logits, the mean cross-entropy loss and the gradient
of that loss with respect to every parameter, the input and the initial states ("grad." prefix).
The model config is stored as recur's JSON in the metadata key "recur.model".

Run from the repository root:  /usr/bin/python3 tests/golden/make_fixtures.py
"""
import json
import os
import struct

import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
DTYPES = {torch.float64: "F64", torch.float32: "F32", torch.int32: "I32"}


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        data = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


class Net(torch.nn.Module):
    def __init__(self, cell, input_size, hidden, layers, bidirectional, projection, classes, pooling):
        super().__init__()
        rnn_in = projection if projection else input_size
        if projection:
            self.proj = torch.nn.Linear(input_size, projection)
        kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
        if cell in kinds:
            self.rnn = kinds[cell](rnn_in, hidden, layers, bidirectional=bidirectional)
        else:
            self.rnn = torch.nn.RNN(rnn_in, hidden, layers, nonlinearity=cell.split("_")[1],
                                    bidirectional=bidirectional)
        self.head = torch.nn.Linear(hidden * (2 if bidirectional else 1), classes)
        self.cell, self.hidden, self.pooling, self.bidirectional = cell, hidden, pooling, bidirectional

    def forward(self, x, h0, c0):
        if hasattr(self, "proj"):
            x = self.proj(x)
        out, state = self.rnn(x, (h0, c0) if self.cell == "lstm" else h0)
        if self.pooling == "last":
            pooled = out[-1]
            if self.bidirectional:
                pooled = torch.cat([out[-1, :, :self.hidden], out[0, :, self.hidden:]], dim=1)
        elif self.pooling == "mean":
            pooled = out.mean(dim=0)
        else:
            pooled = out.max(dim=0).values
        return out, state, self.head(pooled)


def recur_config(cell, input_size, steps, hidden, layers, bidirectional, projection, classes, pooling):
    init = {"kind": "pytorch", "sigma": 0.01, "bias": "pytorch", "bias_value": 0.0}
    return {"cell": cell, "input_size": input_size, "steps": steps, "hidden": hidden,
            "layers": layers, "bidirectional": bidirectional, "projection": projection,
            "pooling": pooling, "num_classes": classes, "dropout": 0.0, "untied": False,
            "bias": True, "init": {"input": init, "recurrent": init, "projection": init,
                                   "head": init, "forget_bias": 0.0}}


def make(name, cell, layers=1, bidirectional=False, projection=0, pooling="last", seed=0):
    torch.manual_seed(seed)
    steps, batch, input_size, hidden, classes = 5, 3, 4, 6, 3
    net = Net(cell, input_size, hidden, layers, bidirectional, projection, classes, pooling).double()
    d = 2 if bidirectional else 1
    x = torch.randn(steps, batch, input_size, dtype=torch.float64, requires_grad=True)
    h0 = (0.5 * torch.randn(layers * d, batch, hidden, dtype=torch.float64)).requires_grad_()
    c0 = (0.5 * torch.randn(layers * d, batch, hidden, dtype=torch.float64)).requires_grad_()
    labels = torch.tensor([0, 2, 1], dtype=torch.int64)
    out, state, logits = net(x, h0, c0)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    hn, cn = state if cell == "lstm" else (state, None)

    tensors = {k: v.detach() for k, v in net.state_dict().items()}
    tensors.update({"x": x.detach(), "h0": h0.detach(), "labels": labels.to(torch.int32),
                    "output": out.detach(), "hn": hn.detach(), "logits": logits.detach(),
                    "loss": loss.detach().reshape(1)})
    if cell == "lstm":
        tensors.update({"c0": c0.detach(), "cn": cn.detach(), "grad.c0": c0.grad})
    for k, p in net.named_parameters():
        tensors["grad." + k] = p.grad
    tensors["grad.x"] = x.grad
    tensors["grad.h0"] = h0.grad
    config = recur_config(cell, input_size, steps, hidden, layers, bidirectional, projection,
                          classes, pooling)
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors,
                      {"recur.model": json.dumps(config), "generator": "tests/golden/make_fixtures.py",
                       "torch": torch.__version__})


def main():
    os.makedirs(OUT, exist_ok=True)
    seed = 0
    for cell in ["lstm", "gru", "rnn_tanh"]:
        for layers in [1, 2]:
            for bidirectional in [False, True]:
                seed += 1
                name = f"{cell}_l{layers}_{'bi' if bidirectional else 'uni'}"
                make(name, cell, layers, bidirectional, seed=seed)
    make("rnn_relu_l1_uni", "rnn_relu", seed=20)
    make("lstm_projection_mean", "lstm", projection=5, pooling="mean", seed=21)
    make("gru_bi_max", "gru", bidirectional=True, pooling="max", seed=22)
    print("fixtures written to", OUT)


if __name__ == "__main__":
    main()
