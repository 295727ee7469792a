"""Observation models of the GP-SDE, as expected log-likelihoods under q(x_t) = N(m, S).

eta = C x + d, with E[eta] = C m + d and Var[eta_n] = (C S C^T)_nn.
    gaussian:       y_n ~ N(eta_n, R_n)
    poisson:        y_n ~ Poisson(g(eta_n) * bin_size)      counts in bins of width bin_size
    point_process:  the same on the fine grid (bin_size = dt): spike counts (0/1) per grid step,
                    log p = sum_spikes log g(eta(t_i)) - int g(eta(t)) dt, discretised.
    g = exp (closed form: E[exp eta] = exp(E eta + Var eta / 2)) or softplus (1-D Gauss-Hermite).
Masked entries (mask False) contribute nothing.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln

from ssmneuro.models.gp.expectations import expected_softplus_terms

EMISSIONS = ("gaussian", "poisson", "point_process")
LINKS = ("exp", "softplus")


class GPEmissionParams(NamedTuple):
    """weights (N, D), biases (N,), covs (N,) (Gaussian noise variances; ones and unused for counts)."""

    weights: jax.Array
    biases: jax.Array
    covs: jax.Array


def expected_log_likelihood(family, link, params, y, mask, mean, cov, bin_size, num_points=6):
    """E_q(x_t)[log p(y_t | x_t)] for one time step.

    Args:
        y: (N,) observation.  mask: (N,) bool.  mean: (D,).  cov: (D, D).  bin_size: () count exposure.
        num_points: Gauss-Hermite nodes for the softplus link.
    Returns:
        () scalar.
    """
    C, d = params.weights, params.biases
    eta = C @ mean + d
    var = jnp.einsum("nd,de,ne->n", C, cov, C)
    mask = mask.astype(eta.dtype)
    if family == "gaussian":
        R = params.covs
        ll = -0.5 * (jnp.log(2 * jnp.pi * R) + ((y - eta) ** 2 + var) / R)
        return jnp.sum(mask * ll)
    if link == "exp":
        e_rate, e_log_rate = jnp.exp(eta + 0.5 * var), eta
    else:
        e_rate, e_log_rate = expected_softplus_terms(eta, var, num_points)
    ll = y * (e_log_rate + jnp.log(bin_size)) - bin_size * e_rate - gammaln(y + 1.0)
    return jnp.sum(mask * ll)


def rate(link, params, x):
    """Expected observation: C x + d for gaussian, the intensity g(C x + d) for counts. x (..., D)."""
    eta = x @ params.weights.T + params.biases
    if link == "identity":
        return eta
    return jnp.exp(eta) if link == "exp" else jax.nn.softplus(eta)
