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
    if family in CLOSED_FORM:
        return jax.nn.log_softmax(params.log_transition_matrix, axis=-1)
    logits = params.input_weights @ u
    if family in ("recurrent", "recurrent_only"):
        logits = logits + params.recurrent_weights @ x + params.biases
    if family == "recurrent_only":
        return jnp.broadcast_to(jax.nn.log_softmax(logits), (logits.shape[0],) * 2)
    return jax.nn.log_softmax(params.log_transition_matrix + logits[None, :], axis=-1)


def log_transition_matrices(family, params, x, u) -> Array:
    """(T-1, K, K): entry t is log p(z_{t+1} | z_t, x_t, u_t); x (T, D), u (T, U)."""
    return jax.vmap(lambda xt, ut: log_transition_matrix_at(family, params, xt, ut))(x[:-1], u[:-1])


def expected_log_transitions(family, params, x, u, expected_transitions) -> Array:
    """sum_t sum_ij q(z_t=i, z_{t+1}=j) log P_t(x_t)[i, j]; expected_transitions (T-1, K, K)."""
    return jnp.sum(expected_transitions * log_transition_matrices(family, params, x, u))


def log_transition_hessians(family, params, x, u, pairs) -> Array:
    """(T, D, D) Hessians in x_t of sum_ij pairs[t, i, j] log p(z_{t+1}=j | z_t=i, x_t, u_t), in closed form:

        -R^T (sum_i w_ti (diag(s_ti) - s_ti s_ti^T)) R,
        s_ti = p(z_{t+1} | z_t=i, x_t, u_t),  w_ti = sum_j pairs[t, i, j]

    (zero for families whose logits do not depend on x). x (T, D), u (T, U), pairs (T, K, K)."""
    T, D = x.shape
    if family not in ("recurrent", "recurrent_only"):
        return jnp.zeros((T, D, D), x.dtype)
    probs = jnp.exp(jax.vmap(lambda xt, ut: log_transition_matrix_at(family, params, xt, ut))(x, u))  # (T, K, K)
    w = jnp.sum(pairs, -1)                                                                            # (T, K)
    mean = jnp.einsum("ti,tij->tj", w, probs)
    curvature = jax.vmap(jnp.diag)(mean) - jnp.einsum("ti,tij,tik->tjk", w, probs, probs)             # (T, K, K)
    R = params.recurrent_weights
    return -jnp.einsum("jd,tjk,ke->tde", R, curvature, R)


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
