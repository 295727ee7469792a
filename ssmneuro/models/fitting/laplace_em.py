"""Laplace-EM iterations: the E-step of fitting/estep.py vmapped over the trials of each padded bucket,
then the M-step of fitting/mstep.py, all in ONE jit-compiled function per model."""

from functools import partial

import jax
import jax.numpy as jnp

from ssmneuro.models.fitting import mstep
from ssmneuro.models.fitting.estep import StepData, e_step
from ssmneuro.models.fitting.jit import fitting_jit
from ssmneuro.models.params import SLDSParams


def m_step(model, params: SLDSParams, posts, batches) -> SLDSParams:
    """All parameter updates from the bucketed posteriors (tuples, one entry per bucket)."""
    initial = mstep.update_initial(params.initial, mstep.sum_stats(mstep.initial_stats, posts, batches))
    dynamics = mstep.update_dynamics(params.dynamics, mstep.sum_stats(mstep.dynamics_stats, posts, batches),
                                     diagonal=model.dynamics_cov == "diagonal")
    transitions = mstep.update_transitions(model, params.transitions, posts, batches)
    emissions = mstep.update_emissions(model, params.emissions, posts, batches)
    return SLDSParams(initial, transitions, dynamics, emissions)


def e_step_all(model, params, batches, qs, max_newton=10, parallel=False):
    """-> (tuple of batched Posterior, total ELBO). qs: previous posteriors (q(z) and the Newton start)."""
    posts, total = [], 0.0
    for batch, q in zip(batches, qs):
        f = lambda s, p: e_step(model, params, p.latent_means, p.discrete_probs, p.expected_transitions,
                                StepData(*s), max_newton, parallel)
        post, elbo = jax.vmap(f)(batch, q)
        posts.append(post)
        total = total + jnp.sum(elbo)
    return tuple(posts), total


@partial(fitting_jit, static_argnums=(0,), static_argnames=("max_newton", "parallel"))
def laplace_em_iteration(model, params, batches, qs, max_newton=10, parallel=False):
    """One Laplace-EM iteration -> (new params, posteriors under ``params``, ELBO of ``params``)."""
    posts, elbo = e_step_all(model, params, batches, qs, max_newton, parallel)
    return m_step(model, params, posts, batches), posts, elbo


@partial(fitting_jit, static_argnums=(0,), static_argnames=("max_newton", "parallel", "num_sweeps"))
def laplace_posterior(model, params, batches, qs, max_newton=10, parallel=False, num_sweeps=3):
    """Posterior under fixed params: a few alternating q(x) / q(z) sweeps -> (posteriors, ELBO)."""
    posts, elbo = e_step_all(model, params, batches, qs, max_newton, parallel)
    for _ in range(num_sweeps - 1):
        posts, elbo = e_step_all(model, params, batches, posts, max_newton, parallel)
    return posts, elbo


@partial(fitting_jit, static_argnums=(0,), static_argnames=("max_newton", "parallel"))
def laplace_em_iterations(model, params, batches, qs, max_newton=10, parallel=False):
    """``laplace_em_iteration`` for several independent fits at once: ``params`` and ``qs`` carry a
    leading fit axis (F, ...), the data ``batches`` are shared -> (new params, posteriors, ELBOs (F,))."""
    step = lambda p, q: laplace_em_iteration(model, p, batches, q, max_newton=max_newton, parallel=parallel)
    return jax.vmap(step)(params, qs)
