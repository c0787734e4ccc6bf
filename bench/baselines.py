#!/usr/bin/env python3
"""Linear baselines on recur's IMDb split, measured with scikit-learn (Debian's python3-sklearn).

Both models ignore word order, so they are the bar a recurrent model has to clear to show that
reading the words in order pays:

  - TF-IDF of unigrams and bigrams, logistic regression (C=8);
  - NB-weighted binary unigrams and bigrams, logistic regression (C=0.1): the features scaled by
    the log-count ratio of the two classes, as NBSVM does, with a logistic loss.

The split is recur's own (``recur.datasets.imdb``: the same 25,000 / 25,000 reviews as ``recur
train --data imdb``). Only the training reviews fit the vectorizers and the models; the test
reviews are read once, for the figure. Usage (from the repository root, after building with
RECUR_PYTHON=ON):

    PYTHONPATH=build/python python3 bench/baselines.py [--data data/imdb] [--json out.json]

It installs python3-sklearn through apt when it is missing and it runs as root.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def need_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        if os.geteuid() != 0:
            sys.exit("baselines: scikit-learn is missing; apt-get install python3-sklearn")
        print("baselines: installing python3-sklearn", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-q", "python3-sklearn"], check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="data/imdb", help="IMDb folder (recur data fetch imdb)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    if not os.path.exists(args.data):
        print(f"baselines: --data: {args.data} does not exist (recur data fetch imdb)",
              file=sys.stderr)
        return 2
    need_sklearn()
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    import recur

    (train_texts, y_train), (test_texts, y_test) = recur.datasets.imdb(args.data)
    y_train = np.asarray(y_train)
    y_test = np.asarray(y_test)
    print(f"{len(train_texts)} training and {len(test_texts)} test reviews from {args.data}")
    results = []

    def record(name: str, model, x_train, x_test, started: float) -> None:
        model.fit(x_train, y_train)
        accuracy = float((model.predict(x_test) == y_test).mean())
        seconds = time.perf_counter() - started
        results.append({"model": name, "test_accuracy": accuracy, "seconds": seconds,
                        "features": int(x_train.shape[1])})
        print(f"{name}: {100 * accuracy:.2f}% ({seconds:.0f} s, {x_train.shape[1]} features)")

    started = time.perf_counter()
    tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = tfidf.fit_transform(train_texts)
    x_test = tfidf.transform(test_texts)
    record("TF-IDF uni+bigrams, logistic regression (C=8)",
           LogisticRegression(C=8, max_iter=2000), x_train, x_test, started)

    started = time.perf_counter()
    counts = CountVectorizer(ngram_range=(1, 2), min_df=2, binary=True)
    x_train = counts.fit_transform(train_texts).astype(np.float64)
    x_test = counts.transform(test_texts).astype(np.float64)
    # The log-count ratio r = log((p / |p|_1) / (q / |q|_1)), p and q the smoothed feature
    # counts of the positive and negative training reviews.
    p = np.asarray(x_train[y_train == 1].sum(axis=0)).ravel() + 1.0
    q = np.asarray(x_train[y_train == 0].sum(axis=0)).ravel() + 1.0
    r = np.log((p / p.sum()) / (q / q.sum()))
    scale = sparse.diags(r)
    record("NB-weighted binary uni+bigrams, logistic regression (NBSVM-style, C=0.1)",
           LogisticRegression(C=0.1, max_iter=2000), x_train @ scale, x_test @ scale, started)

    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump({"data": args.data, "results": results}, f, indent=2)
        os.replace(args.json + ".tmp", args.json)
    print("\n| model on recur's split | test accuracy |\n|---|---:|")
    for res in results:
        print(f"| {res['model']} | {100 * res['test_accuracy']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
