#!/usr/bin/env python3
"""The PyTorch peer of bench/serve/load.py: the same MNIST LSTM (the checkpoint's tensors loaded
into torch.nn.LSTM + Linear, last step to the head) behind Python's ThreadingHTTPServer,
answering POST /v2/models/NAME/infer (UINT8 [N, 28, 28]) with the outputs recur serve gives.
With --onnx PATH it only exports the model to ONNX (torch.onnx) for the ONNX Runtime peer.

  torch_server.py MODEL.safetensors --port P      (prints "listening" when ready)
  torch_server.py MODEL.safetensors --onnx OUT.onnx
"""
import argparse
import json
import struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        a, b = info["data_offsets"]
        tensors[name] = torch.from_numpy(
            np.frombuffer(blob[a:b], dtype="<f4").reshape(info["shape"]).copy())
    return tensors


class Net(torch.nn.Module):
    def __init__(self, t):
        super().__init__()
        hidden = t["rnn.weight_hh_l0"].shape[1]
        self.rnn = torch.nn.LSTM(t["rnn.weight_ih_l0"].shape[1], hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, t["head.weight"].shape[0])
        self.load_state_dict(t)

    def forward(self, x):  # x [N, 28, 28] floats in [0, 1]
        out, _ = self.rnn(x)
        return self.head(out[:, -1, :])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--onnx")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    net = Net(read_safetensors(args.model)).eval()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.onnx:
        torch.onnx.export(net, torch.zeros(1, 28, 28), args.onnx, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
                          opset_version=14)
        return

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            t = body["inputs"][0]
            x = torch.tensor(t["data"], dtype=torch.float32).reshape(t["shape"]) / 255.0
            with torch.no_grad():
                logits = net(x)
            probs = torch.softmax(logits, dim=1)
            n, c = logits.shape
            answer = json.dumps({"model_name": "mnist", "outputs": [
                {"name": "logits", "datatype": "FP32", "shape": [n, c],
                 "data": logits.flatten().tolist()},
                {"name": "probabilities", "datatype": "FP32", "shape": [n, c],
                 "data": probs.flatten().tolist()},
                {"name": "labels", "datatype": "INT32", "shape": [n],
                 "data": logits.argmax(1).tolist()}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("listening", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
