"""Associative scans for linear recurrences, shared by the models and by `ssmneuro.seq`.

Two recurrences, each with a parallel (``jax.lax.associative_scan``, O(log T) depth) and a
sequential (``jax.lax.scan``) evaluation that give the same numbers:

- diagonal:  h_t = a_t * h_{t-1} + b_t       (elementwise; real or complex)
- dense:     h_t = A_t @ h_{t-1} + b_t       (A_t a (D, D) matrix)

with h_0 = ``initial_state`` (zero when omitted), so the first output is h_1 = a_1 * h_0 + b_1.

``associative_scan`` runs any associative operator under one of two schedules (``SCHEDULES``):

- ``"tree"``: ``jax.lax.associative_scan``, O(log T) depth. XLA compiles the operator once per tree level
  (about 2 log2 T copies), which for a heavy operator (the Kalman filter's) takes minutes on the CPU.
- ``"blocked"``: reduce-then-scan over chunks of c ~ sqrt(T) elements: compose each chunk (a ``lax.scan``
  over c steps, vectorised over the chunks), scan the chunk totals, then rescan every chunk from its prefix.
  O(sqrt T) depth, about 2T operator calls like the tree, and the operator compiled three times.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

SCHEDULES = ("tree", "blocked")
MAX_CHUNK = 64


def schedule_for(parallel):
    """The schedule a ``parallel`` argument asks for: None (sequential) for False, a name from ``SCHEDULES``
    as given, and for True the device's default: ``"blocked"`` on the CPU (the tree compiles the operator
    ~2 log2 T times there and runs no faster), ``"tree"`` elsewhere."""
    if parallel is False or parallel is None:
        return None
    if parallel is True:
        return "blocked" if jax.default_backend() == "cpu" else "tree"
    if parallel not in SCHEDULES:
        raise ValueError(f"parallel must be True, False or one of {SCHEDULES}, got {parallel!r}")
    return parallel


def associative_scan(fn, elems, reverse=False, schedule="tree", apply=None):
    """Inclusive scan of ``elems`` (a pytree of arrays with a leading axis T) under the associative ``fn``.

    fn(earlier, later) composes two batches of elements (leading axes are batch), as for
    ``jax.lax.associative_scan``, whose output (also with ``reverse``, where fn still receives the element
    nearer the start of the scan first) this reproduces under either schedule.

    ``apply(prefix, later)``, optional, must equal ``fn`` whenever its first argument is a prefix of the scan
    (the composition of elements 1..t), and may be cheaper there: when the first element is a "state" (a
    Kalman filter's N(m, P), with zero transition), so is every prefix, and composing onto a state is just
    propagating it. The ``"blocked"`` schedule uses it where its first argument is a prefix: the pass that runs
    the chunk totals into prefixes and the last pass, which rescans every chunk from its prefix (half its
    operator calls); the tree has no such passes and ignores it.
    """
    if schedule == "tree":
        return jax.lax.associative_scan(fn, elems, reverse=reverse)
    if schedule != "blocked":
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return _blocked_scan(fn, elems, fn if apply is None else apply, reverse)


def _blocked_scan(fn, elems, apply, reverse):
    """The ``"blocked"`` schedule (module docstring); ``apply`` rescans the chunks.

    Chunk b holds scan positions b c .. b c + c - 1 (position p is element p, or T - 1 - p with ``reverse``),
    the last chunk padded by repeating the last position, whose outputs are dropped. Every loop step gathers
    step s of all chunks and the rescan scatters its results straight into the (T, ...) outputs: no padded,
    flipped or transposed copies of the elements (those copies cost XLA:CPU as much as a pass of the scan).
    """
    tmap = jax.tree.map
    T = jax.tree.leaves(elems)[0].shape[0]
    if T == 1:
        return elems
    chunk = min(MAX_CHUNK, math.isqrt(T - 1) + 1)
    num_chunks = -(-T // chunk)
    starts = jnp.arange(num_chunks) * chunk

    def index(positions):  # scan positions (past-the-end ones clamped) -> element indices
        positions = jnp.minimum(positions, T - 1)
        return T - 1 - positions if reverse else positions

    def step(s):  # step s of every chunk
        i = index(starts + s)
        return tmap(lambda x: x[i], elems)

    totals = jax.lax.fori_loop(1, chunk, lambda s, acc: fn(acc, step(s)), step(0))

    def accumulate(acc, x):  # acc is a prefix: chunks 0..b
        acc = apply(acc, x)
        return acc, acc

    first_total = tmap(lambda x: x[:1], totals)
    _, running = jax.lax.scan(accumulate, first_total, tmap(lambda x: x[1:-1, None], totals))
    # prefixes[b] composes chunks 0..b-1; chunk 0 has none, and takes chunk 0's total as a stand-in that
    # its first step discards
    prefixes = tmap(lambda f, r: jnp.concatenate([f, f, r[:, 0]])[:num_chunks], first_total, running)
    first_chunk = jnp.arange(num_chunks) == 0

    def rescan(s, carry):
        acc, out = carry
        x = step(s)
        keep = (s == 0) & first_chunk
        acc = tmap(lambda a, e: jnp.where(keep.reshape((-1,) + (1,) * (e.ndim - 1)), e, a), apply(acc, x), x)
        positions = starts + s
        target = jnp.where(positions < T, index(positions), T)  # T: out of bounds, dropped
        out = tmap(lambda o, a: o.at[target].set(a, mode="drop"), out, acc)
        return acc, out

    _, out = jax.lax.fori_loop(0, chunk, rescan, (prefixes, tmap(jnp.zeros_like, elems)))
    return out


def _diagonal_combine(earlier, later):
    """Compose two affine maps h -> a h + b (earlier applied first)."""
    a_i, b_i = earlier
    a_j, b_j = later
    return a_j * a_i, a_j * b_i + b_j


def _dense_combine(earlier, later):
    """Compose two affine maps h -> A h + b (earlier applied first); leading axes are batch."""
    A_i, b_i = earlier
    A_j, b_j = later
    return A_j @ A_i, jnp.einsum("...ij,...j->...i", A_j, b_i) + b_j


def diagonal_scan(a, b, initial_state=None, reverse=False, parallel=True):
    """Solve h_t = a_t * h_{t-1} + b_t for t = 1..T.

    Args:
        a: (T, ...) multipliers, broadcastable against ``b`` (real or complex).
        b: (T, ...) inputs.
        initial_state: (...) h_0, zero when None.
        reverse: run from t = T down to 1 (h_t = a_t * h_{t+1} + b_t), e.g. for backward passes.
        parallel: associative scan (True) or a sequential ``lax.scan`` loop (False).

    Returns:
        h: (T, ...) the states h_1..h_T.
    """
    a = jnp.broadcast_to(a, jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b)))
    b = jnp.broadcast_to(b, a.shape).astype(jnp.result_type(a, b))
    if initial_state is not None:
        first = 0 if not reverse else -1
        b = b.at[first].add(a[first] * initial_state)
    if parallel:
        _, h = jax.lax.associative_scan(_diagonal_combine, (a, b), reverse=reverse)
        return h

    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    _, h = jax.lax.scan(step, jnp.zeros_like(b[0]), (a, b), reverse=reverse)
    return h


def dense_scan(A, b, initial_state=None, reverse=False, parallel=True):
    """Solve h_t = A_t @ h_{t-1} + b_t for t = 1..T.

    Args:
        A: (T, D, D) transition matrices (or (D, D), broadcast over time).
        b: (T, D) inputs.
        initial_state: (D,) h_0, zero when None.
        reverse: run from t = T down to 1 (h_t = A_t @ h_{t+1} + b_t).
        parallel: associative scan (True, O(T D^3) work, O(log T) depth) or ``lax.scan`` (False).

    Returns:
        h: (T, D) the states h_1..h_T.
    """
    A = jnp.broadcast_to(A, b.shape[:1] + A.shape[-2:])
    b = b.astype(jnp.result_type(A, b))
    if initial_state is not None:
        first = 0 if not reverse else -1
        b = b.at[first].add(A[first] @ initial_state)
    if parallel:
        _, h = jax.lax.associative_scan(_dense_combine, (A, b), reverse=reverse)
        return h

    def step(h, Ab):
        h = Ab[0] @ h + Ab[1]
        return h, h

    _, h = jax.lax.scan(step, jnp.zeros_like(b[0]), (A, b), reverse=reverse)
    return h
