"""Sequential (``lax.scan``) Kalman filter and Rauch-Tung-Striebel smoother over per-step terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ssmneuro.inference.lgssm_terms import Dynamics, at, predict, smoother_element, symmetrize


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


def sequential_smoother(filtered_means, filtered_covs, dynamics: Dynamics):
    """Backward (RTS) pass; each step forms its kernel x_t = E_t x_{t+1} + g_t + N(0, L_t) on the fly
    (``smoother_element``) and applies it:

    m^s_t = E_t m^s_{t+1} + g_t,  P^s_t = E_t P^s_{t+1} E_t^T + L_t,  Cov(x_{t+1}, x_t | y) = P^s_{t+1} E_t^T.
    Returns (smoothed_means (T, D), smoothed_covs (T, D, D), cross_covs (T-1, D, D)).
    """
    F, u, Q = dynamics

    def step(carry, t):
        m, P = carry
        E, g, L = smoother_element(filtered_means[t], filtered_covs[t], at(F, t, 2), u[t], at(Q, t, 2))
        m_s, P_s = E @ m + g, symmetrize(E @ P @ E.T + L)
        return (m_s, P_s), (m_s, P_s, P @ E.T)

    T = filtered_means.shape[0]
    last = (filtered_means[-1], filtered_covs[-1])
    _, (ms, Ps, cross) = jax.lax.scan(step, last, jnp.arange(T - 1), reverse=True)
    return jnp.concatenate([ms, last[0][None]]), jnp.concatenate([Ps, last[1][None]]), cross
