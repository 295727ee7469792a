"""Jacobians df/dx of a cell along a trajectory: dense (forward mode) or diagonal (analytic or probed).

``cell(params, x, u)`` maps (D,) -> (D,). ``prev`` (T, D) holds the states the cell is applied to
(x_0..x_{T-1}) and ``inputs`` (T, ...) the inputs u_1..u_T.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssmneuro.seq.parallel_rnn.cells import DIAGONAL_JACOBIANS


def apply_cell(cell, params, prev, inputs):
    """f(x_{t-1}, u_t) for every t: (T, D)."""
    return jax.vmap(cell, in_axes=(None, 0, 0))(params, prev, inputs)


def dense_jacobians(cell, params, prev, inputs):
    """J_t = df/dx (x_{t-1}, u_t): (T, D, D), by ``jax.jacfwd`` (D forward-mode products per step)."""
    return jax.vmap(jax.jacfwd(cell, argnums=1), in_axes=(None, 0, 0))(params, prev, inputs)


def probed_diagonal(cell, params, prev, inputs, batch_size=8):
    """diag(J_t) (T, D) exactly, probing one coordinate at a time: [J_t e_i]_i, i = 1..D.

    Costs D forward-mode products like ``dense_jacobians`` but stores only (T, D), never (T, D, D).
    """
    D = prev.shape[-1]
    f = lambda x: apply_cell(cell, params, x, inputs)

    def column_entry(i):
        tangent = jnp.broadcast_to(jax.nn.one_hot(i, D, dtype=prev.dtype), prev.shape)
        return jax.jvp(f, (prev,), (tangent,))[1][:, i]

    return jax.lax.map(column_entry, jnp.arange(D), batch_size=min(batch_size, D)).T


def diagonal_rule(cell, diagonal_jacobian=None):
    """The diagonal-Jacobian function to use: the given one, a cell's analytic rule, or None (probe)."""
    if diagonal_jacobian is not None:
        return diagonal_jacobian
    try:
        return DIAGONAL_JACOBIANS.get(cell)
    except TypeError:  # unhashable callable
        return None


def diagonal_jacobians(cell, params, prev, inputs, rule=None):
    """diag(J_t) (T, D) by ``rule(params, x, u)`` when given, else by exact probing."""
    if rule is None:
        return probed_diagonal(cell, params, prev, inputs)
    return jax.vmap(rule, in_axes=(None, 0, 0))(params, prev, inputs)
