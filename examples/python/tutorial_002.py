#!/usr/bin/env python3
"""Tutorial 002 from Python: a tanh RNN with 128 units reads each MNIST digit row by row.

The tutorial's model and data (RNN-128, batch 100, 10 epochs, the first 5,000 training images for
validation, seed 1) trained with recur's own recipe (its defaults: Adam 4e-3 with a cosine decay,
gradients clipped to norm 5); the notebook's Glorot weights and constant Adam 1e-3, as in
examples/tutorial-002-rnn.toml, reach 96.95% here. Then the accuracy on the 10,000 test images.

    bash scripts/install-python.sh            # once: the recur module for /usr/bin/python3
    python3 examples/python/tutorial_002.py [--data data/mnist]
"""

import argparse

import recur

p = argparse.ArgumentParser(description="Tutorial 002: RNN-128 on MNIST rows")
p.add_argument("--data", default="data/mnist", help="folder of the MNIST IDX files")
args = p.parse_args()

(x_train, y_train), (x_test, y_test) = recur.datasets.mnist(args.data)
model, history = recur.train(
    x_train[5000:], y_train[5000:], val=(x_train[:5000], y_train[:5000]),
    view="rows", cell="rnn", hidden=128, batch=100, epochs=10, seed=1, display_step=550,
    verbose=False)

for step, acc in zip(history.val_step, history.val_accuracy):
    print(f"step {step:5d}  validation accuracy {100 * acc:.2f}%")
result = model.evaluate(x_test, y_test)
print(f"test accuracy {100 * result['accuracy']:.2f}% ({10000 - result['correct']} of "
      f"{result['count']} misclassified)")
labels, probs = model.predict(x_test[:5])
print("first five test digits:", labels.tolist(), "labels", y_test[:5].tolist())
