"""Exact EM for the Gaussian LDS (K = 1): the E-step is the core's Kalman smoother, the ELBO is the exact
marginal log-likelihood log p(y), and the M-step is the closed form of fitting/mstep.py."""

from functools import partial

import jax
import jax.numpy as jnp

from ssmneuro.inference.lgssm import LGSSMParams, kalman_smoother
from ssmneuro.models.fitting.jit import fitting_jit
from ssmneuro.models.fitting.laplace_em import m_step
from ssmneuro.models.params import Posterior, SLDSParams


def to_lgssm(params: SLDSParams) -> LGSSMParams:
    """The K = 1 model as core LGSSMParams."""
    d, e = params.dynamics, params.emissions
    return LGSSMParams(params.initial.means[0], params.initial.covs[0], d.weights[0], d.biases[0], d.covs[0],
                       e.weights, e.biases, e.covs, dynamics_input_matrix=d.input_weights[0])


def exact_e_step(params: SLDSParams, step, parallel=False):
    """One trial: (Posterior, log p(y)). step: StepData-like with emissions, masks, inputs (no batch axis)."""
    mask = step.masks > 0
    out = kalman_smoother(to_lgssm(params), step.emissions, inputs=step.inputs, mask=mask, parallel=parallel)
    T = step.emissions.shape[0]
    dtype = out.smoothed_means.dtype
    post = Posterior(jnp.ones((T, 1), dtype), out.smoothed_means, out.smoothed_covs, out.smoothed_cross_covs,
                     jnp.ones((T - 1, 1, 1), dtype))
    return post, out.log_likelihood


def exact_e_step_all(params, batches, parallel=False):
    posts, total = [], 0.0
    for batch in batches:
        post, ll = jax.vmap(lambda s: exact_e_step(params, s, parallel))(batch)
        posts.append(post)
        total = total + jnp.sum(ll)
    return tuple(posts), total


@partial(fitting_jit, static_argnums=(0,), static_argnames=("parallel",))
def exact_em_iteration(model, params, batches, qs=None, parallel=False):
    """One EM iteration -> (new params, posteriors under ``params``, log p(y | params))."""
    del qs
    posts, ll = exact_e_step_all(params, batches, parallel)
    return m_step(model, params, posts, batches), posts, ll


@partial(fitting_jit, static_argnums=(0,), static_argnames=("parallel",))
def exact_posterior(model, params, batches, qs=None, parallel=False):
    del model, qs
    return exact_e_step_all(params, batches, parallel)


@partial(fitting_jit, static_argnums=(0,), static_argnames=("parallel",))
def exact_em_iterations(model, params, batches, qs=None, parallel=False):
    """``exact_em_iteration`` for several independent fits: params with a leading fit axis (F, ...)."""
    del qs
    return jax.vmap(lambda p: exact_em_iteration(model, p, batches, parallel=parallel))(params)
