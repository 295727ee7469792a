"""Sequential (``lax.scan``) Kalman filter and Rauch-Tung-Striebel smoother over per-step terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ssmneuro.inference._chol import cholesky, solve_triangular

from ssmneuro.inference.lgssm_terms import Dynamics, at, predict, symmetrize


def sequential_filter(initial_mean, initial_cov, dynamics: Dynamics, update, num_timesteps: int):
    """Forward pass: update with y_t, then predict x_{t+1}.

    Args:
        initial_mean, initial_cov: (D,), (D, D) the prior of x_1.
        dynamics: per-step F_t, u_t, Q_t.
        update: ``update(m, P, t) -> (m', P', log p(y_t | y_{1:t-1}))`` (information or covariance form).
    Returns:
        (log_likelihoods (T,), filtered_means (T, D), filtered_covs (T, D, D),
         predicted_means (T, D), predicted_covs (T, D, D)).
    """
    F, u, Q = dynamics

    def step(carry, t):
        m, P = carry
        mf, Pf, log_lik = update(m, P, t)
        return predict(mf, Pf, at(F, t, 2), u[t], at(Q, t, 2)), (log_lik, mf, Pf, m, P)

    _, out = jax.lax.scan(step, (initial_mean, initial_cov), jnp.arange(num_timesteps))
    return out


def sequential_smoother(filtered_means, filtered_covs, predicted_means, predicted_covs, dynamics: Dynamics):
    """Backward Rauch-Tung-Striebel pass, reusing the filter's predictions p(x_{t+1} | y_{1:t}) = N(m^-, P^-):

    E_t = P^f_t F_t^T (P^-_{t+1})^{-1}  (two triangular solves with the Cholesky factor),
    m^s_t = m^f_t + E_t (m^s_{t+1} - m^-_{t+1}),  P^s_t = P^f_t + E_t (P^s_{t+1} - P^-_{t+1}) E_t^T,
    Cov(x_{t+1}, x_t | y) = P^s_{t+1} E_t^T.
    Returns (smoothed_means (T, D), smoothed_covs (T, D, D), cross_covs (T-1, D, D)).
    """
    F = dynamics.matrix
    mf, Pf, mp, Pp = filtered_means, filtered_covs, predicted_means, predicted_covs

    def step(carry, x):
        m, P = carry
        t, mf_t, Pf_t, mp_next, Pp_next = x
        L = cholesky(Pp_next)
        E = solve_triangular(L.T, solve_triangular(L, at(F, t, 2) @ Pf_t, lower=True), lower=False).T
        m_s = mf_t + E @ (m - mp_next)
        P_s = symmetrize(Pf_t + E @ (P - Pp_next) @ E.T)
        return (m_s, P_s), (m_s, P_s, P @ E.T)

    T = mf.shape[0]
    xs = (jnp.arange(T - 1), mf[:-1], Pf[:-1], mp[1:], Pp[1:])
    _, (ms, Ps, cross) = jax.lax.scan(step, (mf[-1], Pf[-1]), xs, reverse=True)
    return jnp.concatenate([ms, mf[-1:]]), jnp.concatenate([Ps, Pf[-1:]]), cross
