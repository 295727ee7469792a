"""Linear-Gaussian state space models: Kalman filter, smoother and posterior sampling.

Model (t = 1..T, entries of time-varying arrays indexed from 0):
    x_1 ~ N(m_0, S_0)
    x_{t+1} = A_t x_t + B_t u_t + b_t + N(0, Q_t)          (dynamics entry t maps x_t -> x_{t+1})
    y_t     = C_t x_t + D_t u_t + d_t + N(0, R_t)

Every function has ``parallel=False`` (a ``lax.scan``, O(T) depth) and ``parallel=True`` (associative
scans after Sarkka & Garcia-Fernandez 2021) giving the same numbers. The scans run under the schedule
``scan.schedule_for`` picks: ``"tree"`` (O(log T) depth) off the CPU, ``"blocked"`` (O(sqrt T) depth) on it,
where the tree takes minutes to compile (D = 8, T = 10^4: 235 s against 20 s) and runs no faster; pass
``parallel="tree"`` or ``"blocked"`` to choose.

Paths. The emissions are folded into information terms J_t = C^T R^-1 C, h_t = C^T R^-1 (y_t - d_t - D u_t)
before the recursion, so each step costs O(D^3) whatever N (the fast path for many neurons, few latents).
This is used whenever R is diagonal (``emission_cov`` given as (N,) or (T, N) variances) or a static full
(N, N) matrix without a mask (whitened once), except that the sequential filter takes the covariance form
(O(N^3 + N D^2) per step) when N <= D, where it is cheaper, and for a full R with a mask or a time-varying
full R; in parallel those are whitened per step. The sequential smoother is the modified Bryson-Frazier
recursion (no matrix inverse), fed by either form. Missing data: ``mask`` (T, N), True = observed; a partly
observed row uses only its observed entries (NaN at unobserved entries is fine), a fully unobserved row is a
pure prediction step adding 0 to the log-likelihood, so trials padded at the end with mask=False give exactly
the unpadded answer.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from ssmneuro.inference import checks
from ssmneuro.inference._chol import psd_factor
from ssmneuro.inference.lgssm_parallel import parallel_filter, parallel_smoother
from ssmneuro.inference.lgssm_sequential import sequential_filter, sequential_smoother
from ssmneuro.inference.lgssm_terms import (at, covariance_smoother_terms, covariance_update, dynamics_terms,
                                            emission_info, emission_offsets, information_smoother_terms,
                                            information_update, is_diagonal_cov, smoother_elements)
from ssmneuro.inference.scan import dense_scan, schedule_for


class LGSSMParams(NamedTuple):
    """Parameters of a linear-Gaussian SSM (D latents, N emissions, U inputs, T steps).

    initial_mean (D,), initial_cov (D, D): x_1 ~ N(m_0, S_0).
    dynamics_matrix (D, D) | (T-1, D, D), dynamics_bias (D,) | (T-1, D), dynamics_cov (D, D) | (T-1, D, D):
        entry t maps x_t -> x_{t+1}; a leading axis of length T is also accepted (last entry ignored).
    emission_matrix (N, D) | (T, N, D), emission_bias (N,) | (T, N),
    emission_cov (N, N) | (N,) diagonal | (T, N, N) | (T, N) diagonal (a square 2-D array is full (N, N)).
    dynamics_input_matrix None | (D, U) | (T-1, D, U);  emission_input_matrix None | (N, U) | (T, N, U).
    """

    initial_mean: jax.Array
    initial_cov: jax.Array
    dynamics_matrix: jax.Array
    dynamics_bias: jax.Array
    dynamics_cov: jax.Array
    emission_matrix: jax.Array
    emission_bias: jax.Array
    emission_cov: jax.Array
    dynamics_input_matrix: Optional[jax.Array] = None
    emission_input_matrix: Optional[jax.Array] = None


class LGSSMFiltered(NamedTuple):
    """log_likelihood () = log p(y_{1:T}); filtered_* = p(x_t | y_{1:t}) (T, D), (T, D, D);
    predicted_* = p(x_t | y_{1:t-1}) (T, D), (T, D, D) (predicted_*[0] is the prior of x_1)."""

    log_likelihood: jax.Array
    filtered_means: jax.Array
    filtered_covs: jax.Array
    predicted_means: jax.Array
    predicted_covs: jax.Array


class LGSSMPosterior(NamedTuple):
    """Filter outputs plus smoothed_means (T, D), smoothed_covs (T, D, D) = p(x_t | y_{1:T}) and
    smoothed_cross_covs (T-1, D, D) with entry t = Cov(x_{t+1}, x_t | y_{1:T})."""

    log_likelihood: jax.Array
    filtered_means: jax.Array
    filtered_covs: jax.Array
    smoothed_means: jax.Array
    smoothed_covs: jax.Array
    smoothed_cross_covs: jax.Array
    predicted_means: jax.Array
    predicted_covs: jax.Array


# ----------------------------------------------------------------------------- validation
def _as_arrays(params, emissions, inputs, mask):
    params = LGSSMParams(*(None if p is None else jnp.asarray(p) for p in params))
    emissions = jnp.asarray(emissions)
    if not jnp.issubdtype(emissions.dtype, jnp.floating):
        emissions = emissions.astype(params.initial_mean.dtype)
    inputs = None if inputs is None else jnp.asarray(inputs, emissions.dtype)
    mask = None if mask is None else jnp.asarray(mask)
    return params, emissions, inputs, mask


def validate(params: LGSSMParams, emissions, inputs=None, mask=None) -> None:
    """Raise ValueError naming the problem: shapes always; values (NaN/inf, PSD) for concrete arrays."""
    checks.check_ndim("emissions", emissions, (2,))
    T, N = emissions.shape
    checks.check_ndim("initial_mean", params.initial_mean, (1,))
    D = params.initial_mean.shape[0]
    tv = lambda *s: ((T - 1,) + s, (T,) + s)
    checks.check_shape("initial_cov", params.initial_cov, (D, D))
    checks.check_shape("dynamics_matrix", params.dynamics_matrix, (D, D), *tv(D, D))
    checks.check_shape("dynamics_bias", params.dynamics_bias, (D,), *tv(D))
    checks.check_shape("dynamics_cov", params.dynamics_cov, (D, D), *tv(D, D))
    checks.check_shape("emission_matrix", params.emission_matrix, (N, D), (T, N, D),
                       hint=f"(emissions are {T} x {N}, the latent dimension is {D})")
    checks.check_shape("emission_bias", params.emission_bias, (N,), (T, N))
    checks.check_shape("emission_cov", params.emission_cov, (N,), (N, N), (T, N), (T, N, N))
    B, Dm = params.dynamics_input_matrix, params.emission_input_matrix
    if B is not None or Dm is not None:
        if inputs is None:
            raise ValueError("the params have input matrices but inputs=None; pass inputs of shape (T, U).")
        checks.check_ndim("inputs", inputs, (2,))
        U = inputs.shape[1]
        checks.check_shape("inputs", inputs, (T, U), hint="inputs must have one row per time step.")
        if B is not None:
            checks.check_shape("dynamics_input_matrix", B, (D, U), *tv(D, U))
        if Dm is not None:
            checks.check_shape("emission_input_matrix", Dm, (N, U), (T, N, U))
    if mask is not None:
        checks.check_shape("mask", mask, (T, N), hint="mask must match the emissions (True = observed).")
    if not checks.is_concrete(params, emissions, inputs, mask):
        return
    checks.check_finite("emissions", emissions, mask,
                        hint="Mark missing entries with mask=... (False = unobserved) instead of NaN.")
    if inputs is not None:
        checks.check_finite("inputs", inputs)
    for name in ("initial_mean", "dynamics_matrix", "dynamics_bias", "emission_matrix", "emission_bias"):
        checks.check_finite(name, getattr(params, name))
    checks.check_psd("initial_cov", params.initial_cov, strict=True)
    checks.check_psd("dynamics_cov", params.dynamics_cov, strict=True)
    if is_diagonal_cov(params.emission_cov, N):
        checks.check_positive("emission_cov", params.emission_cov)
    else:
        checks.check_psd("emission_cov", params.emission_cov, strict=True)


def _prepare(params, emissions, inputs, mask):
    params, emissions, inputs, mask = _as_arrays(params, emissions, inputs, mask)
    validate(params, emissions, inputs, mask)
    return params, emissions, inputs, None if mask is None else mask.astype(bool)


# ----------------------------------------------------------------------------- cores
def _use_information_form(params, emissions, mask, parallel):
    """Parallel: always. Sequential: when N > D (then the O(D^3) steps win) and R is diagonal or a static
    full matrix without mask (whitened once); otherwise the covariance form."""
    R = params.emission_cov
    N, D = emissions.shape[1], params.initial_mean.shape[0]
    if parallel:
        return True
    return N > D and (is_diagonal_cov(R, N) or (R.ndim == 2 and mask is None))


def _run_filter(params, emissions, inputs, mask, parallel, form):
    """Returns (LGSSMFiltered, Dynamics, (G^T, Omega, omega)): the last are the sequential smoother's terms
    (``lgssm_sequential.sequential_smoother``), None when parallel."""
    T = emissions.shape[0]
    dyn = dynamics_terms(params, inputs, T)
    m0, S0 = params.initial_mean, params.initial_cov
    if form is None:
        form = "information" if _use_information_form(params, emissions, mask, parallel) else "covariance"
    if form == "information":
        info = emission_info(params, emissions, inputs, mask)
        if parallel:
            out = parallel_filter(m0, S0, dyn, info, schedule=parallel)
        else:
            J, h, c = info
            update = lambda m, P, t: (*information_update(m, P, at(J, t, 2), h[t], c[t]), ())
            out = sequential_filter(m0, S0, dyn, update, T)
    else:
        if parallel:
            raise ValueError("the covariance form is sequential only")
        r = emission_offsets(params, emissions, inputs, mask)
        obs = jnp.ones_like(r) if mask is None else mask.astype(r.dtype)
        C, R = params.emission_matrix, params.emission_cov
        if is_diagonal_cov(R, r.shape[1]):
            R = jnp.diag(R) if R.ndim == 1 else jax.vmap(jnp.diag)(R)
        update = lambda m, P, t: covariance_update(m, P, at(C, t, 2), at(R, t, 2), r[t], obs[t])
        out = sequential_filter(m0, S0, dyn, update, T)
    log_liks, mf, Pf, mp, Pp = out[:5]
    filtered = LGSSMFiltered(jnp.sum(log_liks), mf, Pf, mp, Pp)
    if parallel:
        terms = None
    elif form == "information":
        terms = information_smoother_terms(info, mp, Pf, dyn.matrix)
    else:
        terms = covariance_smoother_terms(*out[5], dyn.matrix)
    return filtered, dyn, terms


@partial(jax.jit, static_argnames=("parallel", "form"))
def _filter(params, emissions, inputs, mask, parallel, form=None):
    return _run_filter(params, emissions, inputs, mask, parallel, form)[0]


@partial(jax.jit, static_argnames=("parallel", "form"))
def _smoother(params, emissions, inputs, mask, parallel, form=None):
    filtered, dyn, terms = _run_filter(params, emissions, inputs, mask, parallel, form)
    if parallel:
        ms, Ps, cross = parallel_smoother(*smoother_elements(filtered.filtered_means, filtered.filtered_covs, dyn),
                                          schedule=parallel)
    else:
        ms, Ps, cross = sequential_smoother(filtered.filtered_means, filtered.filtered_covs, dyn, *terms)
    return LGSSMPosterior(filtered.log_likelihood, filtered.filtered_means, filtered.filtered_covs,
                          ms, Ps, cross, filtered.predicted_means, filtered.predicted_covs)


@partial(jax.jit, static_argnames=("parallel", "num_samples", "form"))
def _sample(key, params, emissions, inputs, mask, parallel, num_samples, form=None):
    filtered, dyn, _ = _run_filter(params, emissions, inputs, mask, parallel, form)
    E, g, L = smoother_elements(filtered.filtered_means, filtered.filtered_covs, dyn)
    roots = psd_factor(L)

    def one(k):
        noise = jnp.einsum("tij,tj->ti", roots, jax.random.normal(k, g.shape, g.dtype))
        return dense_scan(E, g + noise, reverse=True, parallel=parallel is not None)

    if num_samples is None:
        return one(key)
    return jax.vmap(one)(jax.random.split(key, num_samples))


# ----------------------------------------------------------------------------- public API
def kalman_filter(params: LGSSMParams, emissions, inputs=None, mask=None, parallel: bool | str = False
                  ) -> LGSSMFiltered:
    """Filter: p(x_t | y_{1:t}) for all t and log p(y_{1:T}).

    Args:
        params: ``LGSSMParams``.
        emissions: (T, N) observations y_t.
        inputs: (T, U) inputs u_t or None.
        mask: (T, N) bool, True = observed, or None (all observed).
        parallel: ``lax.scan`` (False) or associative scan: True for the device's default schedule
            (``"blocked"`` on the CPU, ``"tree"`` elsewhere; see ``scan.schedule_for``), or either by name.
    Returns:
        ``LGSSMFiltered``: log_likelihood = sum_t log N(y_t; C m^-_t + d_t, C P^-_t C^T + R_t) (observed
        entries only), filtered means/covs, predicted means/covs.
    """
    params, emissions, inputs, mask = _prepare(params, emissions, inputs, mask)
    return _filter(params, emissions, inputs, mask, schedule_for(parallel))


def kalman_smoother(params: LGSSMParams, emissions, inputs=None, mask=None, parallel: bool | str = False
                    ) -> LGSSMPosterior:
    """Smoother (Rauch-Tung-Striebel): p(x_t | y_{1:T}) and Cov(x_{t+1}, x_t | y_{1:T}).

    Backward kernels x_t | x_{t+1}, y_{1:t} ~ N(E_t x_{t+1} + g_t, L_t), E_t = P^f_t A_t^T (P^-_{t+1})^{-1}:
    m^s_t = m^f_t + E_t (m^s_{t+1} - m^-_{t+1}),  P^s_t = E_t P^s_{t+1} E_t^T + L_t,
    smoothed_cross_covs[t] = P^s_{t+1} E_t^T.  Arguments as ``kalman_filter``; returns ``LGSSMPosterior``.
    (The sequential path computes the same posterior by the modified Bryson-Frazier recursion, which needs no
    inverse of P^-_{t+1}: see ``lgssm_sequential.sequential_smoother``.)
    """
    params, emissions, inputs, mask = _prepare(params, emissions, inputs, mask)
    return _smoother(params, emissions, inputs, mask, schedule_for(parallel))


def kalman_posterior_sample(key, params: LGSSMParams, emissions, inputs=None, mask=None,
                            parallel: bool | str = False, num_samples: Optional[int] = None):
    """Draw x_{1:T} ~ p(x_{1:T} | y_{1:T}) by forward filtering, backward sampling.

    x_T ~ N(m^f_T, P^f_T), then x_t = E_t x_{t+1} + g_t + L_t^{1/2} eps_t: a linear recurrence, run by
    ``dense_scan`` sequentially or as an associative scan. Returns (T, D), or (num_samples, T, D).
    """
    params, emissions, inputs, mask = _prepare(params, emissions, inputs, mask)
    return _sample(key, params, emissions, inputs, mask, schedule_for(parallel), num_samples)
