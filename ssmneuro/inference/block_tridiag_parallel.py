"""Block-tridiagonal Gaussian chains by cyclic (odd-even) reduction: O(T D^3) work, O(log T) depth.

Each level eliminates the odd-indexed blocks of a chain x_0..x_{n-1} (n odd; an even-length chain
first gets a decoupled dummy block J = I, h = 0). Conditioning on its two even neighbours,

    x_i | x_{i-1}, x_{i+1} ~ N(J_ii^{-1}(h_i - J_{i,i-1} x_{i-1} - J_{i,i+1} x_{i+1}), J_ii^{-1}),

and the evens keep a block-tridiagonal chain (the Schur complement) of half the length:

    J'_{i-1,i-1} -= J_{i,i-1}^T J_ii^{-1} J_{i,i-1},   J'_{i+1,i+1} -= J_{i+1,i} J_ii^{-1} J_{i+1,i}^T,
    J'_{i+1,i-1}  = -J_{i+1,i} J_ii^{-1} J_{i,i-1},    h'_{i±1} -= J_{i±1,i} J_ii^{-1} h_i.

This is the block Cholesky factorization of J in nested-dissection order, so it is as stable as
Cholesky: every J_ii factored is a diagonal block of a Schur complement of the positive definite J.
Means, marginal and lag-one covariances and samples come back down the levels as affine Gaussian
maps of the neighbours' moments. log det J and h^T J^{-1} h are sums over the eliminated blocks.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssmneuro.inference._chol import chol_inverse, cholesky, mT, solve_triangular, symmetrize, tri_solve, tri_solve_transpose_vec, tri_solve_vec


class _Level(NamedTuple):
    """One elimination level over a chain of odd length n (m = (n-1)/2 eliminated odd blocks).

    chol: (m, D, D) U_i with U_i U_i^T = J_ii (odd i); left: (m, D, D) U_i^{-1} J_{i,i-1};
    right: (m, D, D) U_i^{-1} J_{i+1,i}^T; info: (m, D) U_i^{-1} h_i.
    """

    chol: jax.Array
    left: jax.Array
    right: jax.Array
    info: jax.Array


def _pad_to_odd(J_diag, J_lower, h):
    """Append a decoupled block (J = I, J_lower = 0, h = 0) to an even-length chain."""
    if h.shape[0] % 2 == 1:
        return J_diag, J_lower, h
    D = h.shape[-1]
    J_diag = jnp.concatenate([J_diag, jnp.eye(D, dtype=h.dtype)[None]])
    J_lower = jnp.concatenate([J_lower, jnp.zeros((1, D, D), h.dtype)])
    return J_diag, J_lower, jnp.concatenate([h, jnp.zeros((1, D), h.dtype)])


def _pad_rows(x, length):
    """Zero rows appended up to ``length`` (stand-ins for the decoupled dummy block)."""
    return jnp.concatenate([x, jnp.zeros((length - x.shape[0],) + x.shape[1:], x.dtype)])


def _eliminate_odd(J_diag, J_lower, h):
    """One reduction level: the factors of the odd blocks and the Schur-complement chain of the evens."""
    chol = cholesky(symmetrize(J_diag[1::2]))
    left = tri_solve(chol, J_lower[0::2])
    right = tri_solve(chol, mT(J_lower[1::2]))
    info = tri_solve_vec(chol, h[1::2])
    reduced_diag = J_diag[0::2].at[:-1].add(-mT(left) @ left).at[1:].add(-mT(right) @ right)
    reduced_lower = -mT(right) @ left
    reduced_h = (h[0::2].at[:-1].add(-jnp.einsum("mji,mj->mi", left, info))
                 .at[1:].add(-jnp.einsum("mji,mj->mi", right, info)))
    return _Level(chol, left, right, info), (reduced_diag, reduced_lower, reduced_h)


def _reduce(J_diag, J_lower, h):
    """All levels down to a single block; returns (levels, base chol (D, D), base info (D,), lengths)."""
    levels, lengths = [], []
    while h.shape[0] > 1:
        n = h.shape[0]
        lengths.append(n)
        level, reduced = _eliminate_odd(*_pad_to_odd(J_diag, J_lower, h))
        # the dummy of an even chain stays decoupled (J = I, h = 0): drop it from the reduced chain
        J_diag, J_lower, h = reduced[0][: (n + 1) // 2], reduced[1][: (n - 1) // 2], reduced[2][: (n + 1) // 2]
        levels.append(level)
    chol = cholesky(symmetrize(J_diag[0]))
    return levels, chol, tri_solve_vec(chol, h[0]), lengths


def _interleave(evens, odds, length):
    """evens at 0, 2, 4..., odds at 1, 3, ...; cut to ``length``."""
    out = jnp.zeros((evens.shape[0] + odds.shape[0],) + evens.shape[1:], evens.dtype)
    return out.at[0::2].set(evens).at[1::2].set(odds)[:length]


def _log_det_and_quadratic(levels, base_chol, base_info):
    """log det J = 2 sum log diag U over all eliminated blocks; h^T J^{-1} h = sum |U^{-1} h|^2."""
    chols = [lvl.chol for lvl in levels] + [base_chol[None]]
    infos = [lvl.info for lvl in levels] + [base_info[None]]
    log_det = sum(2.0 * jnp.sum(jnp.log(jnp.diagonal(c, axis1=-2, axis2=-1))) for c in chols)
    quadratic = sum(jnp.sum(z**2) for z in infos)
    return log_det, quadratic


def _back_substitute(levels, base_chol, base_info, lengths, noise=None):
    """x_i = U_i^{-T}(U_i^{-1} h_i + eps_i - U_i^{-1}J_{i,i-1} x_{i-1} - U_i^{-1}J_{i,i+1} x_{i+1}), level by level.

    noise=None gives the mean J^{-1} h; noise = list of per-level eps (m, D) plus the base eps (D,)
    gives an exact sample from N(J^{-1} h, J^{-1}).
    """
    base_noise = 0.0 if noise is None else noise[-1]
    x = tri_solve_transpose_vec(base_chol, base_info + base_noise)[None]
    for k in reversed(range(len(levels))):
        lvl = levels[k]
        eps = 0.0 if noise is None else noise[k]
        x = _pad_rows(x, lvl.info.shape[0] + 1)
        rhs = (lvl.info + eps - jnp.einsum("mij,mj->mi", lvl.left, x[:-1])
               - jnp.einsum("mij,mj->mi", lvl.right, x[1:]))
        x = _interleave(x, tri_solve_transpose_vec(lvl.chol, rhs), lengths[k])
    return x


def _back_substitute_covs(levels, base_chol, lengths):
    """Marginal covariances and Cov(x_{t+1}, x_t) of x_i = K_a x_{i-1} + K_b x_{i+1} + noise(J_ii^{-1}).

    K = [K_a, K_b] = -U_i^{-T} [U_i^{-1}J_{i,i-1}, U_i^{-1}J_{i,i+1}] and, with the neighbours' joint
    covariance S = [[S_aa, S_ab], [S_ba, S_bb]] (S_ba = the reduced chain's lag-one covariance),
        Cov(x_i) = K S K^T + J_ii^{-1},  Cov(x_i, x_{i-1}) = K_a S_aa + K_b S_ba,
        Cov(x_{i+1}, x_i) = S_bb K_b^T + S_ba K_a^T.
    """
    D = base_chol.shape[-1]
    covs = chol_inverse(base_chol)[None]
    cross = jnp.zeros((0, D, D), base_chol.dtype)
    for k in reversed(range(len(levels))):
        lvl = levels[k]
        m = lvl.info.shape[0]
        covs, cross = _pad_rows(covs, m + 1), _pad_rows(cross, m)
        gain_a = -solve_triangular(lvl.chol, lvl.left, lower=True, trans=1)
        gain_b = -solve_triangular(lvl.chol, lvl.right, lower=True, trans=1)
        S_aa, S_bb, S_ba = covs[:-1], covs[1:], cross
        gain = jnp.concatenate([gain_a, gain_b], axis=-1)
        joint = jnp.concatenate([jnp.concatenate([S_aa, mT(S_ba)], -1), jnp.concatenate([S_ba, S_bb], -1)], -2)
        odd_covs = symmetrize(gain @ joint @ mT(gain) + chol_inverse(lvl.chol))
        cross_left = gain_a @ S_aa + gain_b @ S_ba
        cross_right = S_bb @ mT(gain_b) + S_ba @ mT(gain_a)
        n = lengths[k]
        covs = _interleave(covs, odd_covs, n)
        cross = _interleave(cross_left, cross_right, n - 1)
    return covs, cross


def posterior_parallel(J_diag, J_lower, h):
    """(means (T, D), covs (T, D, D), cross_covs (T-1, D, D), log det J, h^T J^{-1} h) by cyclic reduction."""
    levels, base_chol, base_info, lengths = _reduce(J_diag, J_lower, h)
    means = _back_substitute(levels, base_chol, base_info, lengths)
    covs, cross = _back_substitute_covs(levels, base_chol, lengths)
    log_det, quadratic = _log_det_and_quadratic(levels, base_chol, base_info)
    return means, covs, cross, log_det, quadratic


def solve_parallel(J_diag, J_lower, rhs):
    """J^{-1} rhs (T, D) by cyclic reduction."""
    levels, base_chol, base_info, lengths = _reduce(J_diag, J_lower, rhs)
    return _back_substitute(levels, base_chol, base_info, lengths)


def sample_parallel(J_diag, J_lower, h, eps):
    """Samples (..., T, D) from N(J^{-1} h, J^{-1}) given standard normal eps (..., T, D)."""
    levels, base_chol, base_info, lengths = _reduce(J_diag, J_lower, h)

    def one(eps_one):
        noise = _route_noise(eps_one, lengths)
        return _back_substitute(levels, base_chol, base_info, lengths, noise)

    batch_shape = eps.shape[:-2]
    flat = eps.reshape((-1,) + eps.shape[-2:])
    return jax.vmap(one)(flat).reshape(batch_shape + eps.shape[-2:])


def _route_noise(eps, lengths):
    """Split eps (T, D) into one independent normal per eliminated block: per level (m, D), then base (D,)."""
    noise = []
    for _ in lengths:
        noise.append(eps[1::2])
        eps = eps[0::2]
    noise.append(eps[0])
    return noise
