"""Building blocks of the Kalman recursions, shared by the sequential and the parallel paths.

The model (see ``lgssm.LGSSMParams``) is first rewritten into per-step terms:

- dynamics:  x_{t+1} = F_t x_t + u_t + N(0, Q_t), with u_t = b_t + B_t inputs_t   (entry t: x_t -> x_{t+1})
- emissions, information form: log N(y_t; C_t x + d_t + D_t inputs_t, R_t) over the observed entries
      = -1/2 x^T J_t x + h_t^T x + c_t,
  J_t = C_o^T R_oo^{-1} C_o,  h_t = C_o^T R_oo^{-1} r_t,  r_t = (y - d - D u)_o,
  c_t = -1/2 [r_t^T R_oo^{-1} r_t + log det R_oo + n_o log 2 pi]   (o = observed entries of row t).

With R diagonal and C static, J_t and h_t for all t come from one matmul each and every later step costs
O(D^3) regardless of N (the fast path for many neurons and few latents).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from ssmneuro.inference._chol import cho_solve, cholesky, cholesky_and_solve, matmul, mT, solve_triangular

LOG_2PI = 1.8378770664093453


class Dynamics(NamedTuple):
    """Per-step dynamics; time-varying arrays have length T (entry T-1 is padding, never used).

    matrix: (D, D) | (T, D, D)  F_t;   bias: (T, D)  u_t = b_t + B_t inputs_t;   cov: (D, D) | (T, D, D)  Q_t.
    """

    matrix: jax.Array
    bias: jax.Array
    cov: jax.Array


class EmissionInfo(NamedTuple):
    """Emission log-likelihood as a function of x_t: -1/2 x^T J_t x + h_t^T x + c_t.

    precision: (D, D) | (T, D, D) J_t;   linear: (T, D) h_t;   constant: (T,) c_t.
    """

    precision: jax.Array
    linear: jax.Array
    constant: jax.Array


def at(x, t, static_ndim: int):
    """``x`` itself when static (``x.ndim == static_ndim``), else its entry ``t`` along the time axis."""
    return x if x.ndim == static_ndim else x[t]


def time_axis(x, static_ndim: int):
    """vmap ``in_axes`` entry: None for a static array, 0 for a time-varying one."""
    return None if x.ndim == static_ndim else 0


def symmetrize(P):
    return 0.5 * (P + jnp.swapaxes(P, -1, -2))


def _pad_time(x, T: int):
    """A (T-1, ...) or (T, ...) time-varying array as (T, ...), padding with zeros."""
    x = x[:T]
    if x.shape[0] == T:
        return x
    return jnp.concatenate([x, jnp.zeros((T - x.shape[0],) + x.shape[1:], x.dtype)])


def dynamics_terms(params, inputs, num_timesteps: int) -> Dynamics:
    """Rewrite the dynamics as F_t, u_t = b_t + B_t inputs_t, Q_t (time-varying ones padded to length T)."""
    T = num_timesteps
    F, b, Q = params.dynamics_matrix, params.dynamics_bias, params.dynamics_cov
    F = F if F.ndim == 2 else _pad_time(F, T)
    Q = Q if Q.ndim == 2 else _pad_time(Q, T)
    bias = jnp.broadcast_to(b, (T,) + b.shape[-1:]) if b.ndim == 1 else _pad_time(b, T)
    B = params.dynamics_input_matrix
    if B is not None and inputs is not None:
        B = B if B.ndim == 2 else _pad_time(B, T)
        bias = bias + (inputs @ B.T if B.ndim == 2 else jnp.einsum("tdu,tu->td", B, inputs))
    return Dynamics(F, bias, Q)


def emission_offsets(params, emissions, inputs, mask):
    """r_t = y_t - d_t - D_t inputs_t (T, N), set to 0 where unobserved (so NaNs there are harmless)."""
    r = emissions - params.emission_bias
    Dm = params.emission_input_matrix
    if Dm is not None and inputs is not None:
        r = r - (inputs @ Dm.T if Dm.ndim == 2 else jnp.einsum("tnu,tu->tn", Dm, inputs))
    return r if mask is None else jnp.where(mask, r, 0.0)


def is_diagonal_cov(emission_cov, num_emissions: int) -> bool:
    """emission_cov given as (N,) or (T, N) variances (a 2-D (N, N) array is read as a full matrix)."""
    return emission_cov.ndim == 1 or (emission_cov.ndim == 2 and emission_cov.shape != (num_emissions,) * 2)


def emission_info(params, emissions, inputs=None, mask=None) -> EmissionInfo:
    """J_t, h_t, c_t for all t (see module docstring), batched over time.

    Diagonal R: J = C^T diag(m_t / r) C (one matmul for all t), h_t = C^T (m_t r_t / r).
    Full R: whiten by the Cholesky factor of R_oo (one factor when R is static and there is no mask).
    """
    C, R = params.emission_matrix, params.emission_cov
    N = emissions.shape[-1]
    r = emission_offsets(params, emissions, inputs, mask)
    observed = jnp.ones(r.shape, r.dtype) if mask is None else mask.astype(r.dtype)
    if is_diagonal_cov(R, N):
        w = observed / R  # (T, N): m_t / r
        if C.ndim == 2:
            if mask is None and R.ndim == 1:
                J = C.T @ (C / R[:, None])
            else:
                J = (w @ (C[:, :, None] * C[:, None, :]).reshape(N, -1)).reshape(-1, C.shape[1], C.shape[1])
            h = (w * r) @ C
        else:
            J = jnp.einsum("tnd,tn,tne->tde", C, w, C)
            h = jnp.einsum("tnd,tn->td", C, w * r)
        log_det = jnp.sum(observed * jnp.log(R), axis=-1)
        c = -0.5 * (jnp.sum(w * r**2, axis=-1) + log_det + jnp.sum(observed, -1) * LOG_2PI)
        return EmissionInfo(J, h, c)
    if mask is None and R.ndim == 2:  # one whitening for all t
        L = cholesky(R)
        Cw = solve_triangular(L, C, lower=True) if C.ndim == 2 else jax.vmap(
            lambda Ct: solve_triangular(L, Ct, lower=True))(C)
        rw = solve_triangular(L, r.T, lower=True).T
        log_det = 2 * jnp.sum(jnp.log(jnp.diag(L)))
    else:  # R_oo per step: unobserved rows/columns replaced by the identity
        both = observed[:, :, None] * observed[:, None, :]
        Rt = jnp.broadcast_to(R, (r.shape[0], N, N)) * both + jax.vmap(jnp.diag)(1.0 - observed)
        L = cholesky(Rt)
        Cm = C * observed[:, :, None]
        Cw = jax.vmap(lambda Lt, Ct: solve_triangular(Lt, Ct, lower=True))(L, Cm)
        rw = jax.vmap(lambda Lt, rt: solve_triangular(Lt, rt, lower=True))(L, r)
        log_det = 2 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
    J = jnp.einsum("...nd,...ne->...de", Cw, Cw)
    h = jnp.einsum("...nd,...n->...d", Cw, rw) if Cw.ndim == 3 else rw @ Cw
    c = -0.5 * (jnp.sum(rw**2, -1) + log_det + jnp.sum(observed, -1) * LOG_2PI)
    return EmissionInfo(J, h, c)


def predict(m, P, F, u, Q):
    """p(x_{t+1} | y_{1:t}): mean F m + u, covariance F P F^T + Q."""
    return matmul(F, m) + u, symmetrize(matmul(matmul(F, P), F.T) + Q)


def information_update(m, P, J, h, c):
    """Condition N(x; m, P) on a likelihood exp(-1/2 x^T J x + h^T x + c).

    With P = L L^T and M = I + L^T J L = L_M L_M^T (eigenvalues >= 1, a safe Cholesky), W = L L_M^{-T}:
      posterior cov   P' = W W^T = (P^{-1} + J)^{-1}      (symmetric PSD by construction)
      posterior mean  m' = m + W z,  z = W^T (h - J m)
      log-likelihood  c + h^T m - 1/2 m^T J m - 1/2 log det M + 1/2 z^T z
    (the determinant lemma: no N x N matrix is ever formed).
    Returns (m', P', log_likelihood).
    """
    D = m.shape[-1]
    L = cholesky(P)
    LM, W = cholesky_and_solve(jnp.eye(D, dtype=P.dtype) + matmul(matmul(mT(L), J), L), L)
    Jm = matmul(J, m)
    z = matmul(mT(W), h - Jm)
    log_lik = (c + jnp.sum(m * (h - 0.5 * Jm), -1) - jnp.sum(jnp.log(jnp.diagonal(LM, axis1=-2, axis2=-1)), -1)
               + 0.5 * jnp.sum(z * z, -1))
    return m + matmul(W, z), matmul(W, mT(W)), log_lik


def covariance_update(m, P, C, R, r, observed):
    """Condition N(x; m, P) on y (offsets r = y - d - D u, zero where unobserved) in covariance form.

    Unobserved entries: row of C zeroed, row/column of R replaced by the identity, so they drop out.
    S = C P C^T + R = L_S L_S^T;  one pass gives L_S and V = L_S^{-1} C P, U = L_S^{-1} C, z = L_S^{-1} e
    (innovation e = r - C m):  m' = m + V^T z,  P' = P - V^T V  (= P - K S K^T, K = P C^T S^{-1}),
    log-lik = log N(e; 0, S) over the observed entries = -1/2 z^T z - log det L_S - n_o/2 log 2 pi.
    Costs O(N^3 + N D^2) per step: the cheaper form when N <= D.
    Returns (m', P', log_likelihood, (U^T (D, N), V (N, D), z (N,))), the last for
    ``covariance_smoother_terms``.
    """
    D = m.shape[-1]
    C = C * observed[:, None]
    R = R * observed[:, None] * observed[None, :] + jnp.diag(1.0 - observed)
    PCt = matmul(P, C.T)  # (C P)^T
    e = r - matmul(C, m)
    LS, VUzT = cholesky_and_solve(symmetrize(matmul(C, PCt) + R), jnp.concatenate([PCt, C.T, e[None]]))
    Vt, Ut, z = VUzT[:D], VUzT[D:2 * D], VUzT[2 * D]
    log_lik = -0.5 * (jnp.sum(z * z) + jnp.sum(observed) * LOG_2PI) - jnp.sum(jnp.log(jnp.diag(LS)))
    return m + matmul(Vt, z), symmetrize(P - matmul(Vt, Vt.T)), log_lik, (Ut, Vt.T, z)


def covariance_smoother_terms(Ut, V, z, dynamics_matrix):
    """``sequential_smoother``'s terms G_t^T (T, D, D), Omega_t (T, D, D), omega_t (T, D), batched over t,
    from the covariance-form filter's U_t^T (T, D, N), V_t (T, N, D), z_t (T, N):
    Omega_t = C_t^T S_t^{-1} C_t = U_t^T U_t,  omega_t = C_t^T S_t^{-1} e_t = U_t^T z_t,  and with
    K_t C_t = P^-_t U_t^T U_t = V_t^T U_t,  G_t^T = (I - K_t C_t)^T F_t^T = F_t^T - U_t^T V_t F_t^T  (O(N D^2))."""
    Ft = mT(dynamics_matrix)
    return Ft - Ut @ (V @ Ft), Ut @ mT(Ut), (Ut @ z[..., None])[..., 0]


def information_smoother_terms(info: EmissionInfo, predicted_means, filtered_covs, dynamics_matrix):
    """The same terms from the information form. By Woodbury C^T S^{-1} = (I - J P^f) C^T R^{-1}, so
    Omega_t = J_t - J_t P^f_t J_t, omega_t = (I - J_t P^f_t)(h_t - J_t m^-_t), and K_t C_t = P^f_t J_t, so
    G_t^T = (I - J_t P^f_t) F_t^T."""
    J, h, _ = info
    JPf = J @ filtered_covs
    v = h - (J @ predicted_means[..., None])[..., 0]
    Ft = mT(dynamics_matrix)
    return Ft - JPf @ Ft, J - JPf @ J, v - (JPf @ v[..., None])[..., 0]


def smoother_element(mf, Pf, F, u, Q):
    """Backward kernel p(x_t | x_{t+1}, y_{1:t}) = N(E x_{t+1} + g, L) from the filtered N(mf, Pf).

    P^- = F Pf F^T + Q,  E = Pf F^T (P^-)^{-1},  g = mf - E (F mf + u),
    L = (I - E F) Pf (I - E F)^T + E Q E^T   (= Pf - E P^- E^T, in a form that stays PSD).
    Returns (E (D, D), g (D,), L (D, D)).
    """
    D = mf.shape[-1]
    Lp = cholesky(symmetrize(F @ Pf @ F.T + Q))
    E = cho_solve(Lp, F @ Pf).T
    g = mf - E @ (F @ mf + u)
    I_EF = jnp.eye(D, dtype=Pf.dtype) - E @ F
    return E, g, symmetrize(I_EF @ Pf @ I_EF.T + E @ Q @ E.T)


def smoother_elements(filtered_means, filtered_covs, dynamics: Dynamics):
    """The T backward kernels (E_t, g_t, L_t); the last is (0, mf_T, Pf_T), i.e. p(x_T | y_{1:T})."""
    mf, Pf = filtered_means, filtered_covs
    F, u, Q = dynamics
    fn = jax.vmap(smoother_element, in_axes=(0, 0, time_axis(F, 2), 0, time_axis(Q, 2)))
    E, g, L = fn(mf[:-1], Pf[:-1], F if F.ndim == 2 else F[:-1], u[:-1], Q if Q.ndim == 2 else Q[:-1])
    E = jnp.concatenate([E, jnp.zeros_like(Pf[-1:])])
    return E, jnp.concatenate([g, mf[-1:]]), jnp.concatenate([L, Pf[-1:]])
