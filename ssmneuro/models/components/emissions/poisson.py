"""Poisson emissions: y_tn ~ Poisson(f(c_n . x_t + d_n) * bin_size), f = exp or softplus (model.link)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

CLOSED_FORM = False


class Params(NamedTuple):
    """weights: (N, D)   biases: (N,)"""

    weights: Array
    biases: Array


def init(key, model, dtype=jnp.float32) -> Params:
    N, D = model.emission_dim, model.latent_dim
    return Params(0.3 * jax.random.normal(key, (N, D), dtype) / jnp.sqrt(D), jnp.zeros((N,), dtype))


def rate(model, eta) -> Array:
    """Expected count per bin: f(eta) * bin_size."""
    f = jnp.exp(eta) if model.link == "exp" else jax.nn.softplus(eta)
    return f * model.bin_size


def log_rate(model, eta) -> Array:
    if model.link == "exp":
        return eta + jnp.log(model.bin_size)
    return jnp.log(jax.nn.softplus(eta) + 1e-12) + jnp.log(model.bin_size)


def is_elementwise(params: Params) -> bool:
    return True


def pointwise(model, params: Params, eta, y, y_prev, mask) -> Array:
    """(N,) mask_n [y log lambda_n - lambda_n - log y!], lambda = f(eta) * bin_size."""
    lp = y * log_rate(model, eta) - rate(model, eta) - jax.scipy.special.gammaln(y + 1.0)
    return mask * lp


def log_prob(model, params: Params, x, y, y_prev, mask) -> Array:
    return jnp.sum(pointwise(model, params, params.weights @ x + params.biases, y, y_prev, mask))


def mean(model, params: Params, x) -> Array:
    return rate(model, x @ params.weights.T + params.biases)


def sample(model, params: Params, key, x) -> Array:
    return jax.random.poisson(key, mean(model, params, x)).astype(x.dtype)


def to_unconstrained(params: Params):
    return params


def from_unconstrained(params: Params) -> Params:
    return params
