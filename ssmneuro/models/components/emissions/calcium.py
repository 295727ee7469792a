"""Calcium fluorescence emissions with per-neuron indicator decay.

y_tn - gamma_n y_{t-1,n} = softplus(c_n . x_t + d_n) + N(0, sigma_n^2)     for t >= 1,

so y_t given y_{t-1} depends on x_t alone and the posterior over x stays block-tridiagonal. The model
conditions on the first frame y_0 (it adds no term to the likelihood). The fluorescence mean given x is
mu_t = gamma mu_{t-1} + softplus(C x_t + d), started at its stationary value softplus(C x_0 + d) / (1 - gamma).
decays: (N,) gamma_n in [0, 1); noise: (N,) sigma_n^2.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

LOG_2PI = 1.8378770664093453
CLOSED_FORM = False
NOISE_FLOOR = 1e-4


class Params(NamedTuple):
    """weights: (N, D)   biases: (N,)   decays: (N,)   noise: (N,)"""

    weights: Array
    biases: Array
    decays: Array
    noise: Array


def init(key, model, dtype=jnp.float32) -> Params:
    N, D = model.emission_dim, model.latent_dim
    return Params(jax.random.normal(key, (N, D), dtype) / jnp.sqrt(D), jnp.zeros((N,), dtype),
                  jnp.full((N,), 0.9, dtype), jnp.full((N,), 0.1, dtype))


def innovation_mean(params: Params, x) -> Array:
    """softplus(C x + d): (N,) for x (D,), or (T, N) for x (T, D)."""
    return jax.nn.softplus(x @ params.weights.T + params.biases)


def is_elementwise(params: Params) -> bool:
    return True


def pointwise(model, params: Params, eta, y, y_prev, mask) -> Array:
    """(N,) mask_n log N(y_n - gamma_n y_prev_n | softplus(eta_n), sigma_n^2)."""
    r = y - params.decays * y_prev - jax.nn.softplus(eta)
    return mask * (-0.5 * (LOG_2PI + jnp.log(params.noise)) - 0.5 * r**2 / params.noise)


def log_prob(model, params: Params, x, y, y_prev, mask) -> Array:
    """sum_n mask_n log N(y_n - gamma_n y_prev_n | softplus(c_n x + d_n), sigma_n^2)."""
    return jnp.sum(pointwise(model, params, params.weights @ x + params.biases, y, y_prev, mask))


def mean(model, params: Params, x) -> Array:
    """(T, N) E[y_t | x_{0:t}] by the AR(1) recursion."""
    s = innovation_mean(params, x)

    def step(mu, s_t):
        mu = params.decays * mu + s_t
        return mu, mu

    mu0 = s[0] / (1.0 - params.decays)
    _, mus = jax.lax.scan(step, mu0, s[1:])
    return jnp.concatenate([mu0[None], mus], axis=0)


def sample(model, params: Params, key, x) -> Array:
    s = innovation_mean(params, x)
    eps = jnp.sqrt(params.noise) * jax.random.normal(key, s.shape, s.dtype)

    def step(y, inp):
        y = params.decays * y + inp
        return y, y

    y0 = s[0] / (1.0 - params.decays) + eps[0]
    _, ys = jax.lax.scan(step, y0, s[1:] + eps[1:])
    return jnp.concatenate([y0[None], ys], axis=0)


def to_unconstrained(params: Params):
    d = jnp.clip(params.decays, 1e-4, 0.999)
    return params._replace(decays=jnp.log(d) - jnp.log1p(-d),
                           noise=jnp.log(jnp.expm1(jnp.maximum(params.noise - NOISE_FLOOR, 1e-8))))


def from_unconstrained(params: Params) -> Params:
    return params._replace(decays=jax.nn.sigmoid(params.decays),
                           noise=jax.nn.softplus(params.noise) + NOISE_FLOOR)
