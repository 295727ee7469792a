"""Emission families p(y_t | x_t) (calcium: p(y_t | x_t, y_{t-1})), chosen by name.

Each family module provides: ``Params`` (NamedTuple with weights (N, D) and biases (N,)),
``init(key, model, dtype)``, ``log_prob(model, params, x (D,), y (N,), y_prev (N,), mask (N,)) -> ()``,
``mean(model, params, x (T, D)) -> (T, N)``, ``sample(model, params, key, x (T, D)) -> (T, N)``,
``to_unconstrained`` / ``from_unconstrained`` (for the optimiser M-step) and ``CLOSED_FORM`` (bool).
"""

import jax
import jax.numpy as jnp

from ssmneuro.models.components.emissions import bernoulli, calcium, gaussian, poisson

FAMILIES = {"gaussian": gaussian, "poisson": poisson, "bernoulli": bernoulli, "calcium": calcium}


def family(name: str):
    """The module implementing emission family ``name``."""
    if name not in FAMILIES:
        raise ValueError(f"emissions={name!r} is not known; choose one of {tuple(FAMILIES)}")
    return FAMILIES[name]


def value_and_hessian(model, params, x, y, y_prev, mask):
    """(log p(y_t | x_t), its (D, D) Hessian in x_t) for one step.

    Families whose log-density is a sum over neurons of a function of eta_n = c_n . x + d_n get
    H = C^T diag(d^2/deta^2) C from elementwise derivatives; others use jax.hessian.
    """
    em = family(model.emissions)
    if em.is_elementwise(params):
        eta = params.weights @ x + params.biases
        f = lambda e: jnp.sum(em.pointwise(model, params, e, y, y_prev, mask))
        value = f(eta)
        curvature = jax.grad(lambda e: jnp.sum(jax.grad(f)(e)))(eta)
        return value, params.weights.T @ (curvature[:, None] * params.weights)
    g = lambda z: em.log_prob(model, params, z, y, y_prev, mask)
    return g(x), jax.hessian(g)(x)


def expected_log_prob(model, params, mean, cov, y, y_prev, mask):
    """E_q[log p(y_t | x_t)] ~ log p(y_t | m) + 1/2 tr(H(m) S) for q(x_t) = N(m, S) (exact if Gaussian)."""
    value, H = value_and_hessian(model, params, mean, y, y_prev, mask)
    return value + 0.5 * jnp.sum(H * cov)
