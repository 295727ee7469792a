"""Sequential (``lax.scan``) Kalman filter and smoother over per-step terms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ssmneuro.inference._chol import matmul, mT

from ssmneuro.inference.lgssm_terms import Dynamics, at, predict, symmetrize


def sequential_filter(initial_mean, initial_cov, dynamics: Dynamics, update, num_timesteps: int):
    """Forward pass: update with y_t, then predict x_{t+1}.

    Args:
        initial_mean, initial_cov: (D,), (D, D) the prior of x_1.
        dynamics: per-step F_t, u_t, Q_t.
        update: ``update(m, P, t) -> (m', P', log p(y_t | y_{1:t-1}), aux)`` (information or covariance
            form); ``aux`` holds per-step terms for the smoother (any pytree, stacked over t).
    Returns:
        (log_likelihoods (T,), filtered_means (T, D), filtered_covs (T, D, D),
         predicted_means (T, D), predicted_covs (T, D, D), aux stacked over t).
    """
    F, u, Q = dynamics

    def step(carry, t):
        m, P = carry
        mf, Pf, log_lik, aux = update(m, P, t)
        return predict(mf, Pf, at(F, t, 2), u[t], at(Q, t, 2)), (log_lik, mf, Pf, m, P, aux)

    _, out = jax.lax.scan(step, (initial_mean, initial_cov), jnp.arange(num_timesteps))
    return out


def sequential_smoother(filtered_means, filtered_covs, dynamics: Dynamics, Gt, Omega, omega):
    """Backward pass in the modified Bryson-Frazier form (Bierman 1977): no matrix is inverted.

    Terms from the filter (``information_smoother_terms`` / ``covariance_smoother_terms``): Omega (T, D, D)
    = C_t^T S_t^{-1} C_t and omega (T, D) = C_t^T S_t^{-1} e_t, with S_t = C_t P^-_t C_t^T + R_t and e_t the
    innovation (observed entries only), and Gt (T, D, D) = G_t^T, G_t = F_t (I - K_t C_t). The information
    about x_t in y_{t:T},
        Lambda_t = Omega_t + G_t^T Lambda_{t+1} G_t,   eta_t = omega_t + G_t^T eta_{t+1}   (zero past T),
    is carried back to the filtered posterior through x_{t+1} = F_t x_t + w_t, with A_t = F_t P^f_t:
        m^s_t = m^f_t + A_t^T eta_{t+1},   P^s_t = P^f_t - A_t^T Lambda_{t+1} A_t,
        Cov(x_{t+1}, x_t | y) = (I - P^-_{t+1} Lambda_{t+1}) A_t = F_t P^s_t - Q_t Lambda_{t+1} A_t
    (from P^f rather than P^-: in float32, P^- - P^- Lambda P^- loses digits when the data are informative).
    Only the two recursions are sequential (two D x D products a step); the rest is batched over t, spelled
    so that no dot takes the form A^T @ B (several times slower on XLA:CPU).
    Returns (smoothed_means (T, D), smoothed_covs (T, D, D), cross_covs (T-1, D, D)).
    """
    F, Q = dynamics.matrix, dynamics.cov  # time-varying: padded with zeros to length T, harmless below
    mf, Pf = filtered_means, filtered_covs

    def step(carry, x):  # carry Lambda_{t+1}, eta_{t+1} (zero at t = T), returned as the output for t
        Lam, eta = carry
        Gt_t, Omega_t, omega_t = x
        new = (symmetrize(Omega_t + matmul(matmul(Gt_t, Lam), Gt_t.T)), omega_t + matmul(Gt_t, eta))
        return new, carry

    _, (Lam, eta) = jax.lax.scan(step, (jnp.zeros_like(Pf[0]), jnp.zeros_like(mf[0])), (Gt, Omega, omega),
                                 reverse=True)
    At = Pf @ mT(F)  # A_t^T
    AtLam = At @ Lam
    Ps = symmetrize(Pf - AtLam @ mT(At))
    cross = mT((Ps @ mT(F) - AtLam @ Q)[:-1])
    return mf + (At @ eta[..., None])[..., 0], Ps, cross
