"""Inference from Python against the command line on the same checkpoints."""

import json
import os

import numpy as np
import pytest

import recur
from conftest import read_safetensors, run_cli

N = 300  # test images compared per model


def permuted_order(seed, n):
    """The permuted view's pixel order (src/data/view.cpp): Fisher-Yates over 0..n-1 with recur's
    Rng (include/recur/rng.hpp: xoshiro256** seeded by splitmix64, `below` without modulo bias)."""
    mask = (1 << 64) - 1
    state = []
    sm = seed & mask
    for _ in range(4):
        sm = (sm + 0x9E3779B97F4A7C15) & mask
        z = sm
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        state.append(z ^ (z >> 31))

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & mask

    def next_u64():
        s = state
        result = (rotl((s[1] * 5) & mask, 7) * 9) & mask
        t = (s[1] << 17) & mask
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(k):
        limit = mask - (mask % k)
        while True:
            r = next_u64()
            if r < limit:
                return r % k

    order = list(range(n))
    for i in range(n, 1, -1):
        j = below(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return np.array(order)


def cli_predictions(cli, model_path, data_dir, count):
    images = os.path.join(data_dir, "t10k-images-idx3-ubyte")
    out = run_cli(cli, "predict", model_path, images, "--index",
                  ",".join(map(str, range(count))), "--json", "--top", "10")
    return json.loads(out)


def test_version_and_api():
    assert recur.__version__ == "0.1.0"
    for name in ("load", "train", "Model", "History", "datasets"):
        assert hasattr(recur, name)
    assert recur.train.__doc__ and recur.Model.predict.__doc__


def test_predict_equals_cli_json_bit_for_bit(cli, cli_model, data_dir, mnist):
    name, path = cli_model
    (_, _), (x_test, y_test) = mnist
    model = recur.load(path)
    labels, probs, logits = model.predict(x_test[:N], logits=True)
    assert labels.dtype == np.int64 and labels.shape == (N,)
    assert probs.dtype == np.float32 and probs.shape == (N, 10)
    assert logits.dtype == np.float32 and logits.shape == (N, 10)
    rows = cli_predictions(cli, path, data_dir, N)
    assert len(rows) == N
    cli_logits = np.array([r["logits"] for r in rows], dtype=np.float32)
    cli_probs = np.zeros((N, 10), dtype=np.float32)
    for i, r in enumerate(rows):
        for t in r["top"]:
            cli_probs[i, t["class"]] = np.float32(t["probability"])
    cli_labels = np.array([r["prediction"] for r in rows])
    # JSON carries each float32 as a double that reads back exactly.
    assert np.array_equal(logits.view(np.uint32), cli_logits.view(np.uint32)), name
    assert np.array_equal(probs.view(np.uint32), cli_probs.view(np.uint32)), name
    assert np.array_equal(labels, cli_labels), name
    assert [r["label"] for r in rows] == y_test[:N].tolist()


def test_int8_predictions_equal_cli_json_bit_for_bit(cli, cli_model, data_dir, mnist):
    name, path = cli_model
    (_, _), (x_test, _) = mnist
    fp32 = recur.load(path).predict(x_test[:N], logits=True)[2]
    labels, _, logits = recur.load(path, precision="int8").predict(x_test[:N], logits=True)
    images = os.path.join(data_dir, "t10k-images-idx3-ubyte")
    rows = json.loads(run_cli(cli, "predict", path, images, "--index",
                              ",".join(map(str, range(N))), "--json", "--precision", "int8"))
    cli_logits = np.array([r["logits"] for r in rows], dtype=np.float32)
    assert np.array_equal(logits.view(np.uint32), cli_logits.view(np.uint32)), name
    assert np.array_equal(labels, [r["prediction"] for r in rows]), name
    # int8 is close to fp32 but its own arithmetic (not the same bits) wherever it applies.
    scale = float(np.abs(fp32).max())
    assert float(np.abs(logits - fp32).max()) < 0.05 * scale, name
    with pytest.raises(ValueError, match="precision"):
        recur.load(path, precision="int4")


def test_predict_float_sequences_equal_images(cli_model, mnist):
    name, path = cli_model
    (_, _), (x_test, _) = mnist
    model = recur.load(path)
    images = x_test[:64]
    scaled = images.astype(np.float32) / np.float32(255)
    view = model.config["view"]
    if view == "rows":
        seq = scaled
    elif view == "cols":
        seq = np.ascontiguousarray(scaled.transpose(0, 2, 1))
    else:
        assert view == "permuted", view
        order = permuted_order(model.config["view_seed"], 28 * 28)
        seq = np.ascontiguousarray(scaled.reshape(len(images), 28 * 28)[:, order][:, :, None])
    l1, p1 = model.predict(images)
    l2, p2 = model.predict(seq)
    assert np.array_equal(p1, p2) and np.array_equal(l1, l2)


def test_predict_agrees_across_call_sizes(cli_model, mnist):
    # The packed kernels may round a sample's last bits differently in a batch of another size,
    # so one at a time is close, not identical (the command line cuts the same blocks of 256).
    _, path = cli_model
    (_, _), (x_test, _) = mnist
    model = recur.load(path)
    labels, all_at_once = model.predict(x_test[:300])
    singles = [model.predict(x_test[i:i + 1]) for i in range(0, 300, 37)]
    np.testing.assert_allclose(np.concatenate([p for _, p in singles]), all_at_once[::37],
                               rtol=1e-5, atol=1e-7)
    assert np.concatenate([l for l, _ in singles]).tolist() == labels[::37].tolist()


def test_evaluate_equals_cli_eval(cli, cli_model, data_dir, mnist):
    name, path = cli_model
    (_, _), (x_test, y_test) = mnist
    model = recur.load(path)
    r = model.evaluate(x_test, y_test)
    e = json.loads(run_cli(cli, "eval", path, "--data", data_dir, "--json"))
    assert r["count"] == 10000
    assert r["correct"] == 10000 - e["misclassified"]
    assert r["accuracy"] == pytest.approx(e["accuracy"], abs=0)
    assert 0 < r["loss"] < 3


def test_config_and_metadata(cli_model):
    name, path = cli_model
    model = recur.load(path)
    c = model.config
    assert c["cell"].startswith(name.split("_")[0])
    assert c["view"] == name.split("_")[1]
    assert (c["image_rows"], c["image_cols"], c["num_classes"]) == (28, 28, 10)
    assert model.num_classes == 10
    assert "recur.train_config" in model.metadata
    assert "recur.spec" in model.metadata  # the layer format, "recur-model-2"
    recurrent = next(layer for layer in c["layers"] if layer["type"] == "recurrent")
    assert c["cell"] == recurrent["cell"] and c["format"] == 2
    assert name.split("_")[0] in repr(model)


def test_save_roundtrip_and_cli_reads_it(cli, cli_model, data_dir, mnist, tmp_path):
    _, path = cli_model
    (_, _), (x_test, _) = mnist
    model = recur.load(path)
    copy = tmp_path / "copy.safetensors"
    model.save(copy)
    a, meta_a = read_safetensors(path)
    b, meta_b = read_safetensors(copy)
    assert a == b
    assert meta_a == meta_b
    again = recur.load(copy)
    assert np.array_equal(again.predict(x_test[:50])[1], model.predict(x_test[:50])[1])
    assert cli_predictions(cli, copy, data_dir, 5) == cli_predictions(cli, path, data_dir, 5)


@pytest.fixture(scope="module")
def gru(cli_model):
    return recur.load(cli_model[1])


def test_bad_arrays_raise_clear_errors(gru, mnist):
    (_, _), (x_test, y_test) = mnist
    x = x_test[:4]
    with pytest.raises(TypeError, match="uint8 images .* or float32 sequences .* got dtype float64"):
        gru.predict(x.astype(np.float64))
    with pytest.raises(TypeError, match="got dtype int32"):
        gru.predict(x.astype(np.int32))
    with pytest.raises(ValueError, match=r"3 dimensions.*got shape \(28, 28\).*x\[None\]"):
        gru.predict(x[0])
    with pytest.raises(ValueError, match="reads 28x28 images .* holds 27x28"):
        gru.predict(np.ascontiguousarray(x[:, :27]))
    seq = x.astype(np.float32) / 255
    if gru.config["view"] != "permuted":
        with pytest.raises(ValueError, match="not C-contiguous.*np.ascontiguousarray"):
            gru.predict(x_test[:8:2])  # every other image: a strided view
        with pytest.raises(ValueError, match="not C-contiguous"):
            gru.predict(np.swapaxes(seq, 1, 2))  # 28 x 28 sequences, transposed in place
    steps = gru.config["steps"]
    feats = gru.config["input_size"]
    bad = np.zeros((2, steps, feats), dtype=np.float32)
    bad[1, 3, feats - 1] = np.nan
    with pytest.raises(ValueError, match=rf"x\[1, 3, {feats - 1}\] is nan: inputs must be finite"):
        gru.predict(bad)
    bad[1, 3, feats - 1] = -np.inf
    with pytest.raises(ValueError, match="is -inf"):
        gru.predict(bad)
    with pytest.raises(ValueError, match="sequences of"):
        gru.predict(np.zeros((2, steps + 1, feats), dtype=np.float32))
    with pytest.raises(TypeError, match="integer class labels"):
        gru.evaluate(x, y_test[:4].astype(np.float32))
    with pytest.raises(ValueError, match="holds 3 labels but there are 4 samples"):
        gru.evaluate(x, y_test[:3])
    with pytest.raises(ValueError, match=r"y\[2\] = 10 is not a class of the model \(0..9\)"):
        gru.evaluate(x, np.array([1, 2, 10, 3]))
    with pytest.raises(ValueError, match=r"y\[0\] = -1"):
        gru.evaluate(x, np.array([-1, 2, 1, 3], dtype=np.int8))
    with pytest.raises(TypeError, match="x must be a NumPy array, got list"):
        gru.predict(x.tolist())
    with pytest.raises(TypeError, match="y must be a NumPy array, got list"):
        gru.evaluate(x, [1, 2, 3, 4])
    # Empty input is no error.
    labels, probs = gru.predict(x[:0])
    assert labels.shape == (0,) and probs.shape == (0, 10)
    # The interpreter is still fine.
    assert gru.predict(x)[0].shape == (4,)


def test_bad_files(tmp_path, gru):
    with pytest.raises(FileNotFoundError, match="nope.safetensors: no such file"):
        recur.load(tmp_path / "nope.safetensors")
    with pytest.raises(IsADirectoryError, match="is a folder"):
        recur.load(tmp_path)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(ValueError, match="junk.safetensors"):
        recur.load(junk)
    with pytest.raises(OSError, match="does not exist"):
        gru.save(tmp_path / "no" / "such" / "folder" / "m.safetensors")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        recur.datasets.mnist(tmp_path / "nowhere")


def test_text_model_predicts_as_the_command_line(gru, cli, tmp_path):
    """A text model trained by the command line on a label<TAB>text file: predict_text gives
    the classes and probabilities of `recur predict --json --text`, and datasets.imdb-style
    loading reads the same file."""
    good, bad = ["wonderful", "superb", "moving"], ["awful", "boring", "dull"]
    filler = ["the", "film", "plot", "was", "a", "story"]
    rng = np.random.default_rng(4)
    lines = []
    for k in range(400):
        label = k % 2
        words = [filler[i] for i in rng.integers(0, len(filler), 6)]
        words.insert(int(rng.integers(0, 6)), (good if label else bad)[int(rng.integers(0, 3))])
        lines.append(f"{label}\t{' '.join(words)}")
    data = tmp_path / "texts.tsv"
    data.write_text("\n".join(lines) + "\n")
    run_cli(cli, "train", "--data", data, "--out", tmp_path / "text-run", "--epochs", "4",
            "--hidden", "8", "--embed", "8", "--batch", "16", "--lr", "0.01", "--threads", "1")
    model = recur.load(tmp_path / "text-run" / "last.safetensors")
    assert model.config["class_names"] == ["0", "1"]
    texts = ["The plot was SUPERB!", "a dull, dull story", "Ünïcode wörds film"]
    labels, probs = model.predict_text(texts)
    assert labels.dtype == np.int64 and probs.dtype == np.float32 and probs.shape == (3, 2)
    assert list(labels[:2]) == [1, 0]
    args = ["predict", tmp_path / "text-run" / "last.safetensors", "--json"]
    for t in texts:
        args += ["--text", t]
    ref = json.loads(run_cli(cli, *args))
    assert [r["class"] for r in ref] == list(labels)
    np.testing.assert_array_equal(np.array([r["probabilities"] for r in ref], np.float32), probs)
    with pytest.raises(TypeError, match="use predict_text"):
        model.predict(np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(TypeError, match="needs a text model"):
        gru.predict_text(["a fine film"])
    with pytest.raises(TypeError, match="list of strings"):
        model.predict_text("one string")
    (tr, ytr), (te, yte) = recur.datasets.imdb(data)
    assert len(tr) == 320 and len(te) == 80 and ytr.dtype == np.int64
    assert sorted(tr + te) == sorted(line.split("\t", 1)[1] for line in lines)
    with pytest.raises(FileNotFoundError):
        recur.datasets.imdb(tmp_path / "nowhere")


def test_mnist_arrays(mnist, data_dir):
    (x, y), (xt, yt) = mnist
    assert x.shape == (60000, 28, 28) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert y.shape == (60000,) and y.dtype == np.int32
    assert xt.shape == (10000, 28, 28) and yt.shape == (10000,)
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # The first test image is a 7, and its pixels are those of the file.
    raw = open(os.path.join(data_dir, "t10k-images-idx3-ubyte"), "rb").read()
    assert yt[0] == 7 and xt[0].tobytes() == raw[16:16 + 784]


# Layer lists trained by `recur train --model` (docs/LAYERS.md): a CNN on whole images and a
# GRU over columns.
LAYERED = {
    "cnn": ["--model", "conv2d 3 kernel=3 padding=1, relu, maxpool2d 2, flatten, linear"],
    "gru_cols": ["--model", "gru 12 bidirectional, pool mean, linear", "--view", "cols"],
}


@pytest.fixture(scope="module", params=sorted(LAYERED))
def layered_model(request, cli, data_dir, work):
    name = request.param
    out = work / f"layered-{name}"
    if not (out / "last.safetensors").exists():
        run_cli(cli, "train", *LAYERED[name], "--steps", "60", "--lr", "0.01", "--batch", "32",
                "--val", "200", "--train-limit", "2000", "--threads", "1", "--data", data_dir,
                "--out", out)
    return name, out / "last.safetensors"


def test_layered_model_predicts_and_evaluates_as_the_command_line(cli, layered_model, data_dir,
                                                                   mnist, tmp_path):
    name, path = layered_model
    (_, _), (x_test, y_test) = mnist
    model = recur.load(path)
    assert model.num_classes == 10
    assert model.config["view"] == ("image" if name == "cnn" else "cols")
    assert model.config["layers_text"] == LAYERED[name][1]
    labels, probs, logits = model.predict(x_test[:N], logits=True)
    rows = cli_predictions(cli, path, data_dir, N)
    cli_logits = np.array([r["logits"] for r in rows], dtype=np.float32)
    assert np.array_equal(logits.view(np.uint32), cli_logits.view(np.uint32)), name
    assert labels.tolist() == [r["prediction"] for r in rows]
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    r = model.evaluate(x_test, y_test)
    e = json.loads(run_cli(cli, "eval", path, "--data", data_dir, "--json", "--gallery", "0",
                           "--out", tmp_path / "ev"))
    assert r["count"] == 10000 and r["correct"] == 10000 - e["misclassified"]
    assert r["accuracy"] > 0.3  # 60 steps: far above chance (0.1)
    copy = tmp_path / "copy.safetensors"
    model.save(copy)
    assert np.array_equal(recur.load(copy).predict(x_test[:N])[1], probs)  # same blocks
    if name == "cnn":  # whole images: uint8 only (sequence models also take float32 steps)
        with pytest.raises(TypeError, match="uint8 images"):
            model.predict(x_test[:4].astype(np.float32))
    with pytest.raises(ValueError, match="reads 28x28 images .* holds 20x28"):
        model.predict(x_test[:4, :20])
    with pytest.raises(ValueError, match="one sample"):
        model.predict(x_test[0])
    with pytest.raises(TypeError, match="use predict"):
        model.predict_text(["a review"])
