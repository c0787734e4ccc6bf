"""Training from Python against the command line: same options, same weights."""

import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import recur
from conftest import read_safetensors, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A short run that still exercises shuffling, a partial last batch, validation, two threads,
# a schedule and clipping.
OPTIONS = dict(cell="lstm", hidden=24, steps=30, batch=50, val=1000, train_limit=1480,
               display_step=5, threads=2, seed=1, lr=0.003, schedule="cosine", clip_norm=1.0,
               view="cols")


def cli_flags(options):
    flags = []
    for k, v in options.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            flags.append(flag)
        else:
            flags += [flag, str(v)]
    return flags


@pytest.fixture(scope="module")
def cli_run(cli, data_dir, work):
    out = work / "cli-train"
    run_cli(cli, "train", *cli_flags(OPTIONS), "--data", data_dir, "--out", out)
    return out


def weights(path):
    tensors, _ = read_safetensors(path)
    return tensors


def saved_weights(model, tmp_path, name):
    path = tmp_path / name
    model.save(path)
    return weights(path)


def metrics(run_dir):
    lines = [json.loads(l) for l in open(run_dir / "metrics.jsonl")]
    return [l for l in lines if l["kind"] == "train"], [l for l in lines if l["kind"] != "train"]


def test_train_from_arrays_is_bit_identical_to_cli(cli_run, mnist, tmp_path):
    (x, y), _ = mnist
    model, history = recur.train(x, y, verbose=False, **OPTIONS)
    expected = weights(cli_run / "last.safetensors")
    assert saved_weights(model, tmp_path, "py.safetensors") == expected
    # The history is the command line's metrics log.
    train_log, val_log = metrics(cli_run)
    assert history.step.tolist() == [l["step"] for l in train_log] == [5, 10, 15, 20, 25, 30]
    assert history.loss.tolist() == [l["loss"] for l in train_log]
    assert history.accuracy.tolist() == [l["accuracy"] for l in train_log]
    assert history.lr.tolist() == pytest.approx([l["lr"] for l in train_log], rel=1e-7)
    assert history.val_step.tolist() == [l["step"] for l in val_log]
    assert history.val_accuracy.tolist() == [l["accuracy"] for l in val_log]
    assert history.val_loss.tolist() == [l["loss"] for l in val_log]
    assert history.loss.dtype == np.float64 and history.step.dtype == np.int64
    assert history.run_dir is None
    assert model.config["view"] == "cols" and model.config["hidden"] == 24


def test_validation_arrays_give_the_same_run(cli_run, mnist, tmp_path):
    (x, y), _ = mnist
    options = {k: v for k, v in OPTIONS.items() if k != "val"}
    model, _ = recur.train(x[1000:], y[1000:], val=(x[:1000], y[:1000]), verbose=False,
                           **options)
    assert saved_weights(model, tmp_path, "py.safetensors") == weights(
        cli_run / "last.safetensors")


def test_config_file_and_run_folder(cli_run, mnist, tmp_path, data_dir):
    (x, y), _ = mnist
    config = tmp_path / "run.toml"
    config.write_text("".join(
        f'{k.replace("_", "-")} = {json.dumps(v)}\n' for k, v in OPTIONS.items()
        if k not in ("hidden", "seed")) + "hidden = 99\n")
    out = tmp_path / "run"
    # Keywords override the file, as flags do.
    model, history = recur.train(x, y, config=config, hidden=24, seed=1, out=out,
                                 verbose=False)
    assert history.run_dir == str(out)
    for name in ("config.toml", "metrics.jsonl", "best.safetensors", "summary.json",
                 "curves.png"):
        assert (out / name).is_file(), name
    assert weights(out / "last.safetensors") == weights(cli_run / "last.safetensors")
    # The folder's checkpoint is what the command line evaluates.
    run_cli(os.environ.get("RECUR_CLI", "build/recur"), "eval", out / "best.safetensors",
            "--data", data_dir, "--json")


def test_training_from_the_data_folder(cli_run, data_dir, tmp_path):
    # NumPy scalars are numbers like any other.
    options = {**OPTIONS, "hidden": np.int64(24), "lr": np.float64(0.003)}
    model, _ = recur.train(data=data_dir, verbose=False, **options)
    assert saved_weights(model, tmp_path, "m.safetensors") == weights(
        cli_run / "last.safetensors")


def test_verbose_prints_the_progress_lines(mnist, capsys):
    (x, y), _ = mnist
    recur.train(x[:600], y[:600], val=100, hidden=8, steps=4, display_step=2, batch=50)
    out = capsys.readouterr().out
    assert "recur train: lstm 8x1 on rows view" in out
    assert "data: 500 training, 100 validation images from the training arrays" in out
    assert "step 2/4" in out and "validation accuracy" in out and "training took" in out


def test_callback_sees_logged_steps_and_can_stop(mnist):
    (x, y), _ = mnist
    seen = []

    def callback(info):
        seen.append(dict(info))
        return info["step"] < 10

    model, history = recur.train(x[:3000], y[:3000], val=500, cell="gru", hidden=8, epochs=3,
                                 batch=50, display_step=5, callback=callback, verbose=False)
    assert [s["step"] for s in seen] == [5, 10]
    assert seen[0]["total_steps"] == 150 and seen[0]["epoch"] == 0
    assert set(seen[0]) == {"step", "total_steps", "epoch", "loss", "accuracy", "lr",
                            "samples_per_second"}
    assert history.step.tolist() == [5, 10]
    assert history.val_step.tolist() == [10]  # validated where it stopped
    assert model.predict(x[:10])[1].shape == (10, 10)


def test_callback_exception_propagates(mnist):
    (x, y), _ = mnist

    def callback(info):
        raise RuntimeError(f"stop at {info['step']}")

    with pytest.raises(RuntimeError, match="stop at 2"):
        recur.train(x[:1000], y[:1000], val=100, hidden=8, steps=6, display_step=2,
                    callback=callback, verbose=False)


def test_ctrl_c_interrupts_training(mnist):
    (x, y), _ = mnist
    steps = []
    timers = []

    def callback(info):
        # SIGINT from another thread while recur computes, as Ctrl-C in a terminal sends it.
        if not timers:
            timers.append(threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)))
            timers[0].start()
        steps.append(info["step"])

    start = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            recur.train(x, y, hidden=64, epochs=50, display_step=1, verbose=False,
                        callback=callback)
    finally:
        for t in timers:
            t.cancel()
    elapsed = time.monotonic() - start
    assert elapsed < 30, elapsed  # the 21,450 steps asked for would take many minutes
    assert 1 <= len(steps) < 2000
    # The interpreter carries on.
    model, _ = recur.train(x[:300], y[:300], val=100, hidden=8, steps=2, verbose=False)
    assert model.predict(x[:2])[0].shape == (2,)


def test_gil_is_released_while_training(mnist):
    (x, y), _ = mnist
    done = threading.Event()
    result = {}

    def work():
        result["model"], _ = recur.train(x[:4000], y[:4000], val=500, hidden=32, steps=40,
                                         verbose=False)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert ticks > 20  # the main thread ran while the other trained
    assert "model" in result


def test_bad_options_raise_clear_errors(mnist):
    (x, y), _ = mnist
    x, y = x[:200], y[:200]
    kw = dict(val=50, steps=1, verbose=False)
    with pytest.raises(ValueError, match=r"unknown option 'hiden' \(see recur train --help\)"):
        recur.train(x, y, hiden=8, **kw)
    with pytest.raises(ValueError, match="--cell: unknown"):
        recur.train(x, y, cell="cnn", **kw)
    with pytest.raises(ValueError, match="--hidden"):
        recur.train(x, y, hidden=0, **kw)
    with pytest.raises(ValueError, match="--hidden"):
        recur.train(x, y, hidden="many", **kw)
    with pytest.raises(ValueError, match="--batch"):
        recur.train(x, y, batch=-3, **kw)
    with pytest.raises(ValueError, match="--val"):
        recur.train(x, y, **{**kw, "val": 500})
    with pytest.raises(TypeError, match="'bidirectional' is a switch: pass True or False"):
        recur.train(x, y, bidirectional="yes", **kw)
    with pytest.raises(TypeError, match="'hidden' takes a number or text, not True"):
        recur.train(x, y, hidden=True, **kw)
    with pytest.raises(TypeError, match="'lr' takes a number or text, not \\[0.1\\]"):
        recur.train(x, y, lr=[0.1], **kw)
    with pytest.raises(FileNotFoundError, match="missing.toml"):
        recur.train(x, y, config="missing.toml", **kw)
    with pytest.raises(ValueError, match="arrays .* or data=FOLDER, not both"):
        recur.train(x, y, data="data/mnist", **kw)
    with pytest.raises(ValueError, match="--model: .*unknown layer"):
        recur.train(x, y, model="flatten, dense 8, linear", **kw)
    with pytest.raises(ValueError, match="--model: does not fit this data"):
        recur.train(x, y, model="lstm 8, linear", **kw)  # a sequence without pooling


def test_layer_lists_train_from_python_as_from_the_command_line(mnist, tmp_path):
    (x, y), (xt, yt) = mnist
    x, y = x[:300], y[:300]
    layers = "flatten, linear 16, relu, linear"
    model, history = recur.train(x, y, model=layers, val=100, steps=6, display_step=3,
                                 threads=1, verbose=False, out=str(tmp_path / "run"))
    assert model.config["layers_text"] == layers
    assert model.config["view"] == "image"
    assert list(history.step) == [3, 6]
    labels, probs = model.predict(xt[:50])
    assert labels.shape == (50,) and probs.shape == (50, 10)
    # The example config (a layer list) is accepted as a config file too.
    cnn, _ = recur.train(x, y, config=os.path.join(ROOT, "examples", "mnist-cnn.toml"), val=100,
                         steps=1, threads=1, verbose=False)
    assert cnn.config["layers_text"].startswith("conv2d")


def test_bad_training_arrays_raise_clear_errors(mnist):
    (x, y), _ = mnist
    x, y = x[:200], y[:200]
    kw = dict(val=50, steps=1, verbose=False)
    with pytest.raises(TypeError, match="x must be uint8 images .* got dtype float32"):
        recur.train(x.astype(np.float32), y, **kw)
    with pytest.raises(ValueError, match=r"x must have 3 dimensions.*\(200, 784\)"):
        recur.train(x.reshape(200, 784), y, **kw)
    with pytest.raises(ValueError, match="x is not C-contiguous"):
        recur.train(x[:, :, ::2], y, **kw)
    with pytest.raises(TypeError, match="y must hold integer class labels, got dtype float64"):
        recur.train(x, y.astype(np.float64), **kw)
    with pytest.raises(ValueError, match="y holds 199 labels but there are 200 samples"):
        recur.train(x, y[:199], **kw)
    with pytest.raises(ValueError, match=r"y\[3\] = -2"):
        bad = y.copy()
        bad[3] = -2
        recur.train(x, bad, **kw)
    with pytest.raises(ValueError, match="single class"):
        recur.train(x, np.zeros(200, dtype=np.int64), **kw)
    with pytest.raises(TypeError, match="x must be a NumPy array, got list"):
        recur.train(x.tolist(), y, **kw)
    with pytest.raises(TypeError, match="val must be an int .* or a tuple"):
        recur.train(x, y, val="some", steps=1, verbose=False)
    with pytest.raises(ValueError, match="x holds 28x27 images but val\\[0\\] holds 28x28"):
        recur.train(np.ascontiguousarray(x[:, :, :27]), y, val=(x[:10], y[:10]), steps=1,
                    verbose=False)
    with pytest.raises(ValueError, match="give both x and y"):
        recur.train(x, None, **kw)


def test_an_error_writing_progress_propagates(mnist, monkeypatch):
    (x, y), _ = mnist

    class Broken:
        def write(self, text):
            raise OSError("stdout is gone")

        def flush(self):
            pass

    monkeypatch.setattr("sys.stdout", Broken())
    with pytest.raises(OSError, match="stdout is gone"):
        recur.train(x[:400], y[:400], val=100, hidden=8, steps=3, batch=50)


def test_a_layer_list_takes_the_init_flags(mnist, tmp_path):
    """recur.train(model=...) applies the init flags as the short form does: a list naming its
    layers as the short form does starts from the short form's tensors under the same flags, and
    a flag changes the list's weights (one step at learning rate 0 keeps the initial ones)."""
    (x, y), _ = mnist
    run = dict(steps=1, lr=0.0, schedule="constant", batch=50, val=100, threads=1, seed=3,
               verbose=False)
    listed = "lstm 16 name=rnn, pool last name=pool, linear name=head"
    flags = dict(init_recurrent="glorot", forget_bias=0.5, head_init="normal")
    short, _ = recur.train(x[:600], y[:600], hidden=16, out=tmp_path / "short", **flags, **run)
    lst, _ = recur.train(x[:600], y[:600], model=listed, out=tmp_path / "list", **flags, **run)
    plain, _ = recur.train(x[:600], y[:600], model=listed, out=tmp_path / "plain", **run)
    w_short = saved_weights(short, tmp_path, "short.safetensors")
    w_list = saved_weights(lst, tmp_path, "list.safetensors")
    w_plain = saved_weights(plain, tmp_path, "plain.safetensors")
    assert sorted(w_list) == sorted(w_short)
    for name in w_short:
        assert w_list[name] == w_short[name], name
    # --init-recurrent, --head-init, and --forget-bias (added to the forget gate's input bias).
    for name in ("rnn.weight_hh_l0", "head.weight", "rnn.bias_ih_l0"):
        assert w_list[name] != w_plain[name], name


def _write_reviews(path, count, seed):
    """A small label<TAB>text file: words that lean one way per class, shuffled."""
    rng = np.random.default_rng(seed)
    good = ["great", "fine", "loved", "superb", "warm", "funny"]
    bad = ["awful", "dull", "hated", "boring", "weak", "slow"]
    plain = ["the", "film", "a", "plot", "was", "and", "actor", "scene", "it"]
    lines = []
    for i in range(count):
        label = i % 2
        words = list(rng.choice(plain, size=int(rng.integers(4, 14))))
        words += list(rng.choice(good if label else bad, size=int(rng.integers(1, 4))))
        rng.shuffle(words)
        lines.append(f"{label}\t{' '.join(words)}\n")
    path.write_text("".join(lines))
    return path


def test_text_trains_from_python_as_from_the_command_line(cli, tmp_path):
    # The keywords go through the library's option table, the flags through the command line's
    # registration of the same table: the same text recipe, the same weights bit for bit.
    data = _write_reviews(tmp_path / "reviews.tsv", 240, seed=3)
    options = dict(hidden=12, embed=8, steps=12, batch=16, vocab=60, max_len=20, threads=2,
                   seed=2, display_step=4)
    out_cli = tmp_path / "cli"
    run_cli(cli, "train", "--data", data, "--out", out_cli, *cli_flags(options))
    model, history = recur.train(data=str(data), out=str(tmp_path / "py"), verbose=False,
                                 **options)
    labels, probabilities = model.predict_text(["great warm film", "awful dull plot"])
    assert labels.shape == (2,) and probabilities.shape == (2, 2)
    a, b = weights(out_cli / "last.safetensors"), weights(tmp_path / "py" / "last.safetensors")
    assert sorted(a) == sorted(b) and "embed.weight" in a
    for name in a:
        assert a[name] == b[name], name
    # The text recipe applied to both (bidirectional, max pooling) and recorded alike.
    assert (out_cli / "config.toml").read_text().replace(str(out_cli), "OUT") == \
        (tmp_path / "py" / "config.toml").read_text().replace(str(tmp_path / "py"), "OUT")
    assert 'pooling="max"' in (out_cli / "config.toml").read_text()
    assert list(history.step)[-1] == 12


def _cpu_has_avx512_bf16():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return "avx512_bf16" in line.split()
    return False


def test_precision_bf16_keyword_trains_as_the_command_line(cli, cli_run, data_dir, mnist,
                                                           tmp_path, monkeypatch):
    # Without AVX512_BF16 both sides run the portable emulation (the kernel is chosen once per
    # process, at its first bf16 product: this test's).
    if not _cpu_has_avx512_bf16():
        monkeypatch.setenv("RECUR_BF16_KERNEL", "portable")
    options = dict(OPTIONS, precision="bf16")
    out = tmp_path / "cli"
    run_cli(cli, "train", *cli_flags(options), "--data", data_dir, "--out", out)
    (x, y), _ = mnist
    model, _ = recur.train(x, y, verbose=False, out=str(tmp_path / "py"), **options)
    bf16 = saved_weights(model, tmp_path, "py.safetensors")
    assert bf16 == weights(out / "last.safetensors")
    assert bf16 != weights(cli_run / "last.safetensors")  # the fp32 run of the same options
    with open(tmp_path / "py" / "summary.json") as f:
        assert json.load(f)["precision"] == "bf16"
    with pytest.raises(ValueError, match="--precision: must be fp32 or bf16"):
        recur.train(x[:200], y[:200], val=50, steps=1, verbose=False, precision="fp16")
