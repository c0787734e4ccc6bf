"""Model.export_onnx writes the file `recur export --onnx` writes, byte for byte (the command
line's export is checked in ONNX Runtime by tests/export), for image and text models; an
unwritable path raises ValueError and leaves nothing behind."""

import subprocess

import numpy as np
import pytest

import recur

from conftest import run_cli


def test_export_onnx_equals_the_command_line(cli, cli_model, tmp_path):
    name, path = cli_model
    model = recur.load(path)
    r = model.export_onnx(tmp_path / "py.onnx")
    assert r["path"] == str(tmp_path / "py.onnx")
    assert r["tokenizer_path"] is None
    assert r["inputs"].startswith("images uint8 [batch, 28, 28]")
    assert r["operators"] > 5 and r["bytes"] == (tmp_path / "py.onnx").stat().st_size
    run_cli(cli, "export", path, "--onnx", tmp_path / "cli.onnx")
    assert (tmp_path / "py.onnx").read_bytes() == (tmp_path / "cli.onnx").read_bytes()
    import onnx  # python3-onnx (scripts/install-deps.sh --test)
    onnx.checker.check_model(onnx.load(str(tmp_path / "py.onnx")), full_check=True)


def test_export_onnx_text_model_writes_its_tokenizer(cli, tmp_path):
    rng = np.random.default_rng(5)
    words = ["good", "bad", "film", "plot", "story", "the"]
    lines = [f"{k % 2}\t{' '.join(words[i] for i in rng.integers(0, 6, 5))}" for k in range(60)]
    (tmp_path / "t.tsv").write_text("\n".join(lines) + "\n")
    run_cli(cli, "train", "--data", tmp_path / "t.tsv", "--out", tmp_path / "run", "--steps",
            "2", "--hidden", "4", "--embed", "4", "--threads", "1")
    model = recur.load(tmp_path / "run" / "last.safetensors")
    r = model.export_onnx(tmp_path / "text.onnx")
    assert r["inputs"] == "tokens int64 [batch, steps], lengths int64 [batch]"
    assert r["tokenizer_path"] == str(tmp_path / "text.tokenizer.json")
    import json
    tok = json.loads((tmp_path / "text.tokenizer.json").read_text())
    assert tok["vocab"][:2] == ["<pad>", "<unk>"] and tok["class_names"] == ["0", "1"]
    run_cli(cli, "export", tmp_path / "run" / "last.safetensors", "--onnx", tmp_path / "c.onnx")
    assert (tmp_path / "text.onnx").read_bytes() == (tmp_path / "c.onnx").read_bytes()


def test_export_onnx_unwritable_path(cli_model, tmp_path):
    model = recur.load(cli_model[1])
    target = tmp_path / "missing" / "m.onnx"
    with pytest.raises(ValueError, match="missing"):
        model.export_onnx(target)
    assert not (tmp_path / "missing").exists()
