"""Bernoulli emissions: y_tn ~ Bernoulli(sigmoid(c_n . x_t + d_n))."""

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
    return Params(jax.random.normal(key, (N, D), dtype) / jnp.sqrt(D), jnp.zeros((N,), dtype))


def is_elementwise(params: Params) -> bool:
    return True


def pointwise(model, params: Params, eta, y, y_prev, mask) -> Array:
    """(N,) mask_n [y eta_n - softplus(eta_n)]."""
    return mask * (y * eta - jax.nn.softplus(eta))


def log_prob(model, params: Params, x, y, y_prev, mask) -> Array:
    return jnp.sum(pointwise(model, params, params.weights @ x + params.biases, y, y_prev, mask))


def mean(model, params: Params, x) -> Array:
    return jax.nn.sigmoid(x @ params.weights.T + params.biases)


def sample(model, params: Params, key, x) -> Array:
    return jax.random.bernoulli(key, mean(model, params, x)).astype(x.dtype)


def to_unconstrained(params: Params):
    return params


def from_unconstrained(params: Params) -> Params:
    return params
