#!/usr/bin/env python3
"""Writes the golden fixtures of models built from layers with PyTorch (Debian's python3-torch).

Variable-length batches go through torch.nn.utils.rnn.pack_padded_sequence, so the reference is
PyTorch's own packed-sequence path: an embedding, a recurrent stack (LSTM, GRU, RNN; uni- or
bidirectional), pooling over each sample's real steps (last / mean / max / maxmean: max and mean side by
side), a linear head. Batches
have 9 rows so that recur's packed fast path (used from 8 rows on) is compared directly. Each file
holds the weights under PyTorch's state_dict names, the ids [steps, batch] (int32, 0 at padded
steps), the lengths, the labels, and in float64 the padded output sequence, the logits, the mean
cross-entropy loss and every parameter's gradient ("grad." prefix). recur's description of the
model is stored as JSON in the metadata key "recur.spec".

Run from the repository root:  /usr/bin/python3 tests/golden/make_layer_fixtures.py
(append `pool1d` to write only the maxpool1d / avgpool1d fixtures, `maxmean` for only the
maxmean ones)
"""
import json
import os
import sys

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import write_safetensors  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers")
INIT = {"kind": "pytorch", "sigma": 0.01, "bias": "pytorch", "bias_value": 0.0}


class TextNet(torch.nn.Module):
    def __init__(self, vocab, dim, cell, hidden, layers, bidirectional, pooling, classes,
                 features):
        super().__init__()
        if vocab:
            self.embed = torch.nn.Embedding(vocab, dim)
        rnn_in = dim if vocab else features
        kinds = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
        if cell in kinds:
            self.rnn = kinds[cell](rnn_in, hidden, layers, bidirectional=bidirectional)
        else:
            self.rnn = torch.nn.RNN(rnn_in, hidden, layers, nonlinearity=cell.split("_")[1],
                                    bidirectional=bidirectional)
        pooled = hidden * (2 if bidirectional else 1) * (2 if pooling == "maxmean" else 1)
        self.head = torch.nn.Linear(pooled, classes)
        self.hidden, self.pooling = hidden, pooling

    def forward(self, inputs, lengths, embedded=False):
        x = self.embed(inputs) if hasattr(self, "embed") and not embedded else inputs
        steps, batch = x.shape[0], x.shape[1]
        packed = pack_padded_sequence(x, lengths)
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, total_length=steps)
        mask = torch.arange(steps)[:, None] < lengths[None, :]
        H = self.hidden
        if self.pooling == "last":
            pooled = out[lengths - 1, torch.arange(batch)]
            if out.shape[2] == 2 * H:
                pooled = torch.cat([pooled[:, :H], out[0, :, H:]], dim=1)
        elif self.pooling == "mean":
            pooled = (out * mask[:, :, None]).sum(0) / lengths[:, None].to(out.dtype)
        elif self.pooling == "max":
            pooled = out.masked_fill(~mask[:, :, None], float("-inf")).max(0).values
        else:  # maxmean
            pooled = torch.cat([out.masked_fill(~mask[:, :, None], float("-inf")).max(0).values,
                                (out * mask[:, :, None]).sum(0) / lengths[:, None].to(out.dtype)],
                               dim=1)
        return out, self.head(pooled)


class PooledTextNet(TextNet):
    """[embedding ->] MaxPool1d or AvgPool1d(kernel, stride) over each sample's real steps -> TextNet's
    recurrent stack, pooling and head on the pooled lengths, (L - kernel) // stride + 1 (every
    sample at least `kernel` steps long: PyTorch's own rule). "output" is the pooled sequence,
    zero past each sample's pooled length."""

    def __init__(self, kernel, stride, kind, *args):
        super().__init__(*args)
        self.kernel, self.stride = kernel, stride
        self.pool1d = (torch.nn.AvgPool1d if kind == "avg" else torch.nn.MaxPool1d)(kernel, stride)

    def forward(self, inputs, lengths):
        x = self.embed(inputs) if hasattr(self, "embed") else inputs
        pooled_lengths = (lengths - self.kernel) // self.stride + 1
        batch, width = x.shape[1], x.shape[2]
        pooled = torch.zeros(int(pooled_lengths[0]), batch, width, dtype=x.dtype)
        for b in range(batch):
            sample = x[:int(lengths[b]), b, :].t().unsqueeze(0)        # [1, F, L]
            pooled[:int(pooled_lengths[b]), b, :] = self.pool1d(sample)[0].t()
        _, logits = super().forward(pooled, pooled_lengths, embedded=True)
        return pooled, logits


def spec(vocab, dim, cell, hidden, layers, bidirectional, pooling, classes, features,
         pool1d=None):
    if vocab:
        inp = {"kind": "sequence", "features": 0, "height": 0, "width": 0, "ids": True}
        chain = [{"type": "embedding", "name": "embed", "vocab": vocab, "size": dim,
                  "init": INIT}]
    else:
        inp = {"kind": "sequence", "features": features, "height": 0, "width": 0, "ids": False}
        chain = []
    if pool1d:
        chain.append({"type": pool1d[2] + "pool1d", "name": "pool1d", "kernel": pool1d[0],
                      "stride": pool1d[1]})
    chain += [{"type": "recurrent", "name": "rnn", "cell": cell, "size": hidden,
               "layers": layers, "bidirectional": bidirectional, "bias": True, "dropout": 0.0,
               "init": INIT, "init_recurrent": INIT, "forget_bias": 0.0},
              {"type": "pool", "name": "pool", "pooling": pooling},
              {"type": "linear", "name": "head", "size": classes, "bias": True, "init": INIT}]
    return {"input": inp, "num_classes": classes, "layers": chain}


def make(name, cell, layers, bidirectional, pooling, lengths, vocab=23, seed=0, pool1d=None):
    torch.manual_seed(seed)
    dim, hidden, classes, features = 6, 5, 3, 4
    lengths = torch.tensor(lengths, dtype=torch.int64)
    steps, batch = int(lengths[0]), len(lengths)
    args = (vocab, dim, cell, hidden, layers, bidirectional, pooling, classes, features)
    net = (PooledTextNet(*pool1d, *args) if pool1d else TextNet(*args)).double()
    mask = torch.arange(steps)[:, None] < lengths[None, :]
    tensors = {}
    if vocab:
        ids = torch.randint(2, vocab, (steps, batch)) * mask
        inputs = ids
        tensors["ids"] = ids.to(torch.int32)
    else:
        inputs = torch.randn(steps, batch, features, dtype=torch.float64) * mask[:, :, None]
        tensors["x"] = inputs
    labels = torch.randint(0, classes, (batch,))
    out, logits = net(inputs, lengths)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    tensors.update({k: v.detach() for k, v in net.state_dict().items()})
    tensors.update({"lengths": lengths.to(torch.int32), "labels": labels.to(torch.int32),
                    "output": out.detach(), "logits": logits.detach(),
                    "loss": loss.detach().reshape(1)})
    for k, p in net.named_parameters():
        tensors["grad." + k] = p.grad
    meta = {"recur.spec": json.dumps(spec(*args, pool1d=pool1d)),
            "generator": "tests/golden/make_layer_fixtures.py", "torch": torch.__version__}
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)


class ConvTextNet(torch.nn.Module):
    """embedding -> Conv1d(padding=k//2) over each sample's real steps -> relu -> max over the
    real steps -> linear. Padded steps of the embedding are zeroed before the convolution (so a
    sample's window sees zeros past its end, as it would alone) and the convolution's outputs
    there are zeroed too (the "output" recur's conv1d layer must give)."""

    def __init__(self, vocab, dim, channels, kernel, classes):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, dim)
        self.conv = torch.nn.Conv1d(dim, channels, kernel, padding=kernel // 2)
        self.head = torch.nn.Linear(channels, classes)

    def forward(self, ids, lengths):
        steps = ids.shape[0]
        mask = (torch.arange(steps)[:, None] < lengths[None, :])[:, :, None]
        x = self.embed(ids) * mask                                  # [S, B, E]
        out = self.conv(x.permute(1, 2, 0)).permute(2, 0, 1) * mask  # [S, B, C]
        h = torch.relu(out)
        pooled = h.masked_fill(~mask, float("-inf")).max(0).values
        return out, self.head(pooled)


def make_conv(name, kernel, lengths, vocab=23, seed=0):
    torch.manual_seed(seed)
    dim, channels, classes = 6, 7, 3
    lengths = torch.tensor(lengths, dtype=torch.int64)
    steps, batch = int(lengths[0]), len(lengths)
    net = ConvTextNet(vocab, dim, channels, kernel, classes).double()
    mask = torch.arange(steps)[:, None] < lengths[None, :]
    ids = torch.randint(2, vocab, (steps, batch)) * mask
    labels = torch.randint(0, classes, (batch,))
    out, logits = net(ids, lengths)
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    tensors = {k: v.detach() for k, v in net.state_dict().items()}
    tensors.update({"ids": ids.to(torch.int32), "lengths": lengths.to(torch.int32),
                    "labels": labels.to(torch.int32), "output": out.detach(),
                    "logits": logits.detach(), "loss": loss.detach().reshape(1)})
    for k, p in net.named_parameters():
        tensors["grad." + k] = p.grad
    inp = {"kind": "sequence", "features": 0, "height": 0, "width": 0, "ids": True}
    chain = [{"type": "embedding", "name": "embed", "vocab": vocab, "size": dim, "init": INIT},
             {"type": "conv1d", "name": "conv", "size": channels, "kernel": kernel, "stride": 1,
              "padding": kernel // 2, "bias": True, "init": INIT},
             {"type": "relu", "name": "relu"},
             {"type": "pool", "name": "pool", "pooling": "max"},
             {"type": "linear", "name": "head", "size": classes, "bias": True, "init": INIT}]
    meta = {"recur.spec": json.dumps({"input": inp, "num_classes": classes, "layers": chain}),
            "generator": "tests/golden/make_layer_fixtures.py", "torch": torch.__version__}
    write_safetensors(os.path.join(OUT, name + ".safetensors"), tensors, meta)


def make_pool1d():
    """Strided max and average pooling over time before a recurrent layer (layers that change
    lengths)."""
    make("embed_maxpool1d_k3s2_lstm_last", "lstm", 1, False, "last",
         [13, 12, 12, 10, 9, 7, 5, 4, 3], seed=13, pool1d=(3, 2, "max"))
    make("features_maxpool1d_k2_bigru_b9_mean", "gru", 1, True, "mean", [10] * 9, vocab=0,
         seed=14, pool1d=(2, 2, "max"))
    make("features_maxpool1d_k3s1_rnn_ragged_max", "rnn_tanh", 1, False, "max",
         [8, 8, 7, 5, 4, 3, 3], vocab=0, seed=15, pool1d=(3, 1, "max"))
    make("embed_avgpool1d_k3s2_gru_mean", "gru", 1, True, "mean",
         [13, 12, 12, 10, 9, 7, 5, 4, 3], seed=16, pool1d=(3, 2, "avg"))


def make_maxmean():
    """Max and mean pooling side by side (--pooling maxmean), on ragged and full batches."""
    make("embed_bilstm_maxmean", "lstm", 1, True, "maxmean", [9, 8, 8, 6, 5, 3, 3, 2, 1],
         seed=17)
    make("features_gru_b9_maxmean", "gru", 1, False, "maxmean", [7] * 9, vocab=0, seed=18)


def main():
    os.makedirs(OUT, exist_ok=True)
    if sys.argv[1:] == ["maxmean"]:  # only the maxmean fixtures (the others stay as written)
        make_maxmean()
        print("fixtures written to", OUT)
        return
    if sys.argv[1:] == ["pool1d"]:  # only the pooling fixtures (the others stay as written)
        make_pool1d()
        print("fixtures written to", OUT)
        return
    ragged = [9, 8, 8, 6, 5, 3, 3, 2, 1]
    make("embed_bilstm_max", "lstm", 1, True, "max", ragged, seed=1)
    make("embed_bilstm2_max", "lstm", 2, True, "max", ragged, seed=2)
    make("embed_lstm_last", "lstm", 1, False, "last", ragged, seed=3)
    make("embed_bigru_mean", "gru", 1, True, "mean", ragged, seed=4)
    make("embed_birnn_last", "rnn_tanh", 2, True, "last", ragged, seed=5)
    make("embed_gru_max", "gru", 2, False, "max", ragged, seed=6)
    # Full-length batches of 9 feature sequences: the packed path against PyTorch directly.
    full = [7] * 9
    make("features_lstm_b9_last", "lstm", 2, False, "last", full, vocab=0, seed=7)
    make("features_bigru_b9_mean", "gru", 1, True, "mean", full, vocab=0, seed=8)
    make("features_rnn_b9_max", "rnn_tanh", 1, True, "max", full, vocab=0, seed=9)
    make("features_bilstm_ragged_mean", "lstm", 1, True, "mean", ragged, vocab=0, seed=10)
    # 1-D convolutions over embeddings on ragged batches (kernels wider than the shortest samples).
    make_conv("embed_conv1d_k5_max", 5, ragged, seed=11)
    make_conv("embed_conv1d_k3_max", 3, [12, 11, 9, 9, 7, 4, 2, 2, 1, 1], seed=12)
    make_pool1d()
    make_maxmean()
    print("fixtures written to", OUT)


if __name__ == "__main__":
    main()
