"""Posterior over each discrete state's linear dynamics given posterior latents.

Per state k the dynamics are a linear regression x_{t+1} = W_k phi_t + noise, noise ~ N(0, Sigma_k),
with features phi_t = [x_t; u_t; 1] (so W_k = [A_k, V_k, b_k]) and each step weighted by
q(z_{t+1} = k) (the state that drives x_t -> x_{t+1}). With the conjugate matrix-normal inverse-Wishart
prior W | Sigma ~ MN(0, Sigma, (lambda0 I)^-1), Sigma ~ IW(nu0, Psi0) the posterior is

    Lambda = S_pp + lambda0 I,  M = S_yp Lambda^-1,  Psi = Psi0 + S_yy - M Lambda M^T,  nu = nu0 + n
    Sigma ~ IW(nu, Psi),  W | Sigma ~ MN(M, Sigma, Lambda^-1)

where S_pp = sum_t w_t E[phi_t phi_t^T], S_yp = sum_t w_t E[x_{t+1} phi_t^T], S_yy = sum_t w_t E[x_{t+1}
x_{t+1}^T], n = sum_t w_t, expectations under the Gaussian posterior of the latents (means, covariances
and cross-covariances), so latent uncertainty enters the statistics.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class RegressionStats(NamedTuple):
    """Weighted expected sufficient statistics per state, P = D + U + 1 features.

    pp: (K, P, P) sum w E[phi phi^T];  yp: (K, D, P) sum w E[x' phi^T];  yy: (K, D, D) sum w E[x' x'^T];
    n: (K,) sum w.
    """

    pp: np.ndarray
    yp: np.ndarray
    yy: np.ndarray
    n: np.ndarray


class DynamicsSamples(NamedTuple):
    """Posterior samples of per-state dynamics (S samples).

    weights: (S, K, D, D)  input_weights: (S, K, D, U)  biases: (S, K, D)  covs: (S, K, D, D)
    """

    weights: np.ndarray
    input_weights: np.ndarray
    biases: np.ndarray
    covs: np.ndarray


def trial_stats(means, covs=None, cross_covs=None, state_probs=None, inputs=None) -> RegressionStats:
    """Statistics of one trial. means (T, D); covs (T, D, D) or None (latents known exactly);
    cross_covs (T-1, D, D) = Cov[x_{t+1}, x_t] or None; state_probs (T, K) or None (one state);
    inputs (T, U) or None."""
    m = np.asarray(means, dtype=float)
    T, D = m.shape
    u = np.zeros((T, 0)) if inputs is None else np.asarray(inputs, dtype=float)
    w = np.ones((T, 1)) if state_probs is None else np.asarray(state_probs, dtype=float)
    phi = np.concatenate([m, u, np.ones((T, 1))], axis=1)[:-1]          # (T-1, P)
    nxt = m[1:]                                                        # (T-1, D)
    P = phi.shape[1]
    Exx = np.einsum("ti,tj->tij", phi, phi)
    Eyp = np.einsum("ti,tj->tij", nxt, phi)
    Eyy = np.einsum("ti,tj->tij", nxt, nxt)
    if covs is not None:
        S = np.asarray(covs, dtype=float)
        Exx[:, :D, :D] += S[:-1]
        Eyy += S[1:]
    if cross_covs is not None:
        Eyp[:, :, :D] += np.asarray(cross_covs, dtype=float)
    wt = w[1:]                                                         # (T-1, K) weight of z_{t+1}
    return RegressionStats(pp=np.einsum("tk,tij->kij", wt, Exx), yp=np.einsum("tk,tij->kij", wt, Eyp),
                           yy=np.einsum("tk,tij->kij", wt, Eyy), n=wt.sum(0))


def posterior_stats(posteriors, inputs=None) -> RegressionStats:
    """Sum of ``trial_stats`` over a list of model Posteriors (fields discrete_probs, latent_means,
    latent_covs, latent_cross_covs). inputs: list of (T_i, U) or None."""
    total = None
    for i, post in enumerate(posteriors):
        s = trial_stats(post.latent_means, getattr(post, "latent_covs", None),
                        getattr(post, "latent_cross_covs", None), getattr(post, "discrete_probs", None),
                        None if inputs is None else inputs[i])
        total = s if total is None else RegressionStats(*(a + b for a, b in zip(total, s)))
    return total


def latent_stats(latents, states=None, num_states: int | None = None, inputs=None) -> RegressionStats:
    """Statistics from known latents: list of (T_i, D) and optional list of (T_i,) int states."""
    total = None
    for i, x in enumerate(latents):
        probs = None if states is None else np.eye(num_states)[np.asarray(states[i])]
        s = trial_stats(x, state_probs=probs, inputs=None if inputs is None else inputs[i])
        total = s if total is None else RegressionStats(*(a + b for a, b in zip(total, s)))
    return total


def posterior_params(stats: RegressionStats, prior_precision: float = 1e-6, prior_dof: float | None = None,
                     prior_scale: float = 1e-4):
    """Conjugate posterior (M (K, D, P), Lambda (K, P, P), Psi (K, D, D), nu (K,)). prior_dof defaults to D + 2."""
    K, D, P = stats.yp.shape
    nu0 = D + 2.0 if prior_dof is None else float(prior_dof)
    Lam = stats.pp + prior_precision * np.eye(P)
    M = np.linalg.solve(Lam, np.swapaxes(stats.yp, 1, 2)).swapaxes(1, 2)
    Psi = prior_scale * np.eye(D) + stats.yy - M @ Lam @ np.swapaxes(M, 1, 2)
    Psi = 0.5 * (Psi + np.swapaxes(Psi, 1, 2))
    return M, Lam, Psi, nu0 + stats.n


def sample_inverse_wishart(key, dof, scale, num_samples: int):
    """Sigma ~ IW(dof, scale) by the Bartlett decomposition of its inverse, a Wishart(dof, scale^-1):
    Sigma^-1 = L B B^T L^T, L = chol(scale^-1), B lower triangular, B_ii^2 ~ chi2(dof - i), B_ij ~ N(0, 1).
    dof: (), scale: (D, D) -> (num_samples, D, D)."""
    D = scale.shape[-1]
    L = jnp.linalg.cholesky(jnp.linalg.inv(scale))
    kc, kn = jax.random.split(key)
    chi2 = 2.0 * jax.random.gamma(kc, (dof - jnp.arange(D)) / 2.0, (num_samples, D))
    B = jnp.tril(jax.random.normal(kn, (num_samples, D, D)), -1) + jax.vmap(jnp.diag)(jnp.sqrt(chi2))
    LB = L @ B
    return jnp.linalg.inv(LB @ jnp.swapaxes(LB, -1, -2))


def sample_dynamics(key, stats: RegressionStats, num_samples: int = 1000, **prior) -> DynamicsSamples:
    """Draw (A_k, V_k, b_k, Sigma_k) for every state from the conjugate posterior. ``prior``:
    prior_precision, prior_dof, prior_scale of ``posterior_params``."""
    M, Lam, Psi, nu = posterior_params(stats, **prior)
    K, D, P = M.shape
    dtype = jnp.result_type(float)
    W, S = _sample_states(jax.random.split(key, K), jnp.asarray(M, dtype), jnp.asarray(Lam, dtype),
                          jnp.asarray(Psi, dtype), jnp.asarray(nu, dtype), num_samples)
    W, S = np.swapaxes(np.asarray(W), 0, 1), np.swapaxes(np.asarray(S), 0, 1)   # (S, K, D, P), (S, K, D, D)
    return DynamicsSamples(weights=W[..., :D], input_weights=W[..., D:P - 1], biases=W[..., -1], covs=S)


@partial(jax.jit, static_argnums=5)
def _sample_states(keys, M, Lam, Psi, nu, num_samples):
    """vmap over states of: Sigma ~ IW(nu, Psi), W = M + chol(Sigma) Z chol(Lam^-1)^T."""

    def one(key, M, Lam, Psi, nu):
        k1, k2 = jax.random.split(key)
        Sigma = sample_inverse_wishart(k1, nu, Psi, num_samples)
        LV = jnp.linalg.cholesky(jnp.linalg.inv(Lam))
        Z = jax.random.normal(k2, (num_samples,) + M.shape, M.dtype)
        return M + jnp.linalg.cholesky(Sigma) @ Z @ LV.T, Sigma

    return jax.vmap(one)(keys, M, Lam, Psi, nu)
