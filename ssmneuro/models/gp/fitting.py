"""Variational EM iterations for the GP-SDE: jit-compiled, trials batched with vmap."""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import optax

from ssmneuro.models.fitting.jit import fitting_jit
from ssmneuro.models.gp.variational import (
    collapsed_elbo,
    estep_update,
    has_inputs,
    initial_posterior,
    initial_state_update,
    optimal_input_matrix,
)


@lru_cache(maxsize=16)
def adam(learning_rate):
    """One optax.adam per learning rate, so that repeated fits reuse the compiled M-step."""
    return optax.adam(learning_rate)


@partial(fitting_jit, static_argnums=(0,))
def initial_posteriors(spec, params, trials, latent_means, precision=100.0):
    """Starting q(x) of every trial (vmapped ``initial_posterior``)."""
    return jax.vmap(lambda tr, x: initial_posterior(spec, params, tr, x, precision))(trials, latent_means)


def learnable(params):
    """The hyperparameters climbed by optax: (kernel, emission weights, biases, log noise variances)."""
    em = params.emissions
    return (params.kernel, em.weights, em.biases, jnp.log(em.covs))


def with_learnable(spec, params, theta):
    kernel, weights, biases, log_covs = theta
    covs = jnp.exp(log_covs) if spec.emissions == "gaussian" else params.emissions.covs
    return params._replace(kernel=kernel, emissions=params.emissions._replace(weights=weights, biases=biases, covs=covs))


@partial(fitting_jit, static_argnums=(0, 4))
def estep(spec, params, trials, posts, num_steps, rho):
    """num_steps damped natural-gradient updates of every trial's q(x) (vmapped over trials)."""
    update = jax.vmap(lambda tr, po: estep_update(spec, params, tr, po, rho))

    def body(po, _):
        return update(trials, po), None

    posts, _ = jax.lax.scan(body, posts, None, length=num_steps)
    return posts


@partial(fitting_jit, static_argnums=(0,))
def refresh_drift(spec, params, trials, posts):
    """q(v) at its closed-form optimum and the (collapsed) ELBO."""
    value, drift = collapsed_elbo(spec, params, trials, posts)
    return params._replace(drift=drift), value


@partial(fitting_jit, static_argnums=(0,))
def input_update(spec, params, trials, posts):
    """params with the input matrix B at its closed-form optimum (unchanged without inputs)."""
    if not has_inputs(params, trials.inputs):
        return params
    return params._replace(input_matrix=optimal_input_matrix(spec, params, trials, posts))


@partial(fitting_jit, static_argnums=(0, 5, 6))
def mstep(spec, params, trials, posts, opt_state, optimizer, num_steps):
    """Initial state and input matrix in closed form, then num_steps optax steps on the collapsed ELBO in the
    hyperparameters."""
    mu0, V0 = initial_state_update(posts)
    params = params._replace(initial_mean=mu0, initial_cov=V0)
    params = input_update(spec, params, trials, posts)

    def loss(theta):
        return -collapsed_elbo(spec, with_learnable(spec, params, theta), trials, posts)[0]

    def body(carry, _):
        theta, state = carry
        value, grads = jax.value_and_grad(loss)(theta)
        grads = jax.tree.map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grads)
        updates, state = optimizer.update(grads, state, theta)
        return (optax.apply_updates(theta, updates), state), value

    (theta, opt_state), _ = jax.lax.scan(body, (learnable(params), opt_state), None, length=num_steps)
    return with_learnable(spec, params, theta), opt_state


def all_finite(tree):
    return bool(all(jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)))
