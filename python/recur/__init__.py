"""recur: recurrent neural networks (RNN, LSTM, GRU) on the CPU, from Python with NumPy.

The same engine, options and checkpoints as the ``recur`` command line::

    import recur
    (x, y), (x_test, y_test) = recur.datasets.mnist("data/mnist")
    model, history = recur.train(x, y, cell="gru", hidden=128, epochs=10)
    labels, probs = model.predict(x_test)
    print(model.evaluate(x_test, y_test)["accuracy"])
    model.save("gru.safetensors")          # `recur predict gru.safetensors ...` reads it
    same = recur.load("gru.safetensors")

Errors: bad arrays raise TypeError (dtype) or ValueError (shape, layout, values); bad options and
bad files raise ValueError with the command line's message; files that cannot be read or written
raise OSError (FileNotFoundError, IsADirectoryError, ...).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Tuple, Union

import numpy as np

from . import _recur, datasets
from ._recur import __version__

__all__ = ["Model", "History", "load", "train", "datasets", "__version__"]

PathLike = Union[str, "os.PathLike[str]"]


def _require_array(a: Any, name: str) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")


class Model:
    """A trained sequence classifier: a recur checkpoint (safetensors) and its data view.

    ``config`` is the model and view as a dict: ``layers`` (the layer list, one dict a layer),
    ``layers_text`` (as ``--model`` takes it), ``num_classes``, ``format`` (1 or 2), and for
    image models ``view``, ``image_rows``, ``image_cols`` (``steps`` and ``input_size`` when the
    view reads sequences); a model with a recurrent layer adds the short form's ``cell``,
    ``hidden``, ``num_layers``, ``bidirectional``, ``dropout``, ``pooling`` (and ``projection``).
    ``metadata`` is the checkpoint's metadata (training config, validation accuracy).
    """

    def __init__(self, core: "Union[_recur.ImageModel, _recur.TextModel]") -> None:
        self._core = core

    @property
    def config(self) -> dict:
        """The model's configuration and data view, as stored in its checkpoint."""
        return self._core.config

    @property
    def metadata(self) -> dict:
        """The checkpoint's metadata entries (strings), e.g. ``recur.train_config``."""
        return self._core.metadata

    @property
    def num_classes(self) -> int:
        """How many classes the model tells apart."""
        return self._core.num_classes

    def predict(self, x: np.ndarray, *, logits: bool = False):
        """Classifies a batch.

        x: uint8 images ``[N, rows, cols]`` (read through the model's view, rows/cols/pixels/
        permuted, exactly as ``recur predict`` reads them) or float32 sequences
        ``[N, steps, features]`` (the model's inputs as they are). C-contiguous, finite.

        Returns ``(labels, probabilities)``: int64 ``[N]`` and float32 ``[N, classes]``; with
        ``logits=True`` also the float32 logits ``[N, classes]``. Equal bit for bit to
        ``recur predict --json`` on the same checkpoint and the same images in the same order
        (both compute blocks of 256; in a block of another size a sample's last bits may
        differ).
        """
        if isinstance(self._core, _recur.TextModel):
            raise TypeError("a text model reads strings: use predict_text()")
        _require_array(x, "x")
        return self._core.predict(x, logits)

    def predict_text(self, texts):
        """Classifies strings with a text model (``recur train --data imdb`` and friends): each
        text tokenized exactly as training did (the vocabulary travels in the checkpoint).

        Returns ``(labels, probabilities)``: int64 ``[N]`` and float32 ``[N, classes]``; the
        class names are ``config["class_names"]``. Raises TypeError for a model of images or
        arrays, ValueError for a text that is not valid UTF-8, is over 1 MiB, or has nothing
        to read (empty or whitespace only: no token to classify).
        """
        if not isinstance(self._core, _recur.TextModel):
            raise TypeError("predict_text needs a text model; this one reads images or "
                            "float32 sequences: use predict()")
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings, not one string")
        return self._core.predict_text(list(texts))

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> dict:
        """Accuracy and mean cross-entropy on ``x`` (as for predict) with integer labels ``y``.

        Returns ``{"accuracy", "loss", "correct", "count"}``.
        """
        _require_array(x, "x")
        _require_array(y, "y")
        return self._core.evaluate(x, y)

    def save(self, path: PathLike) -> None:
        """Writes the model as a recur checkpoint (safetensors, atomically), readable by the
        command line and by ``recur.load``."""
        self._core.save(os.fspath(path))

    def export_onnx(self, path: PathLike) -> dict:
        """Writes the model as ONNX (atomically), as ``recur export MODEL --onnx PATH`` does:
        ONNX Runtime runs it with recur's logits. Image models take uint8 ``images``
        [batch, rows, cols]; text models ``tokens`` and ``lengths`` (int64), their vocabulary
        going beside the file as ``*.tokenizer.json``; outputs ``logits`` and ``probabilities``.
        Returns ``{"path", "tokenizer_path", "inputs", "operators", "bytes"}``; raises ValueError
        (the command line's message) for an unwritable path. docs/EXPORT.md has the details.
        """
        return self._core.export_onnx(os.fspath(path))

    def __repr__(self) -> str:
        return repr(self._core)


def load(path: PathLike) -> Model:
    """Loads a checkpoint written by ``recur train`` or ``Model.save``.

    Raises FileNotFoundError / IsADirectoryError for a missing file or a folder, ValueError for
    a corrupt file or one that is not a recur model (the command line's message).
    """
    path = os.fspath(path)
    if _recur.is_text_model(path):
        return Model(_recur.TextModel(path))
    # Every image model, either checkpoint format: recurrent, MLP, CNN.
    return Model(_recur.ImageModel(path))


@dataclass
class History:
    """What training logged, as arrays.

    At every logged step (``display_step``, and the last step): ``step``, ``epoch`` (0-based),
    ``loss`` and ``accuracy`` (means over the steps since the previous log point), ``lr``,
    ``samples_per_second``. At every validation (each epoch's end and the last step):
    ``val_step``, ``val_epoch``, ``val_loss``, ``val_accuracy``. ``run_dir`` is the run folder
    when ``out=`` was given, else None (a temporary folder was used and removed).
    """

    step: np.ndarray
    epoch: np.ndarray
    loss: np.ndarray
    accuracy: np.ndarray
    lr: np.ndarray
    samples_per_second: np.ndarray
    val_step: np.ndarray
    val_epoch: np.ndarray
    val_loss: np.ndarray
    val_accuracy: np.ndarray
    run_dir: Optional[str] = field(default=None)


Callback = Callable[[Mapping[str, Any]], Optional[bool]]


def train(x: Optional[np.ndarray] = None, y: Optional[np.ndarray] = None, *,
          val: Union[None, int, Tuple[np.ndarray, np.ndarray]] = None,
          callback: Optional[Callback] = None, verbose: bool = True,
          **options: Any) -> Tuple[Model, History]:
    """Trains a classifier, as ``recur train`` does, and returns ``(model, history)``: the
    weights after the last step (the run folder's last.safetensors; with ``out=``, the folder's
    best.safetensors holds the best validation's) and what was logged.

    x, y: uint8 images ``[N, rows, cols]`` (C-contiguous) and integer labels ``[N]`` (classes
    0..max(y)). Without them the IDX files of ``data=`` (default ``data/mnist``) are read, as by
    the command line.

    val: a tuple ``(x_val, y_val)`` of validation arrays, or an int N: the first N images of x
    are the validation split (the command line's ``--val``, default 5000). Both ways give the
    same run: ``val=(x[:N], y[:N])`` with ``x[N:]`` trains exactly like ``val=N`` with ``x``.

    options: every ``recur train`` flag, named with underscores (``cell="gru"``, ``hidden=128``,
    ``epochs=10``, ``view="cols"``, ``bidirectional=True``, ``lr=1e-3``, ``seed=1``,
    ``threads=2``, ...), or ``config="examples/mnist-lstm.toml"`` (keywords override the file).
    A layer list trains too (``model="conv2d 6 kernel=5, relu, maxpool2d 2, flatten, linear"``
    or ``config="examples/mnist-cnn.toml"``); the short form is itself trained as its layer list,
    so every model comes back in the layer format. Text and arrays train as on the command line
    (``data="imdb"``, a label<TAB>text file, an aclImdb folder or a folder of .npy arrays, with
    the text recipe's defaults and the text keywords ``embed``, ``vocab``, ``max_len``, ...);
    the model returned then classifies strings with ``predict_text``.
    ``out="runs/x"`` keeps the run folder (checkpoints, metrics, curves.png); without it a
    temporary folder is used and removed. Same seed, thread count and data: bit-identical to
    the command line.

    callback: called at every logged step with a dict (step, total_steps, epoch, loss,
    accuracy, lr, samples_per_second); returning False ends training after that step (the
    model is validated and returned as at a planned end). Exceptions it raises propagate.

    verbose: print the command line's progress lines to sys.stdout.

    Ctrl-C (KeyboardInterrupt) stops training within a step and propagates.
    """
    if "data" in options and x is not None:
        raise ValueError("give arrays (x, y) or data=FOLDER, not both")
    if (x is None) != (y is None):
        raise ValueError("give both x and y (images and labels), or neither to read data=FOLDER")
    if "config" in options:
        config = os.fspath(options["config"])
        if not os.path.isfile(config):
            raise FileNotFoundError(f"{config}: no such file (config=)")
        options["config"] = config
    for key in ("data", "out", "resume"):
        if key in options:
            options[key] = os.fspath(options[key])
    parts = []
    if val is not None and not isinstance(val, (bool, int, np.integer)):
        if not isinstance(val, (tuple, list)) or len(val) != 2:
            raise TypeError("val must be an int (the first N images of x) or a tuple "
                            "(x_val, y_val)")
        if x is None:
            raise ValueError("val=(x_val, y_val) needs training arrays x, y as well")
        parts.append((val[0], val[1]))
        options["val"] = int(np.shape(val[0])[0]) if np.ndim(val[0]) > 0 else 0
    elif val is not None:
        if isinstance(val, bool):
            raise TypeError("val must be an int or a tuple (x_val, y_val), not a bool")
        options["val"] = int(val)
    if x is not None:
        _require_array(x, "x")
        _require_array(y, "y")
        for name, arr in zip(("val[0]", "val[1]"), parts[0] if parts else ()):
            _require_array(arr, name)
        parts.append((x, y))

    temporary = None
    if "out" not in options and "resume" not in options:
        temporary = tempfile.mkdtemp(prefix="recur-train-")
        options["out"] = os.path.join(temporary, "run")
    try:
        core, h = _recur.train(options, parts, callback, verbose)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    history = History(step=h["step"], epoch=h["epoch"], loss=h["loss"],
                      accuracy=h["accuracy"], lr=h["lr"],
                      samples_per_second=h["samples_per_second"], val_step=h["val_step"],
                      val_epoch=h["val_epoch"], val_loss=h["val_loss"],
                      val_accuracy=h["val_accuracy"],
                      run_dir=None if temporary is not None else h["out"])
    return Model(core), history
