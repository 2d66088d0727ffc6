"""The command line: flags, held-out evaluation, checkpoints, prompts, top-k, batches, any text."""

import json
import os
import random
import shutil

from helpers import SCRIPT, loss_lines, run_script, sample_names
from microgpt import (
    DEFAULT_DATA,
    GPTConfig,
    Tokenizer,
    batch_loss,
    build_parser,
    empty_cache,
    gpt,
    init_params,
    load_docs,
    read_checkpoint,
    sample,
    save_checkpoint,
    split_docs,
)

SMALL = ["--steps", 30, "--n-embd", 8, "--n-head", 2, "--block-size", 8, "--samples", 6, "--eval-docs", 20]


def test_flags_default_to_the_reference_configuration():
    args = build_parser().parse_args([])
    assert (args.steps, args.seed, args.batch_size, args.lr, args.temperature, args.samples) == (
        1000,
        42,
        1,
        0.01,
        0.5,
        20,
    )
    assert (args.val_fraction, args.top_k, args.prompt, args.save, args.load, args.data) == (
        0.1,
        None,
        "",
        None,
        None,
        None,
    )


def test_flags_are_parsed():
    args = build_parser().parse_args(
        ["--n-layer", "2", "--n-embd", "8", "--n-head", "2", "--block-size", "10", "--lr", "0.003",
         "--batch-size", "4", "--top-k", "5", "--prompt", "ka", "--val-fraction", "0.25", "--temperature", "0.8"]
    )  # fmt: skip
    assert (args.n_layer, args.n_embd, args.n_head, args.block_size) == (2, 8, 2, 10)
    assert (args.lr, args.batch_size, args.top_k, args.prompt, args.val_fraction, args.temperature) == (
        0.003,
        4,
        5,
        "ka",
        0.25,
        0.8,
    )


def test_help_lists_every_flag_with_its_default():
    result = run_script("--help")
    assert result.returncode == 0
    flags = ["--data", "--steps", "--seed", "--n-layer", "--n-embd", "--n-head", "--block-size", "--lr", "--batch-size",
             "--temperature", "--top-k", "--samples", "--prompt", "--val-fraction", "--save", "--load", "--eval-docs"]  # fmt: skip
    text = " ".join(result.stdout.split())
    for flag in flags:
        assert flag in text
    for default in [
        "(default: 1000)",
        "(default: 42)",
        "(default: 16)",
        "(default: 4)",
        "(default: 0.01)",
        "(default: 0.5)",
        "(default: 0.1)",
    ]:
        assert default in text


def test_held_out_docs_are_the_last_fraction_and_leave_the_default_training_docs_alone():
    docs = load_docs(DEFAULT_DATA)
    random.Random(42).shuffle(docs)
    train, held_out = split_docs(docs, 0.1)
    assert len(held_out) == 3203 and len(train) == 32033 - 3203
    assert train + held_out == docs  # taken from the end, nothing lost
    assert train[:1000] == docs[:1000]  # the 1000 default steps train on the same docs as with no split
    assert split_docs(docs, 0.0) == (docs, [])
    assert split_docs(["one"], 0.5) == (["one"], [])


def test_evaluation_does_not_change_the_samples():
    with_eval, without = run_script(*SMALL), run_script(*SMALL, "--eval-docs", 0)
    assert "held-out loss" in with_eval.stdout and "held-out loss" not in without.stdout
    assert sample_names(with_eval.stdout) == sample_names(without.stdout)


def test_evaluation_reports_held_out_and_training_loss():
    out = run_script(*SMALL).stdout
    line = next(line for line in out.splitlines() if line.startswith("held-out loss"))
    assert "(20 docs" in line and "training loss" in line and "±" in line


def small_model(seed=0):
    tok = Tokenizer.from_docs(["abc", "cab"])
    config = GPTConfig(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=6)
    return init_params(config, random.Random(seed)), config, tok


def test_checkpoint_round_trip_keeps_every_weight_exactly(tmp_path):
    params, config, tok = small_model()
    path = tmp_path / "model.json"
    save_checkpoint(str(path), params, config, tok, steps_trained=12, num_docs=2)
    ckpt = read_checkpoint(str(path))
    assert ckpt["vocab"] == ["a", "b", "c"] and ckpt["steps_trained"] == 12 and ckpt["num_docs"] == 2
    assert ckpt["config"] == {"n_layer": 1, "n_embd": 4, "n_head": 2, "block_size": 6}
    assert ckpt["params"] == {name: [[p.data for p in row] for row in m] for name, m in params.items()}
    assert path.read_text(encoding="utf-8").count("\n") > sum(
        len(m) for m in params.values()
    )  # a row per line
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file the user writes


def test_saved_then_loaded_model_gives_the_same_samples_without_data(tmp_path):
    path = tmp_path / "model.json"
    trained = run_script(*SMALL, "--save", path)
    assert trained.returncode == 0, trained.stderr
    # sample from a copy of the script in a folder with no names.txt: the checkpoint is all it needs
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(SCRIPT, lonely / "microgpt.py")
    loaded = run_script(
        "--load", path, "--steps", 0, "--samples", 6, script=lonely / "microgpt.py", cwd=lonely
    )
    assert loaded.returncode == 0, loaded.stderr
    assert not loss_lines(loaded.stdout) and "num docs" not in loaded.stdout
    assert sample_names(loaded.stdout) == sample_names(trained.stdout)
    assert "trained for 30 steps" in loaded.stdout


def test_loading_and_training_more_continues_from_the_saved_weights(tmp_path):
    path, more = tmp_path / "model.json", tmp_path / "more.json"
    run_script(*SMALL, "--save", path)
    result = run_script("--load", path, "--steps", 5, "--samples", 0, "--eval-docs", 0, "--save", more)
    assert result.returncode == 0, result.stderr
    assert len(loss_lines(result.stdout)) == 5
    assert json.loads(more.read_text(encoding="utf-8"))["steps_trained"] == 35
    fresh = run_script(*SMALL[:8], "--steps", 5, "--samples", 0, "--eval-docs", 0)
    assert loss_lines(result.stdout)[0] != loss_lines(fresh.stdout)[0]  # not from random weights


def test_prompt_starts_every_sample():
    result = run_script(*SMALL, "--prompt", "ka")
    names = sample_names(result.stdout)
    assert len(names) == 6 and all(name.startswith("ka") for name in names)


def test_top_k_1_is_greedy():
    params, config, tok = small_model(seed=3)
    rng = random.Random(0)
    samples = {tuple(sample(params, config, tok.bos, rng, 1.0, top_k=1)) for _ in range(5)}
    assert len(samples) == 1  # no randomness left
    keys, values = empty_cache(config)
    token, greedy = tok.bos, []
    for pos in range(config.block_size):
        logits = [z.data for z in gpt(params, config, token, pos, keys, values)]
        token = logits.index(max(logits))
        if token == tok.bos:
            break
        greedy.append(token)
    assert greedy and samples == {tuple(greedy)}


def test_top_k_draws_only_among_the_k_most_likely():
    params, config, tok = small_model(seed=3)
    rng = random.Random(1)
    logits = [z.data for z in gpt(params, config, tok.bos, 0, *empty_cache(config))]
    allowed = set(sorted(range(len(logits)), key=logits.__getitem__)[-2:])
    seen = set()
    for _ in range(200):
        drawn = sample(params, config, tok.bos, rng, 5.0, top_k=2)
        seen.add(drawn[0] if drawn else tok.bos)
    assert seen <= allowed and len(seen) == 2


def test_batch_size_2_trains_on_the_next_two_documents(tmp_path):
    docs = load_docs(DEFAULT_DATA)
    rng = random.Random(42)
    rng.shuffle(docs)
    tok = Tokenizer.from_docs(docs)
    config = GPTConfig(vocab_size=tok.vocab_size, n_embd=8, n_head=2, block_size=8)
    params = init_params(config, rng)
    expected = batch_loss(params, config, [tok.doc_tokens(docs[0]), tok.doc_tokens(docs[1])]).data
    result = run_script(*SMALL, "--batch-size", 2, "--steps", 1)
    assert loss_lines(result.stdout) == [f"step    1 /    1 | loss {expected:.4f}"]


def test_a_non_ascii_dataset_trains_and_samples(tmp_path):
    names = ["김민준", "이서연", "박지호", "최수아", "émile", "zoë", "andré", "josé", "chloé", "anaïs"] * 3
    data = tmp_path / "names.txt"
    data.write_text("\n".join(names) + "\n", encoding="utf-8")
    result = run_script("--data", data, *SMALL)
    assert result.returncode == 0, result.stderr
    assert f"vocab size: {len(set(''.join(names))) + 1}" in result.stdout
    samples = sample_names(result.stdout)
    assert len(samples) == 6 and set("".join(samples)) <= set("".join(names))


def test_samples_are_marked_new_or_seen_and_counted():
    out = run_script(*SMALL).stdout
    lines = [line for line in out.splitlines() if line.startswith("sample ")]
    assert all(line.endswith(("(new)", "(in training data)", "(new, a held-out doc)")) for line in lines)
    new = sum(not line.endswith("(in training data)") for line in lines)
    assert f"{new} of 6 samples are new" in out


def test_progress_lines_show_time_per_step_and_time_left_and_a_loss_curve():
    out = run_script(*SMALL).stdout
    step_line = next(line for line in out.splitlines() if line.startswith("step "))
    assert "ms/step" in step_line and "left" in step_line
    assert any(line.startswith("trained 30 steps in") and "ms per step" in line for line in out.splitlines())
    curve = next(line for line in out.splitlines() if line.startswith("loss curve:"))
    assert len(curve.split()[3]) == 30  # one bar per step when there are fewer than 50 steps


def test_default_data_is_found_from_any_folder(tmp_path):
    result = run_script(*SMALL, cwd=tmp_path)
    assert result.returncode == 0 and "num docs: 32033" in result.stdout


def test_import_runs_nothing():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import microgpt"], cwd=os.path.dirname(SCRIPT), capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
