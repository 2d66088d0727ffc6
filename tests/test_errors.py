"""Bad input, odd data and faults: one clear line and no traceback, and nothing saved is ever corrupted."""

import json
import math
import os
import random
import signal
import subprocess
import sys

import pytest

from helpers import SCRIPT, loss_lines, run_script, sample_names
from microgpt import GPTConfig, Tokenizer, init_params, read_checkpoint, save_checkpoint

QUICK = ["--steps", 2, "--n-embd", 8, "--n-head", 2, "--samples", 2, "--eval-docs", 2]


@pytest.fixture
def workdir(tmp_path):
    """A folder holding every kind of bad file, and a small valid checkpoint."""
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\n\t \n")
    (tmp_path / "latin1.txt").write_bytes("zoë\nchloé\n".encode("latin-1"))
    (tmp_path / "names.txt").write_text("anna\nemma\nzoe\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "notjson.json").write_text("{ this is not json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something-else", "version": 1}))
    (tmp_path / "v2.json").write_text(json.dumps({"format": "microgpt-checkpoint", "version": 2}))
    tok = Tokenizer.from_docs(["anna", "emma", "zoe"])
    config = GPTConfig(vocab_size=tok.vocab_size, n_embd=8, n_head=2)
    save_checkpoint(str(tmp_path / "good.json"), init_params(config, random.Random(0)), config, tok, 3, 3)
    ckpt = json.loads((tmp_path / "good.json").read_text())
    ckpt["params"]["wte"] = ckpt["params"]["wte"][:-1]
    (tmp_path / "shapes.json").write_text(json.dumps(ckpt))
    return tmp_path


# (flags, words the one-line message must contain)
BAD_INPUTS = [
    (["--data", "missing.txt"], ["--data", "no such file", "missing.txt"]),
    (["--data", "folder"], ["--data", "'folder' is a folder"]),
    (["--data", "names.txt/inside"], ["--data", "cannot read", "names.txt/inside"]),
    (["--data", "empty.txt"], ["--data", "empty.txt", "no documents"]),
    (["--data", "blank.txt"], ["--data", "blank.txt", "no documents"]),
    (["--data", "latin1.txt"], ["--data", "latin1.txt", "not UTF-8"]),
    (["--data", ""], ["--data", "no such file"]),
    (["--steps", "0"], ["--steps", "--load"]),
    (["--steps", "-5"], ["--steps", "whole number >= 0", "'-5'"]),
    (["--steps", "ten"], ["--steps", "whole number", "'ten'"]),
    (["--steps", "2.5"], ["--steps", "whole number", "'2.5'"]),
    (["--n-embd", "0"], ["--n-embd", "whole number >= 1"]),
    (["--n-head", "-2"], ["--n-head", "whole number >= 1"]),
    (["--n-layer", "x"], ["--n-layer", "whole number"]),
    (["--block-size", "0"], ["--block-size", "whole number >= 1"]),
    (["--batch-size", "0"], ["--batch-size", "whole number >= 1"]),
    (["--samples", "-1"], ["--samples", "whole number >= 0"]),
    (["--eval-docs", "many"], ["--eval-docs", "whole number"]),
    (["--n-embd", "10", "--n-head", "4"], ["--n-head", "divisible"]),
    (["--n-embd", "5000"], ["--n-embd", "parameters", "smaller"]),
    (["--lr", "0"], ["--lr", "positive number"]),
    (["--lr", "nan"], ["--lr", "positive number"]),
    (["--temperature", "0"], ["--temperature", ">= 0.001", "--top-k 1"]),
    (["--temperature", "-1"], ["--temperature", ">= 0.001"]),
    (["--temperature", "inf"], ["--temperature", ">= 0.001"]),
    (["--temperature", "nan"], ["--temperature", ">= 0.001"]),
    (["--temperature", "warm"], ["--temperature", "'warm'"]),
    (["--top-k", "0"], ["--top-k", "whole number >= 1"]),
    (["--data", "names.txt", "--top-k", "8"], ["--top-k", "1 to 7", "vocabulary"]),
    (["--val-fraction", "1"], ["--val-fraction", "fraction", "'1'"]),
    (["--val-fraction", "-0.1"], ["--val-fraction", "fraction"]),
    (["--data", "names.txt", "--prompt", "Q"], ["--prompt", "not in the vocabulary", "'Q'"]),
    (
        ["--data", "names.txt", "--prompt", "annaannaanna", "--block-size", "12"],
        ["--prompt", "at most 11 characters"],
    ),
    (["--load", "missing.json"], ["--load", "no such file", "missing.json"]),
    (["--load", "folder"], ["--load", "folder"]),
    (["--load", "notjson.json"], ["--load", "notjson.json", "not a microgpt checkpoint"]),
    (["--load", "other.json"], ["--load", "not a microgpt checkpoint", "format"]),
    (["--load", "v2.json"], ["--load", "version 2", "version 1"]),
    (["--load", "shapes.json"], ["--load", "damaged", "wte", "7 x 8", "6 rows"]),
    (["--load", "good.json", "--n-embd", "16"], ["--n-embd", "checkpoint", "n_embd = 8"]),
    (["--load", "good.json", "--data", "latin1.txt"], ["--data", "latin1.txt"]),
    (["--load", "good.json", "--steps", "0", "--prompt", "b"], ["--prompt", "'b'"]),
    (["--load", "good.json"], ["--data", "names.txt", "vocabulary lacks"]),
    (["--save", "no/such/folder/model.json"], ["--save", "does not exist"]),
    (["--save", "folder"], ["--save", "'folder' is a folder"]),
    (["--save", ""], ["--save", "file name"]),
    (["--save", "names.txt"], ["--save", "'names.txt' exists and is not a microgpt checkpoint"]),
    (["--seed", "abc"], ["--seed", "'abc'"]),
    (["--no-such-flag"], ["unrecognized arguments", "--no-such-flag"]),
]


@pytest.mark.parametrize("flags,words", BAD_INPUTS, ids=[" ".join(f) for f, _ in BAD_INPUTS])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(workdir, flags, words):
    before = sorted(os.listdir(workdir))
    result = (
        run_script(*QUICK, *flags, "--save", "out.json", cwd=workdir)
        if "--save" not in flags
        else run_script(*QUICK, *flags, cwd=workdir)
    )
    assert result.returncode == 2
    assert result.stdout == ""  # found before any training
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("microgpt.py: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]
    assert sorted(os.listdir(workdir)) == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can read any file")
def test_unreadable_data_file_gets_one_line(workdir):
    path = workdir / "names.txt"
    path.chmod(0)
    result = run_script(*QUICK, "--data", path)
    assert result.returncode == 2 and "cannot read" in result.stderr and "Traceback" not in result.stderr


def test_a_single_document_trains_and_skips_evaluation(tmp_path):
    (tmp_path / "one.txt").write_text("solitaire\n")
    result = run_script(*QUICK, "--data", tmp_path / "one.txt")
    assert result.returncode == 0, result.stderr
    assert "no held-out docs" in result.stdout and "held-out loss" not in result.stdout
    assert len(sample_names(result.stdout)) == 2


def test_documents_longer_than_the_block_size_train_on_their_start(tmp_path):
    (tmp_path / "long.txt").write_text("abcdefghijklmnopqrstuvwxyz" * 4 + "\nshort\n")
    result = run_script(*QUICK, "--block-size", 8, "--data", tmp_path / "long.txt")
    assert result.returncode == 0, result.stderr
    assert all(len(name) <= 8 for name in sample_names(result.stdout))


def test_windows_line_endings_and_a_byte_order_mark_are_not_characters(tmp_path):
    (tmp_path / "crlf.txt").write_bytes("\ufeffanna\r\nemma\r\n".encode("utf-8"))
    result = run_script(*QUICK, "--data", tmp_path / "crlf.txt")
    assert result.returncode == 0 and "vocab size: 5" in result.stdout  # a, e, m, n + BOS


@pytest.mark.parametrize("lr", ["10", "1e300"])
def test_a_huge_learning_rate_gives_finite_losses_or_a_clean_stop(tmp_path, lr):
    result = run_script(*QUICK, "--steps", 20, "--lr", lr, "--save", tmp_path / "model.json")
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        losses = [float(line.split("loss ")[1]) for line in loss_lines(result.stdout)]
        assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
        read_checkpoint(str(tmp_path / "model.json"))
    else:
        assert result.returncode == 1
        assert result.stderr.startswith("microgpt.py: error: training diverged") and "--lr" in result.stderr
        assert not (tmp_path / "model.json").exists()


def test_the_largest_learning_rate_stops_cleanly(tmp_path):
    result = run_script(*QUICK, "--steps", 20, "--lr", "1e300", "--save", tmp_path / "model.json")
    assert result.returncode == 1 and not (tmp_path / "model.json").exists()


def start(*args, cwd=None):
    return subprocess.Popen(
        [sys.executable, SCRIPT, *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_line(process, prefix, count=1):
    lines = []
    while sum(line.startswith(prefix) for line in lines) < count:
        line = process.stdout.readline()
        assert line, "the script ended early"
        lines.append(line)
    return lines


def test_ctrl_c_during_training_stops_after_the_step_and_saves(tmp_path):
    path = tmp_path / "model.json"
    process = start("--steps", 100000, "--save", path)
    seen = wait_for_line(process, "step ", count=3)
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "Traceback" not in err and "stopped by Ctrl-C" in err
    steps_run = len(loss_lines("".join(seen) + rest))
    assert f"trained {steps_run} steps" in rest
    ckpt = read_checkpoint(str(path))
    assert ckpt["steps_trained"] == steps_run and steps_run >= 3


def test_ctrl_c_during_sampling_ends_quietly(tmp_path):
    path = tmp_path / "model.json"
    assert run_script(*QUICK, "--save", path).returncode == 0
    process = start("--load", path, "--steps", 0, "--samples", 10**7)
    wait_for_line(process, "sample ", count=5)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and err == ""


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path):
    tok = Tokenizer.from_docs(["abc"])
    config = GPTConfig(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=4)
    params = init_params(config, random.Random(0))
    path = tmp_path / "model.json"
    save_checkpoint(str(path), params, config, tok, 5, 1)
    original = path.read_bytes()
    params["lm_head"][0][0].data = math.nan  # this weight cannot be written
    with pytest.raises(ValueError):
        save_checkpoint(str(path), params, config, tok, 6, 1)
    assert path.read_bytes() == original
    assert read_checkpoint(str(path))["steps_trained"] == 5
    assert os.listdir(tmp_path) == ["model.json"]  # no temporary file left behind


def test_output_cut_short_by_the_reader_is_not_an_error_trace():
    process = subprocess.Popen(
        [sys.executable, SCRIPT, *map(str, QUICK), "--steps", "300"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.readline()
    process.stdout.close()  # like `| head -1`
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in err


def test_save_replaces_an_earlier_checkpoint(workdir):
    before = read_checkpoint(str(workdir / "good.json"))
    result = run_script(*QUICK, "--data", "names.txt", "--save", "good.json", cwd=workdir)
    assert result.returncode == 0, result.stderr
    after = read_checkpoint(str(workdir / "good.json"))
    assert after["steps_trained"] == 2 and after["params"] != before["params"]
