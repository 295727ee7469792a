"""Gaussian emissions: y_t = C x_t + d + N(0, R), R diagonal (covs (N,)) or full (covs (N, N))."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ssmneuro.inference._chol import cholesky, solve_triangular

LOG_2PI = 1.8378770664093453
CLOSED_FORM = True


class Params(NamedTuple):
    """weights: (N, D)   biases: (N,)   covs: (N,) diagonal or (N, N) full."""

    weights: Array
    biases: Array
    covs: Array


def init(key, model, dtype=jnp.float32) -> Params:
    N, D = model.emission_dim, model.latent_dim
    C = jax.random.normal(key, (N, D), dtype) / jnp.sqrt(D)
    covs = jnp.full((N,), 0.1, dtype) if model.emission_cov == "diagonal" else 0.1 * jnp.eye(N, dtype=dtype)
    return Params(C, jnp.zeros((N,), dtype), covs)


def is_elementwise(params: Params) -> bool:
    return params.covs.ndim == 1


def pointwise(model, params: Params, eta, y, y_prev, mask) -> Array:
    """(N,) mask_n log N(y_n | eta_n, r_n), eta = C x + d (diagonal R only)."""
    r = (y - eta) * mask
    return mask * (-0.5 * (LOG_2PI + jnp.log(params.covs)) - 0.5 * r**2 / params.covs)


def log_prob(model, params: Params, x, y, y_prev, mask) -> Array:
    """sum over observed n of log N(y | C x + d, R) (marginal over the observed entries for full R)."""
    if params.covs.ndim == 1:
        return jnp.sum(pointwise(model, params, params.weights @ x + params.biases, y, y_prev, mask))
    r = (y - params.weights @ x - params.biases) * mask
    # full R: restrict to observed entries by replacing masked rows/cols with the identity
    both = mask[:, None] * mask[None, :]
    cov = params.covs * both + jnp.diag(1.0 - mask)
    L = cholesky(cov)
    z = solve_triangular(L, r, lower=True)
    return -0.5 * jnp.sum(mask) * LOG_2PI - 0.5 * jnp.sum(z * z) - jnp.sum(jnp.log(jnp.diagonal(L)))


def mean(model, params: Params, x) -> Array:
    return x @ params.weights.T + params.biases


def sample(model, params: Params, key, x) -> Array:
    mu = mean(model, params, x)
    if params.covs.ndim == 1:
        return mu + jnp.sqrt(params.covs) * jax.random.normal(key, mu.shape, mu.dtype)
    L = cholesky(params.covs)
    return mu + jax.random.normal(key, mu.shape, mu.dtype) @ L.T


def to_unconstrained(params: Params):
    return params


def from_unconstrained(params: Params) -> Params:
    return params
