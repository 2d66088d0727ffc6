"""
microgpt: train a tiny GPT on a list of names and sample new ones, in one file of
plain Python with no dependencies. Read it top to bottom: data, tokenizer,
autograd, model, training, inference, and then the tooling around them.

    python microgpt.py            # train on names.txt, then print 20 new names
    python microgpt.py --help     # every option, with its default
"""

import argparse
import gc
import json
import math
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from operator import mul

# ---------------------------------------------------------------------------
# Data and tokenizer
# A document is one line of the data file (here: one name). The model reads
# characters, so the tokenizer gives every distinct character an integer id.
# One extra id, BOS ("beginning of sequence"), marks where a document starts
# and, reused at the end, where it stops.
# ---------------------------------------------------------------------------


def load_docs(path):
    """The non-blank lines of a UTF-8 text file, stripped of surrounding spaces."""
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().split("\n")
    return [line.strip() for line in lines if line.strip()]


class Tokenizer:
    """Characters to ids and back: ids 0..len(chars)-1 are characters, id len(chars) is BOS."""

    def __init__(self, chars):
        self.chars = list(chars)
        self.ids = {ch: i for i, ch in enumerate(self.chars)}
        self.bos = len(self.chars)
        self.vocab_size = len(self.chars) + 1

    @classmethod
    def from_docs(cls, docs):
        return cls(sorted(set("".join(docs))))

    def encode(self, text):
        return [self.ids[ch] for ch in text]

    def decode(self, ids):
        return "".join(self.chars[i] for i in ids)

    def doc_tokens(self, doc):
        """How a document is trained on: BOS, its characters, BOS again."""
        return [self.bos] + self.encode(doc) + [self.bos]


# ---------------------------------------------------------------------------
# Autograd
# A Value is one number that remembers how it was computed: its children (the
# inputs of the operation that made it) and the local gradient of its output
# with respect to each child. backward() applies the chain rule from the loss
# down to every parameter: d loss/d child += d loss/d node * d node/d child.
# ---------------------------------------------------------------------------


class Value:
    __slots__ = ("data", "grad", "_children", "_local_grads")

    def __init__(self, data, children=(), local_grads=()):
        self.data = data  # the number itself, set in the forward pass
        self.grad = 0.0  # d loss / d this number, set by backward()
        self._children = children  # the inputs of the operation that made it
        self._local_grads = local_grads  # d this / d each child, in the same order

    def __repr__(self):
        return f"Value(data={self.data}, grad={self.grad})"

    # Each operation returns its output and, beside it, the local gradients.
    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __sub__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data - other.data, (self, other), (1.0, -1.0))

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        quotient = self.data / other.data
        return Value(quotient, (self, other), (1.0 / other.data, -quotient / other.data))

    def __pow__(self, exponent):  # exponent is a plain number, not a Value
        return Value(self.data**exponent, (self,), (exponent * self.data ** (exponent - 1),))

    def __neg__(self):
        return Value(-self.data, (self,), (-1.0,))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self):
        out = math.exp(self.data)
        return Value(out, (self,), (out,))

    def relu(self):
        return Value(max(0.0, self.data), (self,), (1.0 if self.data > 0 else 0.0,))

    # A plain number on the left: 2 + x, 2 - x, 2 * x, 2 / x.
    def __radd__(self, other):
        return self + other

    def __rsub__(self, other):
        return Value(other) - self

    def __rmul__(self, other):
        return self * other

    def __rtruediv__(self, other):
        return Value(other) / self

    def backward(self):
        """Fill .grad of every Value this one depends on with d self / d that Value.

        Like PyTorch, gradients of leaves (the parameters) accumulate: calling
        backward() twice adds them twice. Inner nodes start from zero each time.
        """
        order = self._inner_nodes_in_topological_order()
        for node in order:
            node.grad = 0.0
        self.grad += 1.0
        for node in reversed(order):  # every node before any of its children
            upstream = node.grad
            if upstream:  # a zero gradient would add only zeros: skip the children
                for child, local_grad in zip(node._children, node._local_grads):
                    child.grad += local_grad * upstream

    def _inner_nodes_in_topological_order(self):
        """Nodes with children, each after all of its children (depth first, no recursion).

        Leaves are left out: they pass no gradient on, so their order does not matter.
        """
        if not self._children:
            return []
        order, visited = [], {self}
        stack = [(self, iter(self._children))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child._children and child not in visited:
                    visited.add(child)
                    stack.append((child, iter(child._children)))
                    break
            else:  # all children of node are placed: node comes next
                stack.pop()
                order.append(node)
        return order


# Fused operations. Each builds one node (or one per output) whose local
# gradients are written out by hand, instead of a chain of atomic nodes. The
# numbers agree with what the composition of + * exp log would give (up to
# rounding in the last bits); the graph is just much smaller, which is where
# most of the speed comes from. The tests check every one against its
# composition and against finite differences. (linear and rmsnorm, in the model
# below, are built the same way.)


def mean(values):
    """sum_i v_i / n. Each input has local gradient 1/n."""
    n = len(values)
    return Value(sum(v.data for v in values) / n, tuple(values), (1.0 / n,) * n)


def softmax(logits):
    """p_i = exp(z_i) / sum_j exp(z_j), with d p_i / d z_j = p_i * ([i == j] - p_j).

    The largest logit is subtracted first: it cancels in the ratio, and it keeps
    exp() from overflowing, since every exponent is then at most 0.
    """
    largest = max(z.data for z in logits)
    exps = [math.exp(z.data - largest) for z in logits]
    total = sum(exps)
    probs = [e / total for e in exps]
    children = tuple(logits)
    return [
        Value(p_i, children, tuple(p_i * ((i == j) - p_j) for j, p_j in enumerate(probs)))
        for i, p_i in enumerate(probs)
    ]


def cross_entropy(logits, target):
    """-log softmax(logits)[target], computed as logsumexp(logits) - logits[target].

    Written this way there is no log of a tiny probability and no overflow:
    logsumexp(z) = m + log(sum_j exp(z_j - m)) with m the largest logit.
    Its gradient is softmax(logits) minus 1 at the target.
    """
    largest = max(z.data for z in logits)
    exps = [math.exp(z.data - largest) for z in logits]
    total = sum(exps)
    loss = largest + math.log(total) - logits[target].data
    grads = [e / total for e in exps]
    grads[target] -= 1.0
    return Value(loss, tuple(logits), tuple(grads))


# ---------------------------------------------------------------------------
# The model
# A GPT reads one token at a time and outputs logits: one score per possible
# next token. Each position adds a token embedding and a position embedding,
# then each layer lets the position look back at earlier ones (attention) and
# think on its own (MLP). The same weights are used at every position.
# ---------------------------------------------------------------------------


@dataclass
class GPTConfig:
    vocab_size: int
    n_layer: int = 1
    n_embd: int = 16
    n_head: int = 4
    block_size: int = 16  # the most positions the model can see


def param_shapes(config):
    """The name and (rows, columns) of every weight matrix, in the order they are drawn."""
    e = config.n_embd
    shapes = {
        "wte": (config.vocab_size, e),  # token embeddings
        "wpe": (config.block_size, e),  # position embeddings
        "lm_head": (config.vocab_size, e),  # hidden state -> logits
    }
    for i in range(config.n_layer):
        shapes[f"layer{i}.attn_wq"] = (e, e)
        shapes[f"layer{i}.attn_wk"] = (e, e)
        shapes[f"layer{i}.attn_wv"] = (e, e)
        shapes[f"layer{i}.attn_wo"] = (e, e)
        shapes[f"layer{i}.mlp_fc1"] = (4 * e, e)
        shapes[f"layer{i}.mlp_fc2"] = (e, 4 * e)
    return shapes


def init_params(config, rng, std=0.08):
    """Every weight matrix of the model, by name, drawn from a normal distribution."""
    return {
        name: [[Value(rng.gauss(0, std)) for _ in range(n_in)] for _ in range(n_out)]
        for name, (n_out, n_in) in param_shapes(config).items()
    }


def flat_params(params):
    return [p for matrix in params.values() for row in matrix for p in row]


def linear(x, w):
    """Matrix times vector, no bias: out_i = sum_j w_ij * x_j.

    Each output is one fused node: d out_i / d w_ij = x_j and d out_i / d x_j = w_ij.
    """
    x = tuple(x)
    x_data = [xi.data for xi in x]
    out = []
    for row in w:
        row_data = [wi.data for wi in row]
        out.append(Value(sum(map(mul, row_data, x_data)), (*row, *x), (*x_data, *row_data)))
    return out


def rmsnorm(x, eps=1e-5):
    """Rescale x to a root-mean-square of 1: x_i * s, with s = (mean(x^2) + eps) ** -0.5.

    s is one fused node: d s / d x_j = -s^3 * x_j / n. Each output is then an
    ordinary product x_i * s.
    """
    x_data = [xi.data for xi in x]
    n = len(x)
    s = (sum(d * d for d in x_data) / n + eps) ** -0.5
    scale = Value(s, tuple(x), tuple(-(s**3) * d / n for d in x_data))
    return [xi * scale for xi in x]


def attention(q, k, v, keys, values, n_head):
    """Multi-head causal self-attention for the newest position.

    k and v join the cache of earlier positions (keys, values). Each head takes
    its slice of the vectors, scores the query against every cached key (a dot
    product, scaled by 1/sqrt(head_dim) so the scores do not grow with the
    width), turns the scores into weights with softmax, and returns the
    weighted sum of the cached values. The heads' outputs are concatenated.
    Both sums are written as small matrix products: score_t = k_t . q and
    out_j = sum_t weight_t * v_t[j].
    """
    keys.append(k)
    values.append(v)
    head_dim = len(q) // n_head
    out = []
    for h in range(n_head):
        lo, hi = h * head_dim, (h + 1) * head_dim
        head_keys = [k_t[lo:hi] for k_t in keys]
        scores = [s / math.sqrt(head_dim) for s in linear(q[lo:hi], head_keys)]
        weights = softmax(scores)
        head_values = [[v_t[j] for v_t in values] for j in range(lo, hi)]
        out.extend(linear(weights, head_values))
    return out


def gpt(params, config, token, pos, keys, values):
    """Logits for the token after `token`, which sits at position `pos`.

    keys[i] and values[i] hold layer i's cache of the earlier positions; this
    call appends the current position to them.
    """
    x = [t + p for t, p in zip(params["wte"][token], params["wpe"][pos])]
    x = rmsnorm(x)  # the embeddings are normalized once before the first layer too
    for i in range(config.n_layer):
        # attention, added to the residual stream
        h = rmsnorm(x)
        q = linear(h, params[f"layer{i}.attn_wq"])
        k = linear(h, params[f"layer{i}.attn_wk"])
        v = linear(h, params[f"layer{i}.attn_wv"])
        h = attention(q, k, v, keys[i], values[i], config.n_head)
        x = [a + b for a, b in zip(linear(h, params[f"layer{i}.attn_wo"]), x)]
        # MLP, added to the residual stream
        h = rmsnorm(x)
        h = [hi.relu() for hi in linear(h, params[f"layer{i}.mlp_fc1"])]
        x = [a + b for a, b in zip(linear(h, params[f"layer{i}.mlp_fc2"]), x)]
    return linear(x, params["lm_head"])


def empty_cache(config):
    """Per-layer lists of keys and values, filled one position at a time."""
    return [[] for _ in range(config.n_layer)], [[] for _ in range(config.n_layer)]


# ---------------------------------------------------------------------------
# Training
# The model learns next-token prediction: at each position of a document, the
# loss is -log of the probability it gave to the token that really comes next
# (cross-entropy). backward() gives the gradient of the mean loss for every
# parameter, and Adam nudges each parameter against its gradient.
# ---------------------------------------------------------------------------


def token_losses(params, config, tokens):
    """Cross-entropy at each position of one tokenized document (at most block_size positions)."""
    keys, values = empty_cache(config)
    n = min(config.block_size, len(tokens) - 1)
    return [
        cross_entropy(gpt(params, config, tokens[pos], pos, keys, values), tokens[pos + 1])
        for pos in range(n)
    ]


class Adam:
    """Adam: a step along a running mean of gradients (m), divided by a running
    root-mean-square of gradients (sqrt v), so every parameter moves at a similar
    pace. m and v start at zero; dividing by 1 - beta**t undoes that bias."""

    def __init__(self, params, beta1=0.85, beta2=0.99, eps=1e-8):
        self.params = params
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m = [0.0] * len(params)
        self.v = [0.0] * len(params)
        self.t = 0

    def step(self, lr):
        """Update every parameter from its .grad, then zero the gradients."""
        self.t += 1
        b1, b2, eps = self.beta1, self.beta2, self.eps
        m_correction, v_correction = 1 - b1**self.t, 1 - b2**self.t
        new_m, new_v = [], []
        for p, m, v in zip(self.params, self.m, self.v):
            g = p.grad
            m = b1 * m + (1 - b1) * g  # running mean of the gradient
            v = b2 * v + (1 - b2) * g**2  # running mean of its square
            new_m.append(m)
            new_v.append(v)
            p.data -= lr * (m / m_correction) / ((v / v_correction) ** 0.5 + eps)
            p.grad = 0.0
        self.m, self.v = new_m, new_v


def learning_rate(step, steps, lr):
    """Linear decay: the full rate at step 0, down to lr / steps at the last step."""
    return lr * (1 - step / steps)


def batch_loss(params, config, batch):
    """The mean over tokenized documents of each one's mean loss per position.

    A batch of one document is exactly that document's loss.
    """
    return mean([mean(token_losses(params, config, tokens)) for tokens in batch])


def train_step(params, config, batch, adam, lr):
    """One step on a batch of tokenized documents; returns the loss before the update.

    A loss or gradient that is not a finite number raises ArithmeticError
    before any parameter changes.
    """
    loss = batch_loss(params, config, batch)
    loss.backward()
    if not math.isfinite(loss.data + sum(p.grad for p in adam.params)):
        raise ArithmeticError("the loss or a gradient is no longer a finite number")
    adam.step(lr)
    return loss.data


# ---------------------------------------------------------------------------
# Inference
# Generation is autoregressive: start from BOS, turn the logits into
# probabilities, draw the next token, feed it back in, and repeat until the
# model emits BOS (the end of a name) or runs out of positions. Dividing the
# logits by a temperature below 1 sharpens the distribution: safer, blander names.
# ---------------------------------------------------------------------------


def sample(params, config, bos, rng, temperature, prompt=(), top_k=None):
    """Draw one document's token ids (without the BOS at either end).

    prompt: token ids the document must start with; the model reads them and
    continues from there. top_k: draw only among the k most likely tokens.
    """
    keys, values = empty_cache(config)
    tokens = [bos, *prompt]
    for pos in range(config.block_size):
        logits = gpt(params, config, tokens[pos], pos, keys, values)
        if pos + 1 < len(tokens):
            continue  # the next token is given by the prompt
        probs = [p.data for p in softmax([z / temperature for z in logits])]
        if top_k is not None:
            keep = set(sorted(range(len(probs)), key=probs.__getitem__, reverse=True)[:top_k])
            probs = [p if i in keep else 0.0 for i, p in enumerate(probs)]
        token = rng.choices(range(config.vocab_size), weights=probs)[0]
        if token == bos:
            break
        tokens.append(token)
    return tokens[1:]


# ===========================================================================
# Tooling: evaluation, checkpoints, the training run and the command line.
# Everything above is the algorithm; everything below serves the person running
# it, and the model does not depend on any of it.
# ===========================================================================

EVAL_DOCS = 200  # documents per side in the held-out evaluation (see evaluate)


def split_docs(docs, val_fraction):
    """(training docs, held-out docs): the held-out ones are the last val_fraction of docs.

    Taking them from the end keeps the first training documents, and so the
    default run, the same as with no held-out set at all.
    """
    n_train = len(docs) - int(len(docs) * val_fraction)
    return docs[:n_train], docs[n_train:]


def evaluate(params, config, tokenizer, docs):
    """Mean loss per token over docs, and its standard error, from the forward pass only.

    No gradients are needed, so no backward pass runs, and nothing here draws
    random numbers. The standard error treats the tokens as independent draws.
    """
    losses = []
    for doc in docs:
        losses += [loss.data for loss in token_losses(params, config, tokenizer.doc_tokens(doc))]
    n = len(losses)
    average = sum(losses) / n
    variance = sum((x - average) ** 2 for x in losses) / max(n - 1, 1)
    return average, math.sqrt(variance / n), n


# Checkpoints are one JSON file: a format tag and version, the model config, the
# vocabulary, the number of steps trained, the number of documents the run
# shuffled (so a loaded run can replay the same random stream and draw the same
# samples for the same seed), and every weight matrix, one row per line.

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "microgpt-checkpoint", 1
CONFIG_KEYS = ("n_layer", "n_embd", "n_head", "block_size")


def checkpoint_text(params, config, tokenizer, steps_trained, num_docs):
    header = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": {key: getattr(config, key) for key in CONFIG_KEYS},
        "vocab": tokenizer.chars,
        "steps_trained": steps_trained,
        "num_docs": num_docs,
    }
    lines = ["{"]
    lines += [
        f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}," for key, value in header.items()
    ]
    lines.append('  "params": {')
    for n, (name, matrix) in enumerate(params.items()):
        # allow_nan=False: a weight that is not a finite number stops the save
        rows = [json.dumps([p.data for p in row], allow_nan=False) for row in matrix]
        last = n == len(params) - 1
        lines.append(
            f"    {json.dumps(name)}: [\n      "
            + ",\n      ".join(rows)
            + ("\n    ]" if last else "\n    ],")
        )
    lines += ["  }", "}", ""]
    return "\n".join(lines)


def save_checkpoint(path, params, config, tokenizer, steps_trained, num_docs):
    """Write the checkpoint to a temporary file beside path, then rename it into place.

    The rename is atomic, so a failed or interrupted save leaves any earlier
    file at path as it was.
    """
    text = checkpoint_text(params, config, tokenizer, steps_trained, num_docs)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".microgpt-", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # the permissions open() would give, not mkstemp's private ones
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


class InputError(Exception):
    """A problem with what the user asked for, reported as one line before any training."""


def file_error(flag, path, error):
    """The one-line message for a file that cannot be opened or read."""
    if isinstance(error, FileNotFoundError):
        return InputError(f"argument {flag}: no such file: '{path}'")
    if isinstance(error, IsADirectoryError):
        return InputError(f"argument {flag}: '{path}' is a folder, not a file")
    return InputError(f"argument {flag}: cannot read '{path}': {error.strerror or error}")


def read_checkpoint(path):
    """The checkpoint at path as a dict, after checking everything a run relies on."""
    try:
        with open(path, encoding="utf-8") as f:
            ckpt = json.load(f)
    except OSError as e:
        raise file_error("--load", path, e) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"argument --load: '{path}' is not a microgpt checkpoint (not JSON text)") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(
            f'argument --load: \'{path}\' is not a microgpt checkpoint (no "format": "{CHECKPOINT_FORMAT}")'
        )
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise InputError(
            f"argument --load: '{path}' is checkpoint version {ckpt.get('version')!r}; this script reads version {CHECKPOINT_VERSION}"
        )
    problem = checkpoint_problem(ckpt)
    if problem:
        raise InputError(f"argument --load: '{path}' is damaged: {problem}")
    return ckpt


def checkpoint_problem(ckpt):
    """What is wrong with a checkpoint's contents, or None when it is sound."""
    config, vocab = ckpt.get("config"), ckpt.get("vocab")
    if not isinstance(config, dict) or any(not is_count(config.get(key), 1) for key in CONFIG_KEYS):
        return f"config must give {', '.join(CONFIG_KEYS)} as whole numbers >= 1"
    if config["n_embd"] % config["n_head"]:
        return "config n_embd is not divisible by n_head"
    if (
        not isinstance(vocab, list)
        or not all(isinstance(ch, str) and len(ch) == 1 for ch in vocab)
        or len(set(vocab)) != len(vocab)
    ):
        return "vocab must be a list of distinct single characters"
    for key in ("steps_trained", "num_docs"):
        if not is_count(ckpt.get(key), 0):
            return f"{key} must be a whole number >= 0"
    weights = ckpt.get("params")
    expected = param_shapes(checkpoint_config(ckpt))
    if not isinstance(weights, dict) or set(weights) != set(expected):
        return f"params must hold exactly {', '.join(expected)}"
    for name, (rows, cols) in expected.items():
        matrix = weights[name]
        if not (
            isinstance(matrix, list)
            and len(matrix) == rows
            and all(isinstance(r, list) and len(r) == cols for r in matrix)
        ):
            found = f"{len(matrix)} rows" if isinstance(matrix, list) else type(matrix).__name__
            return f"params {name} should be {rows} x {cols} for its config and vocab, but has {found}"
        if not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
            for r in matrix
            for x in r
        ):
            return f"params {name} holds something other than finite numbers"
    return None


def is_count(x, minimum):
    return isinstance(x, int) and not isinstance(x, bool) and x >= minimum


def checkpoint_config(ckpt):
    return GPTConfig(vocab_size=len(ckpt["vocab"]) + 1, **{key: ckpt["config"][key] for key in CONFIG_KEYS})


def load_weights(params, weights):
    for name, matrix in params.items():
        for row, numbers in zip(matrix, weights[name]):
            for p, x in zip(row, numbers):
                p.data = float(x)


def read_data(path):
    """The documents of a data file, or an InputError that says what is wrong with it."""
    try:
        docs = load_docs(path)
    except OSError as e:
        raise file_error("--data", path, e) from None
    except UnicodeDecodeError as e:
        raise InputError(
            f"argument --data: '{path}' is not UTF-8 text (byte {e.start} cannot be decoded)"
        ) from None
    if not docs:
        raise InputError(f"argument --data: '{path}' has no documents (every line is blank)")
    return docs


# The training run: progress lines, a clean stop on Ctrl-C, and a summary.


class StopOnInterrupt:
    """While active, Ctrl-C asks the loop to stop after the current step.

    A second Ctrl-C interrupts at once, as usual.
    """

    def __enter__(self):
        self.requested = False
        self.previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self.previous)


class TrainingDiverged(Exception):
    """Training produced a number that is not finite; the message is the step."""


def train(params, config, tokenizer, train_docs, adam, args):
    """Run args.steps training steps, printing one line per step.

    Returns the losses of the steps that ran, the seconds they took, and
    whether Ctrl-C stopped the run early. Raises TrainingDiverged when the
    numbers stop being finite.
    """
    tokens = [tokenizer.doc_tokens(doc) for doc in train_docs]
    end = "\r" if sys.stdout.isatty() else "\n"  # a terminal shows one updating line
    losses, start, width = [], time.perf_counter(), 0
    with StopOnInterrupt() as interrupt:
        for step in range(args.steps):
            first = step * args.batch_size
            batch = [tokens[(first + j) % len(tokens)] for j in range(args.batch_size)]
            try:
                losses.append(
                    train_step(params, config, batch, adam, learning_rate(step, args.steps, args.lr))
                )
            except ArithmeticError:  # also an overflow inside Adam
                raise TrainingDiverged(step + 1) from None
            elapsed = time.perf_counter() - start
            per_step = elapsed / (step + 1)
            line = (
                f"step {step + 1:4d} / {args.steps:4d} | loss {loss_text(losses[-1])}"
                f" | {1000 * per_step:5.1f} ms/step | {duration(per_step * (args.steps - step - 1))} left"
            )
            width = max(width, len(line))  # padding covers any longer line drawn before
            print(line.ljust(width) if end == "\r" else line, end=end, flush=True)
            if interrupt.requested:
                break
    if end == "\r":
        print()
    if not all(math.isfinite(p.data) for p in adam.params):  # the last update can still overflow
        raise TrainingDiverged(len(losses))
    return losses, time.perf_counter() - start, interrupt.requested


def loss_text(x):
    return f"{x:.4f}" if x < 1e5 else f"{x:.3e}"  # a diverging loss stays readable


def duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def loss_curve(losses, width=50):
    """The losses as one line of bars: each bar is the mean of an equal window of steps."""
    windows = min(width, len(losses))
    means = []
    for w in range(windows):
        part = losses[w * len(losses) // windows : (w + 1) * len(losses) // windows]
        means.append(sum(part) / len(part))
    bars = "▁▂▃▄▅▆▇█"
    try:
        bars.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        bars = "_.-=+*#@"
    low, high = min(means), max(means)
    scale = (len(bars) - 1) / (high - low) if high > low else 0.0
    line = "".join(bars[round((m - low) * scale)] for m in means)
    per_bar = len(losses) / windows
    steps = f"{'' if per_bar.is_integer() else 'about '}{round(per_bar)} step{'s' * (round(per_bar) != 1)}"
    return f"loss curve: {means[0]:.2f} {line} {means[-1]:.2f} (each bar: the mean loss of {steps})"


# The command line.


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        """Every usage error is one line on stderr and exit status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def whole_number(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got '{text}'")
        return value

    return parse


def number(valid, expected):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and valid(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'")
        return value

    return parse


DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "names.txt")
MODEL_DEFAULTS = {"n_layer": 1, "n_embd": 16, "n_head": 4, "block_size": 16}
MAX_PARAMS = 5_000_000  # at about 3 us per parameter and position, a step would take a minute


def build_parser():
    p = ArgumentParser(
        prog="microgpt.py",
        description="Train a tiny GPT on a file with one document per line, then sample new ones.",
    )
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        metavar="PATH",
        help="text file, one document per line (default: names.txt beside this script)",
    )
    data.add_argument(
        "--val-fraction",
        metavar="F",
        type=number(lambda x: 0 <= x < 1, "a fraction from 0 up to (not including) 1"),
        default=0.1,
        help="share of the shuffled documents, taken from the end, held out from training (default: %(default)s)",
    )
    data.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=42,
        help="seeds the one random stream: shuffle, initial weights, samples (default: %(default)s)",
    )
    model = p.add_argument_group("model (with --load, taken from the checkpoint)")
    meanings = {
        "n_layer": "transformer layers",
        "n_embd": "width of every vector, divisible by --n-head",
        "n_head": "attention heads",
        "block_size": "the most positions the model sees",
    }
    for name, default in MODEL_DEFAULTS.items():
        flag = "--" + name.replace("_", "-")
        model.add_argument(
            flag, type=whole_number(1), metavar="N", help=f"{meanings[name]} (default: {default})"
        )
    model.add_argument(
        "--load", metavar="PATH", help="start from this checkpoint instead of random weights (default: none)"
    )
    training = p.add_argument_group("training")
    training.add_argument(
        "--steps",
        metavar="N",
        type=whole_number(0),
        default=1000,
        help="training steps; 0 only samples, with --load (default: %(default)s)",
    )
    training.add_argument(
        "--batch-size",
        type=whole_number(1),
        default=1,
        metavar="B",
        help="documents per step (default: %(default)s)",
    )
    training.add_argument(
        "--lr",
        metavar="X",
        type=number(lambda x: x > 0, "a positive number"),
        default=0.01,
        help="learning rate at the first step, decayed linearly to 0 (default: %(default)s)",
    )
    training.add_argument(
        "--save", metavar="PATH", help="write a checkpoint here after training (default: none)"
    )
    training.add_argument(
        "--eval-docs",
        type=whole_number(0),
        default=EVAL_DOCS,
        metavar="N",
        help="held-out documents, and as many training documents, to evaluate after training; 0 skips (default: %(default)s)",
    )
    sampling = p.add_argument_group("sampling")
    sampling.add_argument(
        "--samples",
        type=whole_number(0),
        default=20,
        metavar="N",
        help="documents to generate (default: %(default)s)",
    )
    sampling.add_argument(
        "--temperature",
        metavar="T",
        type=number(lambda x: x >= 0.001, "a number >= 0.001 (for greedy sampling use --top-k 1)"),
        default=0.5,
        help="below 1: safer samples; above 1: wilder (default: %(default)s)",
    )
    sampling.add_argument(
        "--top-k",
        type=whole_number(1),
        metavar="K",
        help="draw only among the K most likely tokens (default: all)",
    )
    sampling.add_argument(
        "--prompt", default="", metavar="PREFIX", help="every sample starts with PREFIX (default: none)"
    )
    return p


def check_save_path(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not path or path.endswith(("/", os.sep)):
        raise InputError(f"argument --save: expected a file name, got '{path}'")
    if os.path.isdir(path):
        raise InputError(f"argument --save: '{path}' is a folder; give a file name")
    if not os.path.isdir(folder):
        raise InputError(f"argument --save: the folder '{folder}' does not exist")
    if not os.access(folder, os.W_OK):
        raise InputError(f"argument --save: cannot write into the folder '{folder}'")
    if os.path.exists(path) and not looks_like_checkpoint(path):
        raise InputError(
            f"argument --save: '{path}' exists and is not a microgpt checkpoint; not overwriting it"
        )


def looks_like_checkpoint(path):
    """Whether the file starts like a checkpoint: only those may be overwritten by --save."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(200)
    except OSError:
        return False
    return f'"format": "{CHECKPOINT_FORMAT}"' in head


def prepare(args):
    """Check every input before any training; returns (checkpoint, docs, tokenizer, config).

    Raises InputError with a one-line message for anything that cannot work.
    """
    ckpt = read_checkpoint(args.load) if args.load is not None else None
    if args.steps == 0 and ckpt is None:
        raise InputError("argument --steps: 0 steps only samples from a saved model: add --load PATH")
    resolve_model_flags(args, ckpt)
    docs, tokenizer = read_docs_and_vocab(args, ckpt)
    config = GPTConfig(vocab_size=tokenizer.vocab_size, **{key: getattr(args, key) for key in MODEL_DEFAULTS})
    size = sum(rows * cols for rows, cols in param_shapes(config).values())
    if size > MAX_PARAMS:
        raise InputError(
            f"argument --n-embd: a model with --n-layer {args.n_layer}, --n-embd {args.n_embd} and --block-size"
            f" {args.block_size} has {size:,} parameters, over the {MAX_PARAMS:,} pure Python can train;"
            " choose smaller sizes"
        )
    check_sampling_flags(args, tokenizer, config)
    if args.save is not None:
        check_save_path(args.save)
    return ckpt, docs, tokenizer, config


def resolve_model_flags(args, ckpt):
    """Fill in --n-layer, --n-embd, --n-head, --block-size from the checkpoint or the defaults."""
    for key, default in MODEL_DEFAULTS.items():
        given, flag = getattr(args, key), "--" + key.replace("_", "-")
        if ckpt and given is not None and given != ckpt["config"][key]:
            raise InputError(
                f"argument {flag}: the checkpoint's model has {key} = {ckpt['config'][key]}, not {given}"
            )
        setattr(args, key, ckpt["config"][key] if ckpt else default if given is None else given)
    if args.n_embd % args.n_head:
        raise InputError(
            f"argument --n-head: --n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})"
        )


def read_docs_and_vocab(args, ckpt):
    """(docs or None, tokenizer). The vocabulary is the checkpoint's, or the data's own.

    Sampling from a checkpoint needs no data; a data file given anyway marks
    which samples are new. Data used with a checkpoint must fit its vocabulary.
    """
    docs = None
    if ckpt is None or args.steps > 0 or args.data is not None:
        path = DEFAULT_DATA if args.data is None else args.data
        docs = read_data(path)
    tokenizer = Tokenizer(ckpt["vocab"]) if ckpt else Tokenizer.from_docs(docs)
    if docs is not None:
        unknown = sorted(set("".join(docs)) - tokenizer.ids.keys())
        if unknown:
            shown = " ".join(repr(ch) for ch in unknown[:10])
            raise InputError(
                f"argument --data: '{path}' has characters the checkpoint's vocabulary lacks: {shown}"
            )
    return docs, tokenizer


def check_sampling_flags(args, tokenizer, config):
    if args.top_k is not None and args.top_k > config.vocab_size:
        raise InputError(
            f"argument --top-k: expected 1 to {config.vocab_size} (the vocabulary size), got {args.top_k}"
        )
    unknown = sorted(set(args.prompt) - tokenizer.ids.keys())
    if unknown:
        raise InputError(
            f"argument --prompt: characters not in the vocabulary: {' '.join(repr(ch) for ch in unknown)}"
        )
    if len(args.prompt) >= config.block_size:
        raise InputError(
            f"argument --prompt: at most {config.block_size - 1} characters fit in"
            f" --block-size {config.block_size}, got {len(args.prompt)}"
        )


def run(args, ckpt, docs, tokenizer, config):
    """Shuffle, build the model, train, save, evaluate and sample; returns the exit status."""
    # One random stream, used in this order: shuffle, initial weights, samples.
    rng = random.Random(args.seed)
    if docs is not None:
        rng.shuffle(docs)
        print(f"num docs: {len(docs)}")
    else:  # replay the saving run's shuffle, so the samples draw from the same point of the stream
        rng.shuffle([None] * ckpt["num_docs"])
    print(f"vocab size: {config.vocab_size}")
    params = init_params(config, rng)  # drawn even when loading, for the same reason
    flat = flat_params(params)
    print(f"num params: {len(flat)}")
    steps_trained = 0
    if ckpt:
        load_weights(params, ckpt["params"])
        steps_trained = ckpt["steps_trained"]
        print(f"loaded {args.load}: trained for {steps_trained} steps")
    docs = docs or []
    train_docs, held_out = split_docs(docs, args.val_fraction)
    if docs:
        print(f"training docs: {len(train_docs)} | held-out docs: {len(held_out)}")

    interrupted = False
    if args.steps > 0:
        try:
            losses, seconds, interrupted = train(params, config, tokenizer, train_docs, Adam(flat), args)
        except TrainingDiverged as e:
            print(
                f"microgpt.py: error: training diverged at step {e}: the loss or the weights are no longer finite numbers; try a smaller --lr",
                file=sys.stderr,
            )
            return 1
        steps_trained += len(losses)
        print(
            f"trained {len(losses)} steps in {seconds:.1f} s ({1000 * seconds / len(losses):.1f} ms per step)"
        )
        print(loss_curve(losses))
    if args.save is not None:
        try:
            save_checkpoint(
                args.save, params, config, tokenizer, steps_trained, len(docs) or ckpt["num_docs"]
            )
        except OSError as e:
            print(
                f"microgpt.py: error: could not write the checkpoint '{args.save}': {e.strerror or e}",
                file=sys.stderr,
            )
            return 1
        print(f"saved {args.save}")
    if interrupted:
        print(f"stopped by Ctrl-C after step {len(losses)}", file=sys.stderr)
        return 130
    if held_out and args.eval_docs:
        report_evaluation(params, config, tokenizer, train_docs, held_out, args.eval_docs)
    elif docs and not held_out:
        print("no held-out docs (too few docs for --val-fraction): evaluation skipped")
    if args.samples:
        print("\n--- inference (new, hallucinated names) ---")
        print_samples(params, config, tokenizer, rng, args, train_docs, held_out)
    return 0


def report_evaluation(params, config, tokenizer, train_docs, held_out, n_docs):
    """One line: loss on the first n_docs held-out docs, and on as many training docs."""
    n = min(n_docs, len(held_out))
    val_loss, val_err, val_tokens = evaluate(params, config, tokenizer, held_out[:n])
    train_loss, train_err, _ = evaluate(params, config, tokenizer, train_docs[:n])
    print(
        f"held-out loss {loss_text(val_loss)} ± {val_err:.4f} ({n} docs, {val_tokens} tokens)"
        f" | training loss {loss_text(train_loss)} ± {train_err:.4f} ({n} docs)"
        f" | uniform guess {math.log(config.vocab_size):.4f}"
    )


def print_samples(params, config, tokenizer, rng, args, train_docs, held_out):
    """Each sample on a line, noted as seen in training or new, and a count of the new ones."""
    prompt, seen, held = tokenizer.encode(args.prompt), set(train_docs), set(held_out)
    new = 0
    for i in range(args.samples):
        text = tokenizer.decode(
            sample(params, config, tokenizer.bos, rng, args.temperature, prompt, args.top_k)
        )
        note = ""
        if train_docs:  # without data (sampling from a checkpoint) there is nothing to compare with
            new += bool(text) and text not in seen
            note = (
                "empty"
                if not text
                else "in training data"
                if text in seen
                else "new, a held-out doc"
                if text in held
                else "new"
            )
            note = f"{' ' * (config.block_size - len(text))}  ({note})"
        print(f"sample {i + 1:2d}: {text}{note}")
    if train_docs:
        print(f"{new} of {args.samples} samples are new (not in the training data)")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(
        sys.stdout, "reconfigure"
    ):  # a terminal that cannot show a character gets an escape, not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    # The graph holds no reference cycles, so reference counting frees it after
    # each step; the cycle collector would only rescan its nodes, about a fifth
    # of the run's time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        ckpt, docs, tokenizer, config = prepare(args)
        return run(args, ckpt, docs, tokenizer, config)
    except InputError as e:
        parser.error(str(e))
    except KeyboardInterrupt:
        return 130
    finally:
        if collecting:
            gc.enable()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # the reader went away (as with | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
