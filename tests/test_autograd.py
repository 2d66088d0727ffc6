"""Every Value operation: its value and its gradient against central finite differences."""

import math

import pytest

from helpers import assert_close, finite_difference
from microgpt import Value

# (name, function of Values or floats, input point). Each function works on both,
# so the same expression gives the autograd result and the finite difference.
CASES = [
    ("add", lambda a, b: a + b, [1.5, -2.25]),
    ("sub", lambda a, b: a - b, [1.5, -2.25]),
    ("mul", lambda a, b: a * b, [1.5, -2.25]),
    ("div", lambda a, b: a / b, [1.5, -2.25]),
    ("neg", lambda a: -a, [0.7]),
    ("pow_square", lambda a: a**2, [-1.3]),
    ("pow_cube", lambda a: a**3, [0.9]),
    ("pow_negative", lambda a: a**-2, [1.7]),
    ("pow_fractional", lambda a: a**0.5, [2.3]),
    ("pow_negative_fractional", lambda a: a**-0.5, [0.6]),
    ("radd", lambda a: 3.0 + a, [0.4]),
    ("rsub", lambda a: 3.0 - a, [0.4]),
    ("rmul", lambda a: 3.0 * a, [0.4]),
    ("rdiv", lambda a: 3.0 / a, [0.4]),
    ("add_constant", lambda a: a + 2.0, [0.4]),
    ("sub_constant", lambda a: a - 2.0, [0.4]),
    ("div_constant", lambda a: a / 4.0, [0.4]),
    ("reused_mul", lambda a: a * a, [-0.8]),
    ("reused_add", lambda a: a + a, [-0.8]),
    ("reused_deep", lambda a, b: (a * b + a) * (a - b) / (b * b), [1.1, -0.7]),
]


def value_and_grads(f, xs):
    inputs = [Value(x) for x in xs]
    out = f(*inputs)
    out.backward()
    return out.data, [v.grad for v in inputs]


@pytest.mark.parametrize("name,f,xs", CASES, ids=[c[0] for c in CASES])
def test_value_op_matches_float_math_and_finite_difference(name, f, xs):
    data, grads = value_and_grads(f, xs)
    assert data == pytest.approx(f(*xs), rel=1e-12)
    assert_close(grads, finite_difference(lambda p: f(*p), xs))


@pytest.mark.parametrize(
    "name,method,fn,x",
    [("log", "log", math.log, 1.7), ("exp", "exp", math.exp, -0.3), ("exp_positive", "exp", math.exp, 1.2)],
)
def test_log_and_exp_match_math_and_finite_difference(name, method, fn, x):
    data, grads = value_and_grads(lambda a: getattr(a, method)(), [x])
    assert data == pytest.approx(fn(x), rel=1e-12)
    assert_close(grads, finite_difference(lambda p: fn(p[0]), [x]))


@pytest.mark.parametrize("x,expected_grad", [(1.3, 1.0), (-1.3, 0.0)])
def test_relu_passes_gradient_only_for_positive_input(x, expected_grad):
    data, grads = value_and_grads(lambda a: a.relu(), [x])
    assert data == max(0.0, x)
    assert grads == [expected_grad]
    assert_close(grads, finite_difference(lambda p: max(0.0, p[0]), [x]))


def test_composite_expression_matches_finite_difference():
    def f(a, b, c):
        exp = a.exp() if isinstance(a, Value) else math.exp(a)
        log = (b * b + 1).log() if isinstance(b, Value) else math.log(b * b + 1)
        r = (a * c).relu() if isinstance(a, Value) else max(0.0, a * c)
        return exp * log / (c**2 + 0.5) - r * b

    xs = [0.3, -1.2, 0.8]
    data, grads = value_and_grads(f, xs)
    assert data == pytest.approx(f(*xs), rel=1e-12)
    assert_close(grads, finite_difference(lambda p: f(*p), xs))


def test_deep_chain_of_fifty_thousand_ops_needs_no_recursion():
    x = Value(0.5)
    y = x
    for _ in range(50_000):
        y = y + x
    y.backward()
    assert y.data == pytest.approx(0.5 * 50_001)
    assert x.grad == 50_001


def test_second_backward_adds_the_same_leaf_gradients_again():
    x, y = Value(0.7), Value(-1.3)
    z = x * y  # an inner node used twice below
    out = z * z + z.exp() * x
    out.backward()
    first = (x.grad, y.grad)
    out.backward()
    assert (x.grad, y.grad) == pytest.approx((2 * first[0], 2 * first[1]), rel=1e-12)
    assert out.grad == 1.0  # inner nodes start again from zero


def test_backward_of_a_leaf_sets_its_own_gradient():
    x = Value(2.0)
    x.backward()
    assert x.grad == 1.0
