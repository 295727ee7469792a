"""Discrete-state transitions p(z_{t+1} | z_t, x_t, u_t), chosen by name.

Families
- ``standard``:       log P[i, j] learned (closed form).
- ``sticky``:         as standard, with a Dirichlet prior adding ``stickiness`` to self-transitions.
- ``inputdriven``:    logits_ij = log P[i, j] + W_j u_t                 (optimiser).
- ``recurrent``:      logits_ij = log P[i, j] + W_j u_t + R_j x_t + r_j  (optimiser).
- ``recurrent_only``: logits_ij = W_j u_t + R_j x_t + r_j                (optimiser; no dependence on i).
Rows are normalised: log p(z_{t+1} = j | z_t = i) = logits_ij - logsumexp_j' logits_ij'.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

FAMILIES = ("standard", "sticky", "inputdriven", "recurrent", "recurrent_only")
CLOSED_FORM = ("standard", "sticky")


class StandardTransitions(NamedTuple):
    """log_transition_matrix: (K, K), rows normalised (log P[i, j] = log p(z_{t+1}=j | z_t=i))."""

    log_transition_matrix: Array


class RecurrentTransitions(NamedTuple):
    """Input-driven / recurrent transitions.

    log_transition_matrix: (K, K)  input_weights: (K, U)  recurrent_weights: (K, D)  biases: (K,)
    """

    log_transition_matrix: Array
    input_weights: Array
    recurrent_weights: Array
    biases: Array


def check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"transitions={family!r} is not known; choose one of {FAMILIES}")


def init_transitions(family, key, num_states, latent_dim, input_dim, self_prob=0.95, dtype=jnp.float32):
    """Sticky-ish default: P = self_prob on the diagonal, the rest spread evenly; small random R."""
    K = num_states
    off = (1.0 - self_prob) / max(K - 1, 1)
    P = jnp.full((K, K), off, dtype) + jnp.eye(K, dtype=dtype) * (self_prob - off) if K > 1 else jnp.ones((1, 1), dtype)
    log_P = jnp.log(P)
    if family in CLOSED_FORM:
        return StandardTransitions(log_P)
    if family == "recurrent_only":
        log_P = jnp.zeros((K, K), dtype)
    R = 0.01 * jax.random.normal(key, (K, latent_dim), dtype) if family != "inputdriven" else jnp.zeros((K, latent_dim), dtype)
    return RecurrentTransitions(log_P, jnp.zeros((K, input_dim), dtype), R, jnp.zeros((K,), dtype))


def log_transition_matrix_at(family, params, x, u) -> Array:
    """(K, K) log p(z_{t+1} = j | z_t = i, x_t = x (D,), u_t = u (U,))."""
    return _log_matrices(family, params, x[None], u[None])[0]


def log_transition_matrices(family, params, x, u) -> Array:
    """(T-1, K, K): entry t is log p(z_{t+1} | z_t, x_t, u_t); x (T, D), u (T, U)."""
    return _log_matrices(family, params, x[:-1], u[:-1])


def _log_matrices(family, params, x, u) -> Array:
    """(T, K, K) log p(z_{t+1} | z_t, x_t, u_t) at every step of x (T, D), u (T, U) (vectorised over T)."""
    K = params.log_transition_matrix.shape[0]
    if family in CLOSED_FORM:
        return jnp.broadcast_to(jax.nn.log_softmax(params.log_transition_matrix, -1), (x.shape[0], K, K))
    logits = next_state_logits(family, params, x, u)
    if family == "recurrent_only":
        return jnp.broadcast_to(jax.nn.log_softmax(logits, -1)[:, None, :], (x.shape[0], K, K))
    return jax.nn.log_softmax(params.log_transition_matrix[None] + logits[:, None, :], -1)


def next_state_logits(family, params, x, u) -> Array:
    """(T, K): the part of the logits that varies with time, l_tj = W_j u_t [+ R_j x_t + r_j]; x (T, D), u (T, U)
    (families with ``RecurrentTransitions`` only; the closed-form families have none)."""
    logits = u @ params.input_weights.T
    if family in ("recurrent", "recurrent_only"):
        logits = logits + x @ params.recurrent_weights.T + params.biases
    return logits


def expected_log_transition_terms(family, params, x, u, pairs) -> Array:
    """(T,): sum_ij pairs[t, i, j] log p(z_{t+1}=j | z_t=i, x_t, u_t) for x (T, D), u (T, U), pairs (T, K, K),
    without forming the (T, K, K) log matrices:

        sum_ij pairs_tij log P_ij + sum_j c_tj l_tj - sum_i w_ti logsumexp_j (log P_ij + l_tj),
        c_tj = sum_i pairs_tij,  w_ti = sum_j pairs_tij,  l = ``next_state_logits``

    (for ``recurrent_only`` log P = 0 and the logsumexp is the same for every i)."""
    if family in CLOSED_FORM:
        return jnp.einsum("tij,ij->t", pairs, jax.nn.log_softmax(params.log_transition_matrix, -1))
    # einsums, not multiply-sums: XLA:CPU reduces small trailing axes several times slower than it runs the
    # equivalent dot
    logits = next_state_logits(family, params, x, u)
    linear = jnp.einsum("tj,tj->t", jnp.sum(pairs, 1), logits)
    if family == "recurrent_only":
        return linear - jnp.sum(pairs, (-1, -2)) * jax.nn.logsumexp(logits, -1)
    log_P = params.log_transition_matrix
    normalizers = jax.nn.logsumexp(log_P[None] + logits[:, None, :], -1)                     # (T, K)
    return jnp.einsum("tij,ij->t", pairs, log_P) + linear - jnp.einsum("ti,ti->t", jnp.sum(pairs, -1), normalizers)


def expected_log_transitions(family, params, x, u, expected_transitions) -> Array:
    """sum_t sum_ij q(z_t=i, z_{t+1}=j) log P_t(x_t)[i, j]; expected_transitions (T-1, K, K)."""
    return jnp.sum(expected_log_transition_terms(family, params, x[:-1], u[:-1], expected_transitions))


def log_transition_hessians(family, params, x, u, pairs) -> Array:
    """(T, D, D) Hessians in x_t of sum_ij pairs[t, i, j] log p(z_{t+1}=j | z_t=i, x_t, u_t), in closed form:

        -R^T (sum_i w_ti (diag(s_ti) - s_ti s_ti^T)) R,
        s_ti = p(z_{t+1} | z_t=i, x_t, u_t),  w_ti = sum_j pairs[t, i, j]

    (zero for families whose logits do not depend on x). x (T, D), u (T, U), pairs (T, K, K)."""
    T, D = x.shape
    if family not in ("recurrent", "recurrent_only"):
        return jnp.zeros((T, D, D), x.dtype)
    probs = jnp.exp(_log_matrices(family, params, x, u))                                             # (T, K, K)
    w = jnp.sum(pairs, -1)                                                                            # (T, K)
    R = params.recurrent_weights
    # R^T diag(sum_i w_ti s_ti) R - sum_i (R^T s_ti)(R^T s_ti)^T w_ti, as batched dots (T, D, D); XLA:CPU runs
    # the (T, K, K, K) products of the direct form several times slower
    outer_R = (R[:, :, None] * R[:, None, :]).reshape(R.shape[0], D * D)
    diag_part = (jnp.einsum("ti,tij->tj", w, probs) @ outer_R).reshape(T, D, D)
    projected = jnp.sqrt(w)[..., None] * jnp.einsum("tij,jd->tid", probs, R)                      # (T, K, D)
    return jnp.einsum("tid,tie->tde", projected, projected) - diag_part


def closed_form_update(expected_counts, stickiness=0.0) -> StandardTransitions:
    """MAP log P from summed pairwise marginals (K, K) under a Dirichlet(1 + stickiness * I) prior."""
    K = expected_counts.shape[0]
    counts = expected_counts + stickiness * jnp.eye(K, dtype=expected_counts.dtype) + 1e-8
    return StandardTransitions(jnp.log(counts / counts.sum(-1, keepdims=True)))


def log_stationary_distribution(log_transition_matrix) -> Array:
    """(K,) log of the stationary distribution of P (leading left eigenvector)."""
    P = jnp.exp(jax.nn.log_softmax(log_transition_matrix, axis=-1))
    K = P.shape[0]
    # solve pi (P - I) = 0 with sum pi = 1 as a least-squares system
    A = jnp.concatenate([(P - jnp.eye(K, dtype=P.dtype)).T, jnp.ones((1, K), P.dtype)], axis=0)
    b = jnp.concatenate([jnp.zeros((K,), P.dtype), jnp.ones((1,), P.dtype)])
    pi = jnp.linalg.lstsq(A, b)[0]
    return jnp.log(jnp.clip(pi, 1e-12, None))
