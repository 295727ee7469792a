"""Recurrent cells as pure functions ``f(params, x, u) -> x'`` with analytic diagonal Jacobians.

Each cell maps a state x (D,) and an input u (U,) to the next state (D,). The LSTM state is the
concatenation (h, c) of its hidden and cell vectors, so D = 2H. ``*_diagonal_jacobian(params, x, u)``
returns diag(df/dx) (D,) in closed form, which quasi-DEER / quasi-ELK use instead of probing;
``DIAGONAL_JACOBIANS`` maps each cell to its rule so the methods find it automatically.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class GRUParams(NamedTuple):
    """GRU weights, gates stacked in the order (reset r, update z, candidate n).

    input_weights: (3, D, U); recurrent_weights: (3, D, D); input_biases: (3, D); recurrent_biases: (3, D).
    """

    input_weights: jax.Array
    recurrent_weights: jax.Array
    input_biases: jax.Array
    recurrent_biases: jax.Array


class TanhRNNParams(NamedTuple):
    """x' = tanh(W x + B u + b). recurrent_weights W: (D, D); input_weights B: (D, U); bias b: (D,)."""

    recurrent_weights: jax.Array
    input_weights: jax.Array
    bias: jax.Array


class LSTMParams(NamedTuple):
    """LSTM weights, gates stacked (input i, forget f, cell g, output o).

    input_weights: (4, H, U); recurrent_weights: (4, H, H); biases: (4, H).
    """

    input_weights: jax.Array
    recurrent_weights: jax.Array
    biases: jax.Array


def _uniform(key, shape, scale, dtype):
    return jax.random.uniform(key, shape, dtype, -scale, scale)


def init_gru(key, state_dim, input_dim, scale=1.0, dtype=jnp.float32) -> GRUParams:
    """PyTorch-style init: every weight ~ U(-s, s), s = scale / sqrt(state_dim)."""
    s = scale / jnp.sqrt(state_dim)
    k = jax.random.split(key, 4)
    return GRUParams(
        _uniform(k[0], (3, state_dim, input_dim), s, dtype),
        _uniform(k[1], (3, state_dim, state_dim), s, dtype),
        _uniform(k[2], (3, state_dim), s, dtype),
        _uniform(k[3], (3, state_dim), s, dtype),
    )


def _gru_gates(params: GRUParams, x, u):
    """Pre-activations: input part (3, D) and recurrent part (3, D)."""
    wu = params.input_weights @ u + params.input_biases
    wx = params.recurrent_weights @ x + params.recurrent_biases
    return wu, wx


def gru(params: GRUParams, x, u):
    """x' = (1 - z) n + z x,  r = σ(Wr u + Ur x), z = σ(Wz u + Uz x), n = tanh(Wn u + r (Un x)) (+ biases)."""
    wu, wx = _gru_gates(params, x, u)
    r = jax.nn.sigmoid(wu[0] + wx[0])
    z = jax.nn.sigmoid(wu[1] + wx[1])
    n = jnp.tanh(wu[2] + r * wx[2])
    return (1 - z) * n + z * x


def gru_diagonal_jacobian(params: GRUParams, x, u):
    """diag(dx'/dx) (D,): z + (x - n) z'(.) Uz_ii + (1 - z) n'(.) (r Un_ii + (Un x)_i r'(.) Ur_ii)."""
    wu, wx = _gru_gates(params, x, u)
    r = jax.nn.sigmoid(wu[0] + wx[0])
    z = jax.nn.sigmoid(wu[1] + wx[1])
    n = jnp.tanh(wu[2] + r * wx[2])
    U = jnp.diagonal(params.recurrent_weights, axis1=1, axis2=2)  # (3, D)
    dn = (1 - n**2) * (r * U[2] + wx[2] * r * (1 - r) * U[0])
    return z + (x - n) * z * (1 - z) * U[1] + (1 - z) * dn


def init_tanh_rnn(key, state_dim, input_dim, scale=1.0, dtype=jnp.float32) -> TanhRNNParams:
    """W ~ N(0, scale^2 / D) (spectral radius ≈ scale), B ~ N(0, 1 / U), b = 0."""
    k1, k2 = jax.random.split(key)
    W = scale * jax.random.normal(k1, (state_dim, state_dim), dtype) / jnp.sqrt(state_dim)
    B = jax.random.normal(k2, (state_dim, input_dim), dtype) / jnp.sqrt(max(input_dim, 1))
    return TanhRNNParams(W, B, jnp.zeros(state_dim, dtype))


def tanh_rnn(params: TanhRNNParams, x, u):
    """x' = tanh(W x + B u + b)."""
    return jnp.tanh(params.recurrent_weights @ x + params.input_weights @ u + params.bias)


def tanh_rnn_diagonal_jacobian(params: TanhRNNParams, x, u):
    """diag(dx'/dx) = (1 - x'^2) W_ii."""
    y = tanh_rnn(params, x, u)
    return (1 - y**2) * jnp.diagonal(params.recurrent_weights)


def init_lstm(key, hidden_dim, input_dim, scale=1.0, dtype=jnp.float32) -> LSTMParams:
    """Every weight ~ U(-s, s), s = scale / sqrt(hidden_dim). State dimension D = 2 hidden_dim."""
    s = scale / jnp.sqrt(hidden_dim)
    k = jax.random.split(key, 3)
    return LSTMParams(
        _uniform(k[0], (4, hidden_dim, input_dim), s, dtype),
        _uniform(k[1], (4, hidden_dim, hidden_dim), s, dtype),
        _uniform(k[2], (4, hidden_dim), s, dtype),
    )


def _lstm_gates(params: LSTMParams, h, u):
    pre = params.input_weights @ u + params.recurrent_weights @ h + params.biases
    return jax.nn.sigmoid(pre[0]), jax.nn.sigmoid(pre[1]), jnp.tanh(pre[2]), jax.nn.sigmoid(pre[3])


def lstm(params: LSTMParams, x, u):
    """State x = (h, c) (2H,): c' = f c + i g, h' = o tanh(c'), gates from (u, h)."""
    h, c = jnp.split(x, 2)
    i, f, g, o = _lstm_gates(params, h, u)
    c_new = f * c + i * g
    return jnp.concatenate([o * jnp.tanh(c_new), c_new])


def lstm_diagonal_jacobian(params: LSTMParams, x, u):
    """diag(dx'/dx) = (dh'_k/dh_k, dc'_k/dc_k) (2H,), by the chain rule through the four gates."""
    h, c = jnp.split(x, 2)
    i, f, g, o = _lstm_gates(params, h, u)
    U = jnp.diagonal(params.recurrent_weights, axis1=1, axis2=2)  # (4, H)
    c_new = f * c + i * g
    dc_dh = c * f * (1 - f) * U[1] + g * i * (1 - i) * U[0] + i * (1 - g**2) * U[2]
    tc = jnp.tanh(c_new)
    dh_dh = o * (1 - o) * U[3] * tc + o * (1 - tc**2) * dc_dh
    return jnp.concatenate([dh_dh, f])


DIAGONAL_JACOBIANS = {
    gru: gru_diagonal_jacobian,
    tanh_rnn: tanh_rnn_diagonal_jacobian,
    lstm: lstm_diagonal_jacobian,
}
