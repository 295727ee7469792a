"""Gaussian chains in information form: a block-tridiagonal precision matrix.

The density over x = (x_1, ..., x_T), each x_t in R^D, is

    p(x) ∝ exp(-1/2 x^T J x + h^T x),

with J block-tridiagonal and positive definite: diagonal blocks ``J_diag[t]`` = J_{t,t} (T, D, D) and
lower blocks ``J_lower[t]`` = J_{t+1,t} (T-1, D, D) (so J_{t,t+1} = J_lower[t]^T). Laplace-EM for
non-Gaussian observations needs its mean (a Newton step), marginal and lag-one covariances,
log-determinant and samples.

Two evaluations, both block Cholesky factorizations of J (as stable as Cholesky; only triangular
solves with Cholesky factors, no explicit inverse), agreeing to rounding:

- ``parallel=False``: a forward ``lax.scan`` over the Schur complements
      P_1 = J_11,   P_{t+1} = J_{t+1,t+1} - J_{t+1,t} P_t^{-1} J_{t+1,t}^T,
      eta_1 = h_1,  eta_{t+1} = h_{t+1} - J_{t+1,t} P_t^{-1} eta_t,      (U_t U_t^T = P_t)
  then a reverse scan over x_t | x_{t+1} ~ N(P_t^{-1}(eta_t - J_{t+1,t}^T x_{t+1}), P_t^{-1}):
      m_t = b_t - G_t m_{t+1},  Sigma_t = P_t^{-1} + G_t Sigma_{t+1} G_t^T,
      Cov(x_{t+1}, x_t) = -Sigma_{t+1} G_t^T,  G_t = P_t^{-1} J_{t+1,t}^T,  b_t = P_t^{-1} eta_t;
  log det J = sum_t log det P_t and h^T J^{-1} h = sum_t |U_t^{-1} eta_t|^2.
- ``parallel=True``: cyclic (odd-even) reduction, O(log T) depth (``block_tridiag_parallel``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssmneuro.inference import block_tridiag_parallel
from ssmneuro.inference._chol import (chol_inverse, cholesky, cholesky_and_solve, matmul, mT, solve_triangular,
                                      symmetrize, tri_solve_transpose_vec, tri_solve_vec)


class BlockTridiagPosterior(NamedTuple):
    """Moments of the Gaussian ∝ exp(-1/2 x^T J x + h^T x) with block-tridiagonal J.

    Fields:
        means: (T, D) E[x_t] (= J^{-1} h).
        covs: (T, D, D) Cov(x_t).
        cross_covs: (T-1, D, D) Cov(x_{t+1}, x_t).
        log_det_precision: () log det J.
        log_normalizer: () log ∫ exp(-1/2 x^T J x + h^T x) dx
            = 1/2 h^T J^{-1} h - 1/2 log det J + T D / 2 log 2π.
    """

    means: jax.Array
    covs: jax.Array
    cross_covs: jax.Array
    log_det_precision: jax.Array
    log_normalizer: jax.Array


class _ForwardMessages(NamedTuple):
    """The block Cholesky factor of J.  chol_precisions: (T, D, D) lower U_t with U_t U_t^T = P_t;
    whitened_info: (T, D) v_t = U_t^{-1} eta_t; whitened_cross: (T-1, D, D) W_t^T = J_{t+1,t} U_t^{-T}."""

    chol_precisions: jax.Array
    whitened_info: jax.Array
    whitened_cross: jax.Array


def _forward(J_diag, J_lower, h):
    """P_{t+1} = J_{t+1,t+1} - W_t^T W_t and eta_{t+1} = h_{t+1} - W_t^T v_t, where U_t, W_t = U_t^{-1} J_{t+1,t}^T
    and v_t = U_t^{-1} eta_t come out of one fused pass (``cholesky_and_solve``) per step."""
    D = h.shape[-1]

    def step(carry, inputs):
        P, eta = carry
        J_cross, J_next, h_next = inputs
        chol, solved = cholesky_and_solve(symmetrize(P), jnp.concatenate([J_cross, eta[None]], 0))
        Wt, v = solved[:D], solved[D]
        return (J_next - matmul(Wt, mT(Wt)), h_next - matmul(Wt, v)), (chol, v, Wt)

    (P_last, eta_last), (chols, vs, Wts) = jax.lax.scan(step, (J_diag[0], h[0]), (J_lower, J_diag[1:], h[1:]))
    chol_last = cholesky(symmetrize(P_last))
    v_last = tri_solve_vec(chol_last, eta_last)
    return _ForwardMessages(jnp.concatenate([chols, chol_last[None]]), jnp.concatenate([vs, v_last[None]]), Wts)


def _backward_gains(messages):
    """G_t = P_t^{-1} J_{t+1,t}^T = U_t^{-T} W_t (T, D, D), with G_T = 0, and b_t = P_t^{-1} eta_t = U_t^{-T} v_t
    (T, D); batched triangular solves outside any loop."""
    chols, vs, Wts = messages
    transpose_solve = lambda U, B: solve_triangular(U, B, lower=True, trans=1)
    gains = jnp.concatenate([transpose_solve(chols[:-1], mT(Wts)), jnp.zeros_like(chols[:1])])
    return gains, tri_solve_transpose_vec(chols, vs)


def _backward_affine(gains, offsets):
    """x_t = b_t - G_t x_{t+1} (reverse scan), x_T = b_T."""

    def step(x_next, inputs):
        G, b = inputs
        x = b - matmul(G, x_next)
        return x, x

    _, x = jax.lax.scan(step, jnp.zeros_like(offsets[0]), (gains, offsets), reverse=True)
    return x


def _backward_covs(gains, chols):
    """Sigma_t = P_t^{-1} + G_t Sigma_{t+1} G_t^T (reverse scan)."""

    def step(cov_next, inputs):
        G, Q = inputs
        cov = symmetrize(Q + matmul(matmul(G, cov_next), mT(G)))
        return cov, cov

    _, covs = jax.lax.scan(step, jnp.zeros_like(chols[0]), (gains, chol_inverse(chols)), reverse=True)
    return covs


def _log_det_and_quadratic(messages):
    log_det = 2.0 * jnp.sum(jnp.log(jnp.diagonal(messages.chol_precisions, axis1=-2, axis2=-1)))
    return log_det, jnp.sum(messages.whitened_info ** 2)


def _posterior_sequential(J_diag, J_lower, h):
    messages = _forward(J_diag, J_lower, h)
    gains, offsets = _backward_gains(messages)
    means = _backward_affine(gains, offsets)
    covs = _backward_covs(gains, messages.chol_precisions)
    cross_covs = -matmul(covs[1:], mT(gains[:-1]))
    return (means, covs, cross_covs) + _log_det_and_quadratic(messages)


def _solve_sequential(J_diag, J_lower, rhs):
    return _backward_affine(*_backward_gains(_forward(J_diag, J_lower, rhs)))


def _sample_sequential(J_diag, J_lower, h, eps):
    """x_t = b_t - G_t x_{t+1} + U_t^{-T} eps_t; eps (..., T, D)."""
    messages = _forward(J_diag, J_lower, h)
    gains, offsets = _backward_gains(messages)
    noise = tri_solve_transpose_vec(messages.chol_precisions, eps)
    flat = noise.reshape((-1,) + h.shape)
    samples = jax.vmap(lambda n: _backward_affine(gains, offsets + n))(flat)
    return samples.reshape(eps.shape)


def _posterior(J_diag, J_lower, h, parallel):
    T, D = h.shape
    compute = block_tridiag_parallel.posterior_parallel if parallel else _posterior_sequential
    means, covs, cross_covs, log_det, quadratic = compute(J_diag, J_lower, h)
    log_normalizer = 0.5 * quadratic - 0.5 * log_det + 0.5 * T * D * math.log(2 * math.pi)
    return BlockTridiagPosterior(means, covs, cross_covs, log_det, log_normalizer)


def _solve(J_diag, J_lower, rhs, parallel):
    return (block_tridiag_parallel.solve_parallel if parallel else _solve_sequential)(J_diag, J_lower, rhs)


def _sample(key, J_diag, J_lower, h, num_samples, parallel):
    shape = h.shape if num_samples is None else (num_samples,) + h.shape
    eps = jax.random.normal(key, shape, dtype=h.dtype)
    return (block_tridiag_parallel.sample_parallel if parallel else _sample_sequential)(J_diag, J_lower, h, eps)


_posterior_jit = jax.jit(_posterior, static_argnames="parallel")
_solve_jit = jax.jit(_solve, static_argnames="parallel")
_sample_jit = jax.jit(_sample, static_argnames=("num_samples", "parallel"))


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def _is_concrete(*arrays):
    return not any(isinstance(x, jax.core.Tracer) for x in arrays)


def _check_inputs(J_diag, J_lower, h, name="h"):
    J_diag, J_lower, h = jnp.asarray(J_diag), jnp.asarray(J_lower), jnp.asarray(h)
    if h.ndim != 2:
        raise ValueError(f"{name} must have shape (T, D); got {h.shape}.")
    T, D = h.shape
    if T < 1:
        raise ValueError(f"{name} must have at least one time step; got shape {h.shape}.")
    if J_diag.shape != (T, D, D):
        raise ValueError(f"J_diag must have shape (T, D, D) = {(T, D, D)} to match {name}; got {J_diag.shape}.")
    if J_lower.shape != (T - 1, D, D):
        raise ValueError(f"J_lower must have shape (T-1, D, D) = {(T - 1, D, D)}; got {J_lower.shape}.")
    dtype = jnp.result_type(J_diag, J_lower, h, jnp.float32)
    J_diag, J_lower, h = J_diag.astype(dtype), J_lower.astype(dtype), h.astype(dtype)
    if _is_concrete(J_diag, J_lower, h):
        for label, x in (("J_diag", J_diag), ("J_lower", J_lower), (name, h)):
            if not bool(jnp.all(jnp.isfinite(x))):
                raise ValueError(f"{label} contains NaN or inf.")
    return J_diag, J_lower, h


def _check_positive_definite(log_det, J_diag):
    if _is_concrete(log_det, J_diag) and not bool(jnp.isfinite(log_det)):
        raise ValueError(
            "The block-tridiagonal precision J is not positive definite (a Cholesky factor failed); "
            "check the signs of J_diag / J_lower or add a small multiple of the identity to J_diag."
        )


def block_tridiag_posterior(J_diag, J_lower, h, parallel=False):
    """Mean, marginal and lag-one covariances, log det J and log normalizer of exp(-1/2 x^T J x + h^T x).

    Args:
        J_diag: (T, D, D) diagonal blocks J_{t,t} (symmetric).
        J_lower: (T-1, D, D) lower blocks, J_lower[t] = J_{t+1,t}.
        h: (T, D) linear term.
        parallel: cyclic reduction (O(log T) depth) instead of sequential ``lax.scan`` loops.

    Returns:
        BlockTridiagPosterior(means (T, D), covs (T, D, D), cross_covs (T-1, D, D) = Cov(x_{t+1}, x_t),
        log_det_precision (), log_normalizer ()).

    Raises:
        ValueError: wrong shapes, NaN/inf entries, or (for concrete inputs) J not positive definite.
    """
    J_diag, J_lower, h = _check_inputs(J_diag, J_lower, h)
    posterior = _posterior_jit(J_diag, J_lower, h, parallel=bool(parallel))
    _check_positive_definite(posterior.log_det_precision, J_diag)
    return posterior


def block_tridiag_solve(J_diag, J_lower, rhs, parallel=False):
    """Solve J x = rhs for block-tridiagonal positive definite J (e.g. a Newton step).

    Args:
        J_diag: (T, D, D), J_lower: (T-1, D, D) as in ``block_tridiag_posterior``.
        rhs: (T, D).
        parallel: cyclic reduction (O(log T) depth) instead of sequential loops.

    Returns:
        (T, D) J^{-1} rhs.
    """
    J_diag, J_lower, rhs = _check_inputs(J_diag, J_lower, rhs, name="rhs")
    solution = _solve_jit(J_diag, J_lower, rhs, parallel=bool(parallel))
    if _is_concrete(solution) and not bool(jnp.all(jnp.isfinite(solution))):
        _check_positive_definite(jnp.asarray(jnp.nan), J_diag)
    return solution


def block_tridiag_sample(key, J_diag, J_lower, h, num_samples=None, parallel=False):
    """Exact samples from N(J^{-1} h, J^{-1}).

    x = J^{-1} h + R^{-T} eps with J = R R^T the block Cholesky factorization (sequential: backward
    sampling x_t = b_t - G_t x_{t+1} + U_t^{-T} eps_t; parallel: the same in odd-even order), eps ~ N(0, I).
    The two orders use the noise differently, so one key gives different (equally exact) samples.

    Args:
        key: a ``jax.random`` key.
        J_diag: (T, D, D), J_lower: (T-1, D, D), h: (T, D) as in ``block_tridiag_posterior``.
        num_samples: None for one sample, else the number of samples S.
        parallel: cyclic reduction (O(log T) depth) instead of sequential loops.

    Returns:
        (T, D) or (S, T, D) samples.
    """
    J_diag, J_lower, h = _check_inputs(J_diag, J_lower, h)
    samples = _sample_jit(key, J_diag, J_lower, h, num_samples=num_samples, parallel=bool(parallel))
    if _is_concrete(samples) and not bool(jnp.all(jnp.isfinite(samples))):
        _check_positive_definite(jnp.asarray(jnp.nan), J_diag)
    return samples
