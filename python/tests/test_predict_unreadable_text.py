"""Texts with nothing to read are refused, in Python as on the command line, instead of being
classified (an empty review used to come back as "negative 57.8%")."""

import subprocess

import pytest

import recur
from conftest import run_cli


@pytest.fixture(scope="module")
def text_model(cli, tmp_path_factory):
    work = tmp_path_factory.mktemp("unreadable-text")
    lines = [f"{k % 2}\t{'a superb film' if k % 2 else 'a dull film'} number {k}"
             for k in range(60)]
    data = work / "texts.tsv"
    data.write_text("\n".join(lines) + "\n")
    run_cli(cli, "train", "--data", data, "--out", work / "run", "--epochs", "1", "--hidden", "4",
            "--embed", "4", "--batch", "16", "--threads", "1")
    return work / "run" / "last.safetensors"


@pytest.mark.parametrize("text, reason", [("", "is empty"), ("  \t ", "holds only whitespace")])
def test_predict_text_raises_value_error(text_model, text, reason):
    model = recur.load(text_model)
    with pytest.raises(ValueError, match=rf"texts\[1\] {reason}: there is nothing to classify"):
        model.predict_text(["a superb film", text])
    labels, probs = model.predict_text(["a superb film"])
    assert labels.shape == (1,) and probs.shape == (1, 2)


def test_cli_refuses_an_empty_text_with_exit_code_2(cli, text_model):
    r = subprocess.run([cli, "predict", str(text_model), "--text", ""], capture_output=True,
                       text=True)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--text" in r.stderr and "empty" in r.stderr and r.stdout == ""
