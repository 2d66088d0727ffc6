"""Training: fidelity to the reference run, learning, and reproducibility."""

import random

from helpers import REFERENCE_RUN, loss_lines, run_script, sample_names
from microgpt import (
    DEFAULT_DATA,
    Adam,
    GPTConfig,
    Tokenizer,
    batch_loss,
    flat_params,
    init_params,
    learning_rate,
    load_docs,
    mean,
    token_losses,
    train_step,
)

with open(REFERENCE_RUN, encoding="utf-8") as f:
    REFERENCE = f.read()

SMALL = ["--steps", 30, "--n-embd", 8, "--n-head", 2, "--block-size", 8, "--samples", 5, "--eval-docs", 20]


def test_first_50_default_steps_match_the_reference_losses():
    rng = random.Random(42)
    docs = load_docs(DEFAULT_DATA)
    rng.shuffle(docs)
    tokenizer = Tokenizer.from_docs(docs)
    config = GPTConfig(vocab_size=tokenizer.vocab_size)
    params = init_params(config, rng)
    adam = Adam(flat_params(params))
    losses = [
        train_step(params, config, [tokenizer.doc_tokens(docs[step])], adam, learning_rate(step, 1000, 0.01))
        for step in range(50)
    ]
    ours = [f"step {s + 1:4d} / 1000 | loss {loss:.4f}" for s, loss in enumerate(losses)]
    assert ours == loss_lines(REFERENCE)[:50]


def test_default_run_matches_the_reference_line_for_line():
    result = run_script()
    assert result.returncode == 0, result.stderr
    ours, reference = result.stdout.splitlines(), REFERENCE.splitlines()
    assert ours[:3] == reference[:3]  # num docs, vocab size, num params
    assert loss_lines(result.stdout) == loss_lines(REFERENCE)
    assert len(loss_lines(result.stdout)) == 1000
    assert sample_names(result.stdout) == sample_names(REFERENCE)
    assert len(sample_names(result.stdout)) == 20


def test_a_short_run_lowers_the_loss_on_its_documents():
    docs = ["anna", "bella", "clara", "dora", "emma", "flora"]
    tokenizer = Tokenizer.from_docs(docs)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, n_embd=8, n_head=2, block_size=8)
    params = init_params(config, random.Random(0))
    batch = [tokenizer.doc_tokens(d) for d in docs]
    before = batch_loss(params, config, batch).data
    adam = Adam(flat_params(params))
    for step in range(60):
        train_step(params, config, [batch[step % len(batch)]], adam, learning_rate(step, 60, 0.02))
    after = batch_loss(params, config, batch).data
    assert after < before - 0.5, (before, after)


def test_the_same_seed_repeats_a_run_exactly():
    first, second = run_script(*SMALL, "--seed", 7), run_script(*SMALL, "--seed", 7)
    assert first.returncode == second.returncode == 0
    assert loss_lines(first.stdout) == loss_lines(second.stdout)
    assert sample_names(first.stdout) == sample_names(second.stdout)


def test_another_seed_gives_another_run():
    first, second = run_script(*SMALL, "--seed", 7), run_script(*SMALL, "--seed", 8)
    assert loss_lines(first.stdout) != loss_lines(second.stdout)
    assert sample_names(first.stdout) != sample_names(second.stdout)


def test_token_losses_stop_at_the_block_size():
    config = GPTConfig(vocab_size=4, n_embd=4, n_head=2, block_size=3)
    params = init_params(config, random.Random(0))
    assert len(token_losses(params, config, [3, 0, 1, 2, 0, 1, 3])) == 3
    assert mean(token_losses(params, config, [3, 0, 3])).data > 0
