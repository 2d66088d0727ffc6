"""Each fused operation gives the same numbers as the composition of atomic Value ops."""

import random

import pytest

from helpers import assert_close
from microgpt import Value, cross_entropy, linear, mean, rmsnorm, softmax

RNG = random.Random(7)
XS = [RNG.gauss(0, 1.5) for _ in range(6)]
WEIGHTS = [RNG.gauss(0, 1) for _ in range(6)]  # a fixed readout makes a vector output scalar


def composed_softmax(logits):
    largest = max(z.data for z in logits)
    exps = [(z - largest).exp() for z in logits]
    total = sum(exps)
    return [e / total for e in exps]


def composed_rmsnorm(x):
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def readout(outputs):
    return sum(w * o for w, o in zip(WEIGHTS, outputs))


def compare(fused, composed):
    """Run both on fresh leaves from XS; compare outputs and the gradients of a readout."""
    results = []
    for f in (fused, composed):
        inputs = [Value(x) for x in XS]
        out = f(inputs)
        outputs = out if isinstance(out, list) else [out]
        (readout(outputs) if len(outputs) > 1 else outputs[0]).backward()
        results.append(([o.data for o in outputs], [v.grad for v in inputs]))
    (fused_out, fused_grads), (composed_out, composed_grads) = results
    assert_close(fused_out, composed_out, rel=1e-12, abs_=1e-15)
    assert_close(fused_grads, composed_grads, rel=1e-9, abs_=1e-12)


def test_mean_equals_sum_times_one_over_n():
    compare(mean, lambda v: sum(v) * (1 / len(v)))


def test_softmax_equals_exp_over_sum_of_exps():
    compare(softmax, composed_softmax)


def test_softmax_outputs_sum_to_one_even_for_huge_logits():
    probs = softmax([Value(1000.0), Value(999.0), Value(-1000.0)])
    assert sum(p.data for p in probs) == pytest.approx(1.0)


@pytest.mark.parametrize("target", [0, 3, 5])
def test_cross_entropy_equals_minus_log_of_softmax(target):
    compare(lambda z: cross_entropy(z, target), lambda z: -composed_softmax(z)[target].log())


def test_cross_entropy_is_finite_where_the_composition_fails():
    logits = [Value(0.0), Value(800.0)]
    loss = cross_entropy(logits, 0)  # the target's probability underflows to 0 in floats
    loss.backward()
    assert loss.data == pytest.approx(800.0)
    assert [z.grad for z in logits] == pytest.approx([-1.0, 1.0])


def test_linear_equals_sums_of_products():
    w_data = [[RNG.gauss(0, 1) for _ in range(4)] for _ in range(3)]

    def run(f):
        w = [[Value(x) for x in row] for row in w_data]
        x = [Value(v) for v in XS[:4]]
        out = f(x, w)
        readout(out).backward()
        return [o.data for o in out], [p.grad for row in w for p in row] + [v.grad for v in x]

    fused, composed = run(linear), run(lambda x, w: [sum(wi * xi for wi, xi in zip(row, x)) for row in w])
    assert_close(fused[0], composed[0], rel=1e-12, abs_=1e-15)
    assert_close(fused[1], composed[1], rel=1e-9, abs_=1e-12)


def test_rmsnorm_equals_its_composition():
    compare(rmsnorm, composed_rmsnorm)
