"""Associative scans for linear recurrences, shared by the models and by `ssmneuro.seq`.

Two recurrences, each with a parallel (``jax.lax.associative_scan``, O(log T) depth) and a
sequential (``jax.lax.scan``) evaluation that give the same numbers:

- diagonal:  h_t = a_t * h_{t-1} + b_t       (elementwise; real or complex)
- dense:     h_t = A_t @ h_{t-1} + b_t       (A_t a (D, D) matrix)

with h_0 = ``initial_state`` (zero when omitted), so the first output is h_1 = a_1 * h_0 + b_1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


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
