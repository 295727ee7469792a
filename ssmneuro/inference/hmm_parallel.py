"""Parallel (associative-scan) HMM recursions: O(log T) depth, O(T K^3) work.

An element is the (K, K) log-matrix M_t[i, j] = log A_{t-1}[i, j] + log l_t(j) (the first element has
every row equal to log pi + log l_1). The forward prefix products M_1 ⊗ ... ⊗ M_t in the (logsumexp, +)
semiring have every row equal to log alpha_t; the reverse suffix products M_{t+1} ⊗ ... ⊗ M_T ⊗ 0 have
every column equal to log beta_t; in the (max, +) semiring the prefixes give the Viterbi scores.
Elements carry a separate log-scale so the matrices stay O(1) (float32 keeps its precision at any T).

Log-matrix products use one matmul with three shifts: rows of A, columns of B, and a balancing shift of
the summed index k (half the gap between A's column-k max and B's row-k max). Entries below about
exp(-87) (float32) / exp(-708) (float64) of those shifts underflow to -inf.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ssmneuro.inference.scan import associative_scan


class _Element(NamedTuple):
    """log_matrix: (..., K, K) with max entry 0; log_scale: (...) so the element is log_matrix + log_scale."""

    log_matrix: jax.Array
    log_scale: jax.Array


def _finite_or_zero(x):
    return jnp.where(jnp.isfinite(x), x, jnp.zeros_like(x))


def _max_shift(log_matrix):
    """Max over the last two axes (0 where everything is -inf), without gradient."""
    return jax.lax.stop_gradient(_finite_or_zero(jnp.max(log_matrix, axis=(-2, -1))))


def log_matmul(log_A, log_B):
    """log(exp(log_A) @ exp(log_B)) for (..., K, K) log-matrices, by one shifted matmul."""
    middle = 0.5 * (jnp.max(log_A, axis=-2) - jnp.max(log_B, axis=-1))
    middle = jax.lax.stop_gradient(_finite_or_zero(middle))
    log_A = log_A - middle[..., None, :]
    log_B = log_B + middle[..., :, None]
    rows = jax.lax.stop_gradient(_finite_or_zero(jnp.max(log_A, axis=-1)))
    cols = jax.lax.stop_gradient(_finite_or_zero(jnp.max(log_B, axis=-2)))
    product = jnp.exp(log_A - rows[..., :, None]) @ jnp.exp(log_B - cols[..., None, :])
    return jnp.log(product) + rows[..., :, None] + cols[..., None, :]


def _rescale(log_matrix, log_scale):
    shift = _max_shift(log_matrix)
    return _Element(log_matrix - shift[..., None, None], log_scale + shift)


def _sum_product(earlier, later):
    """(M_1, s_1) then (M_2, s_2) -> (M_1 ⊗ M_2, s_1 + s_2), renormalized."""
    return _rescale(log_matmul(earlier.log_matrix, later.log_matrix), earlier.log_scale + later.log_scale)


def _sum_product_onto_rows(state, later):
    """``_sum_product`` when every row of ``state`` is the same (a forward prefix): one vector-matrix
    product, O(K^2) instead of O(K^3), broadcast back to every row."""
    row = logsumexp(state.log_matrix[..., 0, :, None] + later.log_matrix, axis=-2)
    return _rescale(jnp.broadcast_to(row[..., None, :], state.log_matrix.shape), state.log_scale + later.log_scale)


def _sum_product_onto_columns(state, earlier):
    """earlier ⊗ state (``_sum_product(earlier, state)``, argument order of the reverse scan) when every column of
    ``state`` is the same (a backward suffix): one matrix-vector product broadcast back to every column."""
    column = logsumexp(earlier.log_matrix + state.log_matrix[..., None, :, 0], axis=-1)
    return _rescale(jnp.broadcast_to(column[..., :, None], state.log_matrix.shape),
                    earlier.log_scale + state.log_scale)


def _max_plus_onto_rows(state, later):
    """``_max_plus`` when every row of ``state`` is the same (a Viterbi prefix)."""
    row = jnp.max(state.log_matrix[..., 0, :, None] + later.log_matrix, axis=-2)
    return _rescale(jnp.broadcast_to(row[..., None, :], state.log_matrix.shape), state.log_scale + later.log_scale)


def _max_plus_matmul(log_A, log_B):
    """C[i, j] = max_k A[i, k] + B[k, j]; a loop over k when the broadcast would be large."""
    K = log_A.shape[-1]
    batch = max(1, log_A.size // (K * K))
    if batch * K**3 <= 2**22:
        return jnp.max(log_A[..., :, :, None] + log_B[..., None, :, :], axis=-2)

    def body(k, best):
        return jnp.maximum(best, log_A[..., :, k, None] + log_B[..., k, None, :])

    init = jnp.full(jnp.broadcast_shapes(log_A.shape, log_B.shape), -jnp.inf, log_A.dtype)
    return jax.lax.fori_loop(0, K, body, init)


def _max_plus(earlier, later):
    return _rescale(_max_plus_matmul(earlier.log_matrix, later.log_matrix), earlier.log_scale + later.log_scale)


def _step_matrices(log_A, log_lik):
    """N_t[i, j] = log A_t[i, j] + log l_{t+1}(j), (T-1, K, K)."""
    return log_A + log_lik[1:, None, :]


def _forward_elements(log_pi, log_A, log_lik):
    K = log_lik.shape[-1]
    first = jnp.broadcast_to((log_pi + log_lik[0])[None, :], (1, K, K))
    matrices = jnp.concatenate([first, _step_matrices(log_A, log_lik)])
    return _rescale(matrices, jnp.zeros(matrices.shape[:1], matrices.dtype))


def _normalize(log_v):
    return log_v - logsumexp(log_v, axis=-1, keepdims=True)


def _predicted(log_pi, log_A, log_filt):
    """log p(z_{t+1} | y_{1:t}) = logsumexp_i log filtered_t(i) + log A_t[i, j]; the first row is log pi."""
    log_pred = logsumexp(log_filt[:-1, :, None] + log_A, axis=-2)
    return jnp.concatenate([log_pi[None], log_pred])


def filter_parallel(log_pi, log_A, log_lik, schedule="tree"):
    """(log p(y), log filtered (T, K), log predicted (T, K)) by a (logsumexp, +) prefix scan under ``schedule``
    (``scan.associative_scan``)."""
    prefixes = associative_scan(_sum_product, _forward_elements(log_pi, log_A, log_lik), schedule=schedule,
                                apply=_sum_product_onto_rows)
    first_rows = prefixes.log_matrix[:, 0, :]
    log_Z = prefixes.log_scale[-1] + logsumexp(first_rows[-1])
    log_filt = _normalize(first_rows)
    return log_Z, log_filt, _predicted(log_pi, log_A, log_filt)


def _log_backward(log_A, log_lik, schedule):
    """Normalized log beta (T, K) by a reverse (logsumexp, +) suffix scan ending in an all-zero matrix."""
    K = log_lik.shape[-1]
    matrices = jnp.concatenate([_step_matrices(log_A, log_lik), jnp.zeros((1, K, K), log_lik.dtype)])
    elements = _rescale(matrices, jnp.zeros(matrices.shape[:1], matrices.dtype))
    suffixes = associative_scan(lambda later, earlier: _sum_product(earlier, later), elements, reverse=True,
                                schedule=schedule, apply=_sum_product_onto_columns)
    return _normalize(suffixes.log_matrix[:, :, 0])


def smoother_parallel(log_pi, log_A, log_lik, time_varying, pair_weights, schedule="tree"):
    """(log p(y), filtered (T, K), smoothed (T, K), pairwise marginals (T-1, K, K) or their (K, K) sum)."""
    log_Z, log_filt, _ = filter_parallel(log_pi, log_A, log_lik, schedule)
    log_beta = _log_backward(log_A, log_lik, schedule)
    smoothed = jnp.exp(_normalize(log_filt + log_beta))
    T, K = log_lik.shape
    log_xi = log_filt[:-1, :, None] + _step_matrices(log_A, log_lik) + log_beta[1:, None, :]
    log_xi = _normalize(log_xi.reshape(T - 1, K * K)).reshape(T - 1, K, K)
    xi = pair_weights[:, None, None] * jnp.exp(log_xi)
    return log_Z, jnp.exp(log_filt), smoothed, (xi if time_varying else jnp.sum(xi, axis=0))


def _compose_maps(later, earlier):
    """(earlier ∘ later)(j) = earlier[later[j]] for index maps (..., K)."""
    return jnp.take_along_axis(earlier, later, axis=-1)


def _follow_maps(maps, z_last, schedule):
    """z_t = maps_t(maps_{t+1}(... z_T)) for maps (T-1, K); returns (T,) states."""
    if maps.shape[0] == 0:
        return z_last[None]
    composed = associative_scan(_compose_maps, maps, reverse=True, schedule=schedule)
    return jnp.concatenate([composed[:, z_last], z_last[None]])


def viterbi_parallel(log_pi, log_A, log_lik, schedule="tree"):
    """Max-plus prefix scan for delta_t, then backpointers composed by a reverse scan over index maps."""
    prefixes = associative_scan(_max_plus, _forward_elements(log_pi, log_A, log_lik), schedule=schedule,
                                apply=_max_plus_onto_rows)
    delta = prefixes.log_matrix[:, 0, :]
    pointers = jnp.argmax(delta[:-1, :, None] + log_A, axis=-2)  # (T-1, K): best z_t given z_{t+1} = j
    return _follow_maps(pointers.astype(jnp.int32), jnp.argmax(delta[-1]).astype(jnp.int32), schedule)


def sample_parallel(key, log_A, log_filt, schedule="tree"):
    """Draw s_t(j) ~ p(z_t | z_{t+1} = j, y_{1:t}) for all t, j independently, then z_t = s_t(z_{t+1})."""
    key_maps, key_last = jax.random.split(key)
    logits = log_filt[:-1, None, :] + jnp.swapaxes(log_A, -1, -2)  # (T-1, K_next, K)
    maps = jax.random.categorical(key_maps, logits, axis=-1).astype(jnp.int32)
    z_last = jax.random.categorical(key_last, log_filt[-1]).astype(jnp.int32)
    return _follow_maps(maps, z_last, schedule)
