"""The model's pieces and the whole loss: gradients against finite differences, causality, tokenizer."""

import random

import pytest

from helpers import assert_close, finite_difference
from microgpt import (
    GPTConfig,
    Tokenizer,
    Value,
    attention,
    batch_loss,
    empty_cache,
    gpt,
    init_params,
    linear,
    mean,
    rmsnorm,
    softmax,
    token_losses,
)

RNG = random.Random(3)


def readout_of(f, n_inputs, n_outputs_hint=32):
    """A scalar function of a flat list of numbers (Values or floats): fixed weights times f's outputs."""
    weights = [RNG.gauss(0, 1) for _ in range(n_outputs_hint)]

    def scalar(xs):
        values = [Value(x) for x in xs]
        outputs = f(values)
        return sum(w * o for w, o in zip(weights, outputs)), values

    def as_float(xs):
        return scalar(xs)[0].data

    def grads(xs):
        out, values = scalar(xs)
        out.backward()
        return [v.grad for v in values]

    return as_float, grads


def check_against_finite_difference(f, n_inputs, rel=1e-6):
    xs = [RNG.gauss(0, 1) for _ in range(n_inputs)]
    as_float, grads = readout_of(f, n_inputs)
    assert_close(grads(xs), finite_difference(as_float, xs), rel=rel, abs_=1e-8)


def test_linear_gradient_matches_finite_difference():
    # inputs: a 3 x 4 matrix, then a 4-vector
    check_against_finite_difference(lambda v: linear(v[12:], [v[0:4], v[4:8], v[8:12]]), 16)


def test_softmax_gradient_matches_finite_difference():
    check_against_finite_difference(softmax, 7)


def test_rmsnorm_gradient_matches_finite_difference():
    check_against_finite_difference(rmsnorm, 8)


def test_attention_with_cache_gradient_matches_finite_difference():
    # two earlier positions in the cache, then q, k, v of the current one; 2 heads of 3 dims
    def f(v):
        vectors = [v[i : i + 6] for i in range(0, 42, 6)]
        keys, values = [vectors[0], vectors[1]], [vectors[2], vectors[3]]
        out = attention(vectors[4], vectors[5], vectors[6], keys, values, n_head=2)
        assert len(keys) == len(values) == 3  # the current position joined the cache
        return out

    check_against_finite_difference(f, 42)


def test_attention_sees_only_itself_at_the_first_position():
    v = [Value(x) for x in (0.5, -1.0, 2.0, 3.0)]
    out = attention([Value(1.0)] * 4, [Value(0.3)] * 4, v, [], [], n_head=2)
    assert [o.data for o in out] == pytest.approx([x.data for x in v])


TINY = GPTConfig(vocab_size=6, n_layer=2, n_embd=6, n_head=2, block_size=5)


def test_whole_model_loss_gradient_matches_finite_difference_for_every_matrix():
    params = init_params(TINY, random.Random(1), std=0.5)
    tokens = [5, 1, 3, 0, 2, 4, 5]  # longer than block_size: trains on the first 5 positions
    loss = mean(token_losses(params, TINY, tokens))
    loss.backward()
    sampler = random.Random(2)
    for name, matrix in params.items():
        for _ in range(3):
            p = matrix[sampler.randrange(len(matrix))][sampler.randrange(len(matrix[0]))]
            original, h = p.data, 1e-6
            p.data = original + h
            up = mean(token_losses(params, TINY, tokens)).data
            p.data = original - h
            down = mean(token_losses(params, TINY, tokens)).data
            p.data = original
            assert_close([p.grad], [(up - down) / (2 * h)], rel=1e-5, abs_=1e-9), name


def test_batch_loss_is_the_mean_of_document_losses_and_its_gradient_matches():
    params = init_params(TINY, random.Random(4), std=0.5)
    batch = [[5, 1, 2, 5], [5, 3, 3, 0, 5]]
    loss = batch_loss(params, TINY, batch)
    singles = [mean(token_losses(params, TINY, tokens)).data for tokens in batch]
    assert loss.data == pytest.approx(sum(singles) / 2, rel=1e-12)
    loss.backward()
    for name in ("wte", "layer1.mlp_fc1", "lm_head"):
        p = params[name][1][2]
        original, h = p.data, 1e-6
        p.data = original + h
        up = batch_loss(params, TINY, batch).data
        p.data = original - h
        down = batch_loss(params, TINY, batch).data
        p.data = original
        assert_close([p.grad], [(up - down) / (2 * h)], rel=1e-5, abs_=1e-9)


def test_logits_do_not_see_future_tokens():
    params = init_params(TINY, random.Random(5), std=0.5)

    def all_logits(tokens):
        keys, values = empty_cache(TINY)
        return [[z.data for z in gpt(params, TINY, t, pos, keys, values)] for pos, t in enumerate(tokens)]

    a, b = all_logits([5, 1, 2, 3, 0]), all_logits([5, 1, 2, 4, 4])
    assert a[:3] == b[:3]  # identical up to the first differing token
    assert a[3] != b[3]


def test_parameters_are_named_and_shaped_like_the_reference():
    params = init_params(GPTConfig(vocab_size=27), random.Random(42))
    shapes = {name: (len(m), len(m[0])) for name, m in params.items()}
    assert list(shapes.items()) == [
        ("wte", (27, 16)), ("wpe", (16, 16)), ("lm_head", (27, 16)),
        ("layer0.attn_wq", (16, 16)), ("layer0.attn_wk", (16, 16)), ("layer0.attn_wv", (16, 16)),
        ("layer0.attn_wo", (16, 16)), ("layer0.mlp_fc1", (64, 16)), ("layer0.mlp_fc2", (16, 64)),
    ]  # fmt: skip
    assert sum(r * c for r, c in shapes.values()) == 4192


def test_tokenizer_round_trip_including_non_ascii():
    docs = ["émile", "김민준", "zoë", "anna"]
    tok = Tokenizer.from_docs(docs)
    assert tok.chars == sorted(set("".join(docs)))
    assert tok.bos == len(tok.chars) and tok.vocab_size == len(tok.chars) + 1
    for doc in docs:
        ids = tok.encode(doc)
        assert tok.decode(ids) == doc
        assert tok.doc_tokens(doc) == [tok.bos] + ids + [tok.bos]
