#!/usr/bin/python3
"""Writes the optimizer golden fixtures under tests/golden/optim/ from torch.optim.

Run with Debian's python (python3-torch): /usr/bin/python3 tests/golden/make_optim_fixtures.py

Each fixture is a safetensors file written by the small writer below (independent of recur's
own writer, so the test also checks that recur reads a foreign file). It holds float32 tensors
  params.0                initial parameters
  grad.k, params.k        gradient given to step k (1..5) and the parameters after that step
  lr                      the learning rate of each step
  state.<name>            torch's optimizer state after the last step (exp_avg, ...)
and metadata with the optimizer's settings, written as the decimals given to torch (recur keeps
settings in float and computes its scalars in double from the shortest decimal of each float,
which gives back these same decimals).

clip.safetensors holds gradients before and after clip_grad_norm_ with the returned norm.

../loss/label_smoothing.safetensors holds logits [12, 7], their labels (as floats), and for each
eps in 0, 0.1 and 0.3 the mean loss and the logits' gradient of
CrossEntropyLoss(label_smoothing=eps), computed in float64 from the float32 logits.
"""
import json
import os
import struct
import zlib

import torch

N = 37
STEPS = 5
# Powers of two: lr * scale is then the double nearest its decimal, as recur reads it.
LR_SCALE = [1.0, 1.0, 0.5, 0.25, 2.0]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim")


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, float32 tensor). Adds recur.checksum (zlib crc32 of the data)."""
    header = {}
    chunks = []
    offset = 0
    for name, t in tensors:
        raw = t.detach().contiguous().to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    data = b"".join(chunks)
    meta = dict(metadata)
    meta["recur.checksum"] = "%08x" % (zlib.crc32(data) & 0xFFFFFFFF)
    text = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def make_inputs():
    g = torch.Generator().manual_seed(20240611)
    # Parameters away from zero so that a relative tolerance means something for every value.
    magnitude = 0.5 + torch.rand(N, generator=g)
    sign = torch.where(torch.rand(N, generator=g) < 0.5, -1.0, 1.0)
    params = (magnitude * sign).to(torch.float32)
    grads = []
    for _ in range(STEPS):
        # Magnitudes spread over three decades; element 0 stays zero (the eps-only path).
        scale = torch.exp(torch.empty(N).uniform_(-4.0, 0.5, generator=g))
        grad = (torch.randn(N, generator=g) * scale).to(torch.float32)
        grad[0] = 0.0
        grads.append(grad)
    return params, grads


# name -> (recur kind, torch class, settings). Settings absent here take torch's defaults, which
# are recur's.
CONFIGS = {
    "sgd": ("sgd", torch.optim.SGD, dict(lr=0.05)),
    "sgd_momentum": ("sgd", torch.optim.SGD, dict(lr=0.02, momentum=0.9)),
    "sgd_nesterov_wd": ("sgd", torch.optim.SGD,
                        dict(lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "sgd_dampening_wd": ("sgd", torch.optim.SGD,
                         dict(lr=0.02, momentum=0.5, dampening=0.25, weight_decay=0.001)),
    "adam": ("adam", torch.optim.Adam, dict(lr=1e-3)),
    "adam_wd": ("adam", torch.optim.Adam, dict(lr=2e-3, betas=(0.8, 0.99), weight_decay=0.05)),
    "adamw": ("adamw", torch.optim.AdamW, dict(lr=1e-3, weight_decay=0.01)),
    "rmsprop": ("rmsprop", torch.optim.RMSprop, dict(lr=1e-3)),
    "rmsprop_centered_momentum": ("rmsprop", torch.optim.RMSprop,
                                  dict(lr=1e-3, centered=True, momentum=0.9)),
    "rmsprop_wd_momentum": ("rmsprop", torch.optim.RMSprop,
                            dict(lr=5e-4, alpha=0.9, eps=1e-6, momentum=0.5, weight_decay=0.01)),
}


def settings_metadata(kind, settings):
    meta = {"kind": kind, "steps": str(STEPS), "torch_version": torch.__version__}
    for key, value in settings.items():
        if key == "betas":
            meta["beta1"], meta["beta2"] = repr(value[0]), repr(value[1])
        elif isinstance(value, bool):
            meta[key] = "true" if value else "false"
        else:
            meta[key] = repr(value)
    return meta


def make_optimizer_fixture(name, kind, cls, settings, params0, grads):
    p = torch.nn.Parameter(params0.clone())
    opt = cls([p], foreach=False, **settings)
    tensors = [("params.0", params0.clone())]
    lrs = []
    for k, grad in enumerate(grads, start=1):
        lr = settings["lr"] * LR_SCALE[k - 1]
        lrs.append(lr)
        for group in opt.param_groups:
            group["lr"] = lr
        p.grad = grad.clone()
        opt.step()
        tensors.append((f"grad.{k}", grad.clone()))
        tensors.append((f"params.{k}", p.detach().clone()))
    assert p.detach().abs().min() > 0.1, f"{name}: a parameter came near zero"
    tensors.append(("lr", torch.tensor(lrs, dtype=torch.float32)))
    meta = settings_metadata(kind, settings)
    for key, value in sorted(opt.state[p].items()):
        if key == "step":
            meta["state_step"] = str(int(value))
        elif torch.is_tensor(value) and value.numel() == N:
            tensors.append((f"state.{key}", value.detach().clone()))
    write_safetensors(os.path.join(OUT, f"{name}.safetensors"), tensors, meta)


def make_clip_fixture(params0, grads):
    tensors = []
    meta = {}
    cases = [("shrink", grads[1] * 8.0, 1.0), ("keep", grads[2], 100.0)]
    for case, grad, max_norm in cases:
        p = torch.nn.Parameter(params0.clone())
        p.grad = grad.clone().to(torch.float32)
        norm = torch.nn.utils.clip_grad_norm_([p], max_norm)
        tensors.append((f"{case}.before", grad.clone().to(torch.float32)))
        tensors.append((f"{case}.after", p.grad.clone()))
        tensors.append((f"{case}.norm", norm.reshape(1).to(torch.float32)))
        meta[f"{case}.max_norm"] = repr(max_norm)
    write_safetensors(os.path.join(OUT, "clip.safetensors"), tensors, meta)


def make_label_smoothing_fixture():
    g = torch.Generator().manual_seed(20261204)
    logits = (3 * torch.randn(12, 7, generator=g)).to(torch.float32)
    labels = torch.randint(0, 7, (12,), generator=g)
    tensors = [("logits", logits), ("labels", labels.to(torch.float32))]
    for eps in ("0", "0.1", "0.3"):
        z = logits.to(torch.float64).clone().requires_grad_(True)
        loss = torch.nn.CrossEntropyLoss(label_smoothing=float(eps))(z, labels)
        loss.backward()
        tensors.append((f"loss.{eps}", loss.detach().reshape(1)))
        tensors.append((f"grad.{eps}", z.grad))
    out = os.path.join(os.path.dirname(OUT), "loss")
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "label_smoothing.safetensors"), tensors,
                      {"torch": torch.__version__})


def main():
    make_label_smoothing_fixture()
    os.makedirs(OUT, exist_ok=True)
    params0, grads = make_inputs()
    for name, (kind, cls, settings) in CONFIGS.items():
        make_optimizer_fixture(name, kind, cls, settings, params0, grads)
    make_clip_fixture(params0, grads)
    print(f"wrote {len(CONFIGS) + 1} fixtures to {OUT}")


if __name__ == "__main__":
    main()
