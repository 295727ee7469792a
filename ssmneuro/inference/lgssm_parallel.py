"""Parallel (associative-scan) Kalman filter and smoother, Sarkka & Garcia-Fernandez (2021).

Filter elements a_t = (A, b, C, eta, J) represent p(x_t | x_{t-1}, y_t) = N(A x_{t-1} + b, C) and the
likelihood of x_{t-1} from y_t, exp(-1/2 x^T J x + eta^T x); composing elements 1..t gives
p(x_t | y_{1:t}) = N(b, C). The emissions enter only through the information terms (J_t, h_t), so every
element costs O(D^3) whatever N. The smoother composes the backward kernels (E, g, L) in reverse.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from ssmneuro.inference._chol import cholesky, cholesky_and_solve, psd_factor, solve_triangular
from ssmneuro.inference.scan import associative_scan

from ssmneuro.inference.lgssm_terms import (Dynamics, EmissionInfo, at, information_update, predict,
                                            symmetrize, time_axis)


def _mT(X):
    """X^T over the last two axes, materialised: XLA:CPU runs a batched dot whose operand is a transpose several
    times slower than one on a plain array (the filter's scan: 15 -> 9 ms at D = 8, T = 2000)."""
    return jax.lax.optimization_barrier(jnp.swapaxes(X, -1, -2))


def _mv(A, x):
    """A x batched: A (..., D, D), x (..., D)."""
    return (A @ x[..., None])[..., 0]


def filter_element(F, u, Q, J, h):
    """Element for t >= 2: prior N(F x_{t-1} + u, Q) conditioned on exp(-1/2 x^T J x + h^T x).

    C = (Q^{-1} + J)^{-1} = W W^T (W = L_Q L_M^{-T}, M = I + L_Q^T J L_Q),
    A = (I - C J) F,  b = u + C (h - J u),  eta = F^T (I - J C)(h - J u),  J' = F^T (J - J C J) F.
    """
    D = u.shape[-1]
    LQ = cholesky(Q)
    LM = cholesky(jnp.eye(D, dtype=Q.dtype) + LQ.T @ J @ LQ)
    W = _mT(solve_triangular(LM, LQ.T, lower=True))
    C = W @ _mT(W)
    I_CJ = jnp.eye(D, dtype=Q.dtype) - C @ J
    resid = h - J @ u
    return I_CJ @ F, u + C @ resid, C, F.T @ (_mT(I_CJ) @ resid), symmetrize(F.T @ J @ I_CJ @ F)


def filter_combine(earlier, later):
    """Compose two filter elements (batched over leading axes), i then j:

    M = I + C_i J_j;  A = A_j M^{-1} A_i;  b = A_j M^{-1}(b_i + C_i eta_j) + b_j;  C = A_j M^{-1} C_i A_j^T + C_j;
    eta = A_i^T M^{-T}(eta_j - J_j b_i) + eta_i;  J = A_i^T M^{-T} J_j A_i + J_i.

    M is never factored. With C_i = U U^T (``psd_factor``: C_i may be singular) and S = I + U^T J_j U = L_S L_S^T,
    symmetric positive definite with eigenvalues >= 1, Woodbury gives M^{-1} = I - W^T V with W = L_S^{-1} U^T and
    V = L_S^{-1} U^T J_j, so M^{-1} C_i = W^T W, M^{-T} = I - V^T W and M^{-T} J_j = J_j - V^T V: one Cholesky
    factor of a well-conditioned matrix, no pivoting.
    """
    Ai, bi, Ci, etai, Ji = earlier
    Aj, bj, Cj, etaj, Jj = later
    D = bi.shape[-1]
    U = psd_factor(Ci)
    JU = Jj @ U
    S = jnp.eye(D, dtype=Ci.dtype) + _mT(U) @ JU
    _, WV_T = cholesky_and_solve(symmetrize(S), jnp.concatenate([U, JU], -2))
    Wt, Vt = WV_T[..., :D, :], WV_T[..., D:, :]
    W, V = _mT(Wt), _mT(Vt)
    VA = V @ Ai
    v = bi + _mv(Ci, etaj)
    r = etaj - _mv(Jj, bi)
    WAjT = W @ _mT(Aj)
    A = Aj @ (Ai - Wt @ VA)
    b = _mv(Aj, v - _mv(Wt, _mv(V, v))) + bj
    C = symmetrize(_mT(WAjT) @ WAjT + Cj)
    eta = _mv(_mT(Ai), r - _mv(Vt, _mv(W, r))) + etai
    J = symmetrize(_mT(Ai) @ Jj @ Ai - _mT(VA) @ VA + Ji)
    return A, b, C, eta, J


def filter_apply(state, later):
    """``filter_combine`` when ``earlier`` is a state, a filtered N(b_i, C_i) with A_i, eta_i, J_i zero (every
    prefix of the filter's scan is one): then A, eta and J stay zero and only b and C are computed,
    b = A_j M^{-1}(b_i + C_i eta_j) + b_j and C = A_j M^{-1} C_i A_j^T + C_j, with the same factors as there."""
    Ai, bi, Ci, etai, Ji = state
    Aj, bj, Cj, etaj, Jj = later
    D = bi.shape[-1]
    U = psd_factor(Ci)
    JU = Jj @ U
    LS, Wt = cholesky_and_solve(symmetrize(jnp.eye(D, dtype=Ci.dtype) + _mT(U) @ JU), U)
    v = bi + _mv(Ci, etaj)
    Vv = solve_triangular(LS, _mv(_mT(JU), v), lower=True)  # V v, V = L_S^{-1} U^T J_j
    WAjT = _mT(Wt) @ _mT(Aj)
    b = _mv(Aj, v - _mv(Wt, Vv)) + bj
    C = symmetrize(_mT(WAjT) @ WAjT + Cj)
    return Ai, b, C, etai, Ji


def parallel_filter(initial_mean, initial_cov, dynamics: Dynamics, info: EmissionInfo, schedule="tree"):
    """Filter by an associative scan (``scan.associative_scan`` under ``schedule``); then predictions and
    log p(y_t | y_{1:t-1}) for all t at once.

    Returns the same tuple as ``sequential_filter``.
    """
    F, u, Q = dynamics
    J, h, c = info
    T, D = h.shape
    m1, P1, _ = information_update(initial_mean, initial_cov, at(J, 0, 2), h[0], c[0])
    rest = lambda x, k: x if x.ndim == k else x[:-1]  # dynamics entries 0..T-2
    nxt = lambda x, k: x if x.ndim == k else x[1:]  # emission entries 1..T-1
    build = jax.vmap(filter_element, in_axes=(time_axis(F, 2), 0, time_axis(Q, 2), time_axis(J, 2), 0))
    elems = build(rest(F, 2), u[:-1], rest(Q, 2), nxt(J, 2), h[1:])
    zeros = jnp.zeros((1, D, D), P1.dtype)
    first = (zeros, m1[None], P1[None], jnp.zeros((1, D), P1.dtype), zeros)
    elems = tuple(jnp.concatenate([f, e]) for f, e in zip(first, elems))
    _, mf, Pf, _, _ = associative_scan(filter_combine, elems, schedule=schedule, apply=filter_apply)
    step = jax.vmap(predict, in_axes=(0, 0, time_axis(F, 2), 0, time_axis(Q, 2)))
    mp, Pp = step(mf[:-1], Pf[:-1], rest(F, 2), u[:-1], rest(Q, 2))
    mp = jnp.concatenate([initial_mean[None], mp])
    Pp = jnp.concatenate([initial_cov[None], Pp])
    update = jax.vmap(information_update, in_axes=(0, 0, time_axis(J, 2), 0, 0))
    _, _, log_liks = update(mp, Pp, J, h, c)
    return log_liks, mf, Pf, mp, Pp


def smoother_combine(later, earlier):
    """Compose backward kernels (reverse scan: the later one comes first):
    E = E_e E_l,  g = E_e g_l + g_e,  L = E_e L_l E_e^T + L_e."""
    El, gl, Ll = later
    Ee, ge, Le = earlier
    return Ee @ El, (Ee @ gl[..., None])[..., 0] + ge, symmetrize(Ee @ Ll @ _mT(Ee) + Le)


def smoother_apply(state, earlier):
    """``smoother_combine`` when ``later`` is a state, the smoothed N(g_l, L_l) with E_l zero (every suffix of
    the smoother's scan is one, as the last kernel's E is): E stays zero, and its product is skipped."""
    El, gl, Ll = state
    Ee, ge, Le = earlier
    return El, (Ee @ gl[..., None])[..., 0] + ge, symmetrize(Ee @ Ll @ _mT(Ee) + Le)


def parallel_smoother(E, g, L, schedule="tree"):
    """Same outputs as ``sequential_smoother``, by a reverse associative scan under ``schedule``."""
    _, ms, Ps = associative_scan(smoother_combine, (E, g, L), reverse=True, schedule=schedule,
                                 apply=smoother_apply)
    return ms, Ps, Ps[1:] @ _mT(E[:-1])
