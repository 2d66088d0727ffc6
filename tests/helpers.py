"""Shared tools for the tests: finite differences and running the script."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "microgpt.py")
REFERENCE_RUN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "reference_run.txt")


def finite_difference(f, xs, h=1e-6):
    """Central differences of a scalar function f(list of floats) at xs, one entry at a time."""
    grads = []
    for i in range(len(xs)):
        up, down = list(xs), list(xs)
        up[i] += h
        down[i] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


def assert_close(actual, expected, rel=1e-6, abs_=1e-9):
    assert len(actual) == len(expected)
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert abs(a - e) <= abs_ + rel * abs(e), f"entry {i}: {a} vs {e}"


def run_script(*args, cwd=None, script=SCRIPT, timeout=120):
    """Run microgpt.py with args; returns the CompletedProcess (text output)."""
    return subprocess.run(
        [sys.executable, script, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def loss_lines(stdout):
    """The 'step N / M | loss X' part of each step line (timing fields dropped)."""
    return [" | ".join(line.split(" | ")[:2]) for line in stdout.splitlines() if line.startswith("step ")]


def sample_names(stdout):
    """The sampled text of each 'sample N: text  (note)' line."""
    names = []
    for line in stdout.splitlines():
        if line.startswith("sample "):
            text = line.split(": ", 1)[1]
            names.append(text.split("  (")[0].rstrip() if "  (" in text else text)
    return names
