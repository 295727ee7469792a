"""Per-state linear-Gaussian dynamics x_{t+1} = A_k x_t + V_k u_t + b_k + N(0, Q_k)."""

import jax
import jax.numpy as jnp
from jax import Array

from ssmneuro.inference._chol import chol_inverse, cholesky, symmetrize
from ssmneuro.models.params import DynamicsParams, InitialParams

LOG_2PI = 1.8378770664093453


def init_dynamics(key, num_states, latent_dim, input_dim, dtype=jnp.float32) -> DynamicsParams:
    """Slightly contracting random rotations, zero bias, covariance 0.01 I."""
    K, D, U = num_states, latent_dim, input_dim
    keys = jax.random.split(key, K)

    def one(k):
        q, _ = jnp.linalg.qr(jax.random.normal(k, (D, D), dtype))
        return 0.95 * q

    A = jax.vmap(one)(keys) if D > 0 else jnp.zeros((K, D, D), dtype)
    return DynamicsParams(A, jnp.zeros((K, D, U), dtype), jnp.zeros((K, D), dtype),
                          jnp.tile(0.01 * jnp.eye(D, dtype=dtype), (K, 1, 1)))


def precision_and_logdet(covs):
    """(Sigma^{-1} (..., D, D) symmetrised, log det Sigma (...,)) for covariances Sigma (..., D, D)."""
    L = cholesky(covs)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), -1)
    return symmetrize(chol_inverse(L)), logdet


def initial_log_likelihoods(initial: InitialParams, x0, prec) -> Array:
    """(K,): log N(x_0 | mu_k, Sigma_k); prec = ``precision_and_logdet(initial.covs)``."""
    P, logdet = prec
    r = x0 - initial.means
    return -0.5 * (x0.shape[-1] * LOG_2PI + logdet + jnp.einsum("ki,kij,kj->k", r, P, r))


def initial_expected_log_likelihoods(initial: InitialParams, m0, S0, prec) -> Array:
    """(K,): E_q[log N(x_0 | mu_k, Sigma_k)] under q(x_0) = N(m0, S0), prec = ``precision_and_logdet(initial.covs)``:
    tr(P_k E[e e^T]) = r_k^T P_k r_k + tr(P_k S0), r_k = m0 - mu_k."""
    P, logdet = prec
    r = m0 - initial.means
    trace = jnp.einsum("ki,kij,kj->k", r, P, r) + jnp.einsum("kij,ij->k", P, S0)
    return -0.5 * (m0.shape[-1] * LOG_2PI + logdet + trace)


# ---------- vectorised over time (einsums with precomputed precisions: no per-step solves) ----------

def precisions(params: DynamicsParams):
    """(Q_k^{-1} (K, D, D) symmetrised, log det Q_k (K,))."""
    return precision_and_logdet(params.covs)


def residuals(params: DynamicsParams, x, u) -> Array:
    """(T-1, K, D): x_{t+1} - A_k x_t - V_k u_t - b_k for x (T, D), u (T, U)."""
    pred = jnp.einsum("kij,tj->tki", params.weights, x[:-1]) + params.biases
    pred = pred + jnp.einsum("kij,tj->tki", params.input_weights, u[:-1])
    return x[1:, None, :] - pred


def log_likelihood_matrix(params: DynamicsParams, x, u, prec=None) -> Array:
    """(T-1, K): log N(x_{t+1} | A_k x_t + V_k u_t + b_k, Q_k)."""
    P, logdet = precisions(params) if prec is None else prec
    r = residuals(params, x, u)
    quad = jnp.einsum("tki,kij,tkj->tk", r, P, r)
    return -0.5 * (x.shape[1] * LOG_2PI + logdet + quad)


def expected_log_likelihood_matrix(params: DynamicsParams, m, S, C, u, prec=None) -> Array:
    """(T-1, K): E_q[log N(x_{t+1} | A_k x_t + V_k u_t + b_k, Q_k)] with means m (T, D), covs S (T, D, D)
    and cross-covariances C (T-1, D, D) = Cov(x_{t+1}, x_t):
    tr(P E[e e^T]) = r^T P r + tr(P S_{t+1}) - 2 tr(P A C^T) + tr(A^T P A S_t)."""
    P, logdet = precisions(params) if prec is None else prec
    A = params.weights
    r = residuals(params, m, u)
    PA = P @ A
    AtPA = jnp.swapaxes(A, -1, -2) @ PA
    trace = (jnp.einsum("tki,kij,tkj->tk", r, P, r) + jnp.einsum("kij,tij->tk", P, S[1:])
             - 2.0 * jnp.einsum("kij,tij->tk", PA, C) + jnp.einsum("kij,tij->tk", AtPA, S[:-1]))
    return -0.5 * (m.shape[1] * LOG_2PI + logdet + trace)
