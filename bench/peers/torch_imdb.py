#!/usr/bin/python3
"""PyTorch's side of the IMDb comparison (bench/compare.py --imdb): the model of recur's IMDb
recipe, an embedding, a bidirectional LSTM run on packed sequences (pack_padded_sequence) and
max pooling over each review's real steps, trained with Adam and gradient clipping on batches
cut by length as recur cuts them (pools of 32 batches sorted by length).

The text pipeline follows recur's rules (lowercase, <br /> removed, words and single punctuation
marks as tokens, a vocabulary of the most frequent training words with <pad> and <unk>, the last
--max-len tokens kept), so both sides see the same vocabulary size and lengths.

    train: samples/s over --steps steps after --warmup steps, and the peak RSS.
    infer: --infer-limit test reviews, every k-th (tokenize, forward at batch 256; timed after the vocabulary is
           built, which recur reads from its checkpoint instead), samples/s.
Prints one JSON line.
"""
import argparse
import json
import os
import re
import resource
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["train", "infer"], required=True)
    p.add_argument("--data", required=True, help="folder holding reviews.json")
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--vocab", type=int, default=20000)
    p.add_argument("--max-len", type=int, default=500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--blas-threads", type=int, default=1)
    p.add_argument("--infer-limit", type=int, default=2000,
                   help="infer: classify every k-th test review, this many in all (packed "
                   "inference is slow here; samples/s does not need all 25,000)")
    p.add_argument("--padded", action="store_true",
                   help="run the LSTM over the padded batch instead of packed sequences (the "
                   "reverse direction then reads padding first: not the same model, a speed "
                   "reference only)")
    return p.parse_args(argv)


TOKEN = re.compile(r"[a-z0-9\x80-\U0010ffff]+(?:'[a-z0-9\x80-\U0010ffff]+)*|[^\sa-z0-9\x80-\U0010ffff]")
BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def tokenize(text):
    text = BREAK.sub(" ", text)
    text = "".join(c.lower() if c < "\x80" else c for c in text)
    return TOKEN.findall(text)


def split(reviews):
    """The same label-stratified halves' sizes as recur's (the exact draw does not matter for
    speed): every other review of each class to training."""
    train, test = [], []
    for k, r in enumerate(reviews):
        (train if k % 2 == 0 else test).append(r)
    return train, test


def main(argv):
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.blas_threads))
    import torch
    from torch import nn
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    with open(os.path.join(args.data, "reviews.json"), encoding="utf-8") as f:
        reviews = json.load(f)
    train, test = split(reviews)
    counts = {}
    train_tokens = [tokenize(r["t"]) for r in train]
    for toks in train_tokens:
        for t in toks:
            counts[t] = counts.get(t, 0) + 1
    words = sorted((w for w, c in counts.items() if c >= 2), key=lambda w: (-counts[w], w))
    vocab = {w: k + 2 for k, w in enumerate(words[: args.vocab - 2])}

    def encode(toks):
        ids = [vocab.get(t, 1) for t in toks][-args.max_len:]
        return ids or [1]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(len(vocab) + 2, args.embed)
            self.rnn = nn.LSTM(args.embed, args.hidden, bidirectional=True)
            self.head = nn.Linear(2 * args.hidden, 2)

        def forward(self, ids, lengths):
            if args.padded:
                out, _ = self.rnn(self.embed(ids))
                mask = torch.arange(ids.shape[0])[:, None] < lengths[None, :]
                out = out.masked_fill(~mask[:, :, None], float("-inf"))
            else:
                out, _ = self.rnn(pack_padded_sequence(self.embed(ids), lengths))
                out, _ = pad_packed_sequence(out, padding_value=float("-inf"))
            return self.head(out.max(0).values)

    net = Net()
    t_ready = time.perf_counter()  # inference is timed from here: recur's eval reads its vocabulary

    def batch_of(samples):
        samples = sorted(samples, key=lambda s: -len(s[0]))
        lengths = torch.tensor([len(s[0]) for s in samples])
        ids = torch.zeros(int(lengths[0]), len(samples), dtype=torch.long)
        for b, (seq, _) in enumerate(samples):
            ids[: len(seq), b] = torch.tensor(seq)
        return ids, lengths, torch.tensor([s[1] for s in samples])

    result = {"impl": "pytorch", "torch_version": torch.__version__, "mode": args.mode,
              "threads": args.threads, "blas_threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
              "hidden": args.hidden, "embed": args.embed, "batch": args.batch,
              "max_len": args.max_len, "vocab": len(vocab) + 2, "padded": args.padded,
              "params": sum(p.numel() for p in net.parameters())}
    if args.mode == "train":
        data = [(encode(t), r["s"]) for t, r in zip(train_tokens, train)]
        g = torch.Generator().manual_seed(1)
        order = torch.randperm(len(data), generator=g).tolist()
        pool = args.batch * 32
        batches = []
        for p in range(0, len(order), pool):
            chunk = sorted(order[p:p + pool], key=lambda i: -len(data[i][0]))
            batches += [chunk[k:k + args.batch] for k in range(0, len(chunk), args.batch)]
        perm = torch.randperm(len(batches), generator=g).tolist()
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        total = args.warmup + args.steps
        t0 = None
        samples = 0
        for step in range(total):
            if step == args.warmup:
                t0 = time.perf_counter()
            ids, lengths, labels = batch_of([data[i] for i in batches[perm[step % len(perm)]]])
            loss = nn.functional.cross_entropy(net(ids, lengths), labels)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            optimizer.step()
            if step >= args.warmup:
                samples += len(labels)
        seconds = time.perf_counter() - t0
        result.update({"steps": args.steps, "samples": samples, "seconds": seconds,
                       "samples_per_second": samples / seconds})
    else:
        net.eval()
        step = max(1, len(test) // max(1, args.infer_limit))
        data = [(encode(tokenize(r["t"])), r["s"]) for r in test[::step][:args.infer_limit]]
        order = sorted(range(len(data)), key=lambda i: -len(data[i][0]))
        correct = 0
        with torch.no_grad():
            for k in range(0, len(order), 256):
                ids, lengths, labels = batch_of([data[i] for i in order[k:k + 256]])
                correct += int((net(ids, lengths).argmax(1) == labels).sum())
        seconds = time.perf_counter() - t_ready
        result.update({"samples": len(data), "seconds": seconds,
                       "samples_per_second": len(data) / seconds})
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
