"""Per-state linear-Gaussian dynamics x_{t+1} = A_k x_t + V_k u_t + b_k + N(0, Q_k)."""

import jax
import jax.numpy as jnp
from jax import Array

from ssmneuro.inference._chol import cholesky, solve_triangular
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


def predicted_means(params: DynamicsParams, x_prev, u_prev) -> Array:
    """(K, D): A_k x_prev + V_k u_prev + b_k."""
    return params.weights @ x_prev + params.input_weights @ u_prev + params.biases


def gaussian_log_density(x, mean, cov) -> Array:
    """log N(x | mean, cov) for x, mean (D,), cov (D, D)."""
    L = cholesky(cov)
    z = solve_triangular(L, x - mean, lower=True)
    return -0.5 * (x.shape[-1] * LOG_2PI + jnp.sum(z * z)) - jnp.sum(jnp.log(jnp.diagonal(L)))


def gaussian_log_density_chol(x, mean, chol) -> Array:
    """log N(x | mean, L L^T) for a lower Cholesky factor L (D, D)."""
    z = solve_triangular(chol, x - mean, lower=True)
    return -0.5 * (x.shape[-1] * LOG_2PI + jnp.sum(z * z)) - jnp.sum(jnp.log(jnp.diagonal(chol)))


def log_likelihoods(params: DynamicsParams, x_prev, x, u_prev, chols=None) -> Array:
    """(K,): log N(x | A_k x_prev + V_k u_prev + b_k, Q_k); chols (K, D, D) = cholesky(Q) if precomputed."""
    mus = predicted_means(params, x_prev, u_prev)
    chols = cholesky(params.covs) if chols is None else chols
    return jax.vmap(gaussian_log_density_chol, in_axes=(None, 0, 0))(x, mus, chols)


def expected_gaussian_log_density(mean_err, second_moment_err, cov, chol=None) -> Array:
    """E[log N(e | 0, cov)] with E[e] = mean_err and E[e e^T] = second_moment_err (D, D)."""
    del mean_err
    D = cov.shape[-1]
    L = cholesky(cov) if chol is None else chol
    Linv_M = solve_triangular(L, second_moment_err, lower=True)
    trace = jnp.trace(solve_triangular(L, Linv_M.T, lower=True))
    return -0.5 * (D * LOG_2PI + trace) - jnp.sum(jnp.log(jnp.diagonal(L)))


def expected_log_likelihoods(params: DynamicsParams, m_prev, m, S_prev, S, C, u_prev, chols=None) -> Array:
    """(K,): E_q[log N(x_{t+1} | A_k x_t + V_k u_t + b_k, Q_k)].

    m_prev, m (D,) means of x_t, x_{t+1}; S_prev, S (D, D) their covariances; C (D, D) = Cov(x_{t+1}, x_t).
    E[e e^T] = (m - A m_prev - c)(...)^T + S - A C^T - C A^T + A S_prev A^T,  c = V u + b.
    """

    def one(A, V, b, Q, L):
        r = m - A @ m_prev - V @ u_prev - b
        M = jnp.outer(r, r) + S - A @ C.T - C @ A.T + A @ S_prev @ A.T
        return expected_gaussian_log_density(r, M, Q, L)

    chols = cholesky(params.covs) if chols is None else chols
    return jax.vmap(one)(params.weights, params.input_weights, params.biases, params.covs, chols)


def initial_expected_log_likelihoods(initial: InitialParams, m0, S0) -> Array:
    """(K,): E_q[log N(x_0 | mu_k, Sigma_k)]."""

    def one(mu, Sigma):
        r = m0 - mu
        return expected_gaussian_log_density(r, jnp.outer(r, r) + S0, Sigma)

    return jax.vmap(one)(initial.means, initial.covs)


def initial_log_likelihoods(initial: InitialParams, x0) -> Array:
    """(K,): log N(x_0 | mu_k, Sigma_k)."""
    return jax.vmap(gaussian_log_density, in_axes=(None, 0, 0))(x0, initial.means, initial.covs)


# ---------- vectorised over time (einsums with precomputed precisions: no per-step solves) ----------

def precisions(params: DynamicsParams):
    """(Q_k^{-1} (K, D, D) symmetrised, log det Q_k (K,))."""
    L = cholesky(params.covs)
    eye = jnp.broadcast_to(jnp.eye(L.shape[-1], dtype=L.dtype), L.shape)
    Linv = solve_triangular(L, eye, lower=True)
    P = jnp.swapaxes(Linv, -1, -2) @ Linv
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), -1)
    return 0.5 * (P + jnp.swapaxes(P, -1, -2)), logdet


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
