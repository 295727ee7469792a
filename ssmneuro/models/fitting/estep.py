"""Laplace-EM E-step for one trial (Zoltowski, Pillow & Linderman 2020).

Structured mean field q(z) q(x). With q(z) fixed, the expected log joint in x is

    L(x) = sum_k q(z_0=k) log N(x_0 | mu_k, Sigma_k)
         + sum_t sum_k q(z_{t+1}=k) log N(x_{t+1} | A_k x_t + V_k u_t + b_k, Q_k)        (pairwise, quadratic)
         + sum_t sum_ij q(z_t=i, z_{t+1}=j) log p(z_{t+1}=j | z_t=i, x_t, u_t)             (unary)
         + sum_t log p(y_t | x_t [, y_{t-1}])                                               (unary)
         + sum_{t padded} log N(x_t | 0, I)                       (keeps padded steps proper and decoupled)

q(x) = N(x*, J^{-1}) with x* = argmax L (Newton on the block-tridiagonal J = -Hessian, core solver) and J
taken at x*. q(z) is the HMM posterior under the potentials E_q(x)[log N(x_{t+1} | A_k x_t ..., Q_k)]
(exact in the moments of q(x)) and log p(z_{t+1} | z_t, x_t = E[x_t]) (transitions at the mean).

ELBO = log Z_hmm + sum_t E_q[log p(y_t | x_t)] + H[q(x)], with E_q[f(x_t)] ~ f(m_t) + 1/2 tr(H_f S_t)
(exact for Gaussian emissions); padded steps contribute 0.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ssmneuro.inference.block_tridiag import BlockTridiagPosterior, block_tridiag_posterior
from ssmneuro.models.components import dynamics as dyn
from ssmneuro.models.components import transitions as trans
from ssmneuro.models.components.emissions import expected_log_prob, family, value_and_hessian
from ssmneuro.models.params import Posterior

LOG_2PI = 1.8378770664093453
MAX_HALVINGS = 6  # Newton's line search: step sizes 1, 1/2, ..., 1/64


class StepData(NamedTuple):
    """Per-step terms of one (padded) trial; see fitting/data.py TrialBatch for shapes (no batch axis)."""

    emissions: Array
    prev_emissions: Array
    masks: Array
    inputs: Array
    valid: Array


def _pair_weights(probs, valid):
    """(T-1, K): q(z_{t+1} = k) on steps t -> t+1 that lie inside the trial."""
    return probs[1:] * valid[1:, None]


def _padded_pairs(pairs, valid):
    """(T, K, K): pairwise marginals weighted by validity of t+1, zero row appended for t = T-1."""
    w = pairs * valid[1:, None, None]
    return jnp.concatenate([w, jnp.zeros_like(w[:1])], axis=0)


def prior_terms(model, params, x, step, pairs):
    """(T,) terms of L(x) that involve x_t alone, except the emissions and the initial state: the transitions
    out of x_t (pairs (T, K, K), zero on the last and padded steps) and N(x_t | 0, I) on padded steps."""
    padded = (1.0 - step.valid) * (-0.5 * jnp.sum(x**2, -1) - 0.5 * x.shape[-1] * LOG_2PI)
    return padded + trans.expected_log_transition_terms(model.transitions, params.transitions, x, step.inputs, pairs)


def initial_term(params, x0, probs0, prec):
    """sum_k q(z_0 = k) log N(x_0 | mu_k, Sigma_k); prec: (Sigma_k^{-1}, log det Sigma_k)."""
    return jnp.sum(probs0 * dyn.initial_log_likelihoods(params.initial, x0, prec))


def initial_precision(probs0, prec):
    """(D, D) -Hessian of initial_term: sum_k q(z_0 = k) Sigma_k^{-1}; prec: (Sigma_k^{-1}, log det Sigma_k)."""
    return jnp.einsum("k,kij->ij", probs0, prec[0])


class EmissionQuadratic(NamedTuple):
    """Gaussian emissions with diagonal R as an exact quadratic in x_t (masked entries left out):

        log p(y_t | x_t) = constants[t] + linear[t] . x_t - 1/2 x_t^T precisions[t] x_t,
        precisions[t] = C^T diag(m_t / r) C,  linear[t] = C^T (m_t (y_t - d) / r).

    constants (T,), linear (T, D), precisions (T, D, D). Built once per E-step in O(T N D^2), it makes every
    evaluation inside Newton's method O(T D^2) instead of O(T N D) (N >> D on recordings)."""

    constants: Array
    linear: Array
    precisions: Array


def emission_quadratic(model, params, step):
    """``EmissionQuadratic`` for Gaussian emissions with diagonal R, else None (the generic path)."""
    if model.emissions != "gaussian" or params.emissions.covs.ndim != 1:
        return None
    C, d, r = params.emissions
    observed = step.masks > 0
    resid = jnp.where(observed, step.emissions - d, 0.0)
    w = jnp.where(observed, 1.0 / r, 0.0)
    constants = -0.5 * jnp.sum(jnp.where(observed, LOG_2PI + jnp.log(r), 0.0) + w * resid**2, -1)
    return EmissionQuadratic(constants, (w * resid) @ C, jnp.einsum("nd,tn,ne->tde", C, w, C))


class EStepConstants(NamedTuple):
    """What one E-step needs that depends on the parameters (and data) alone, built once, outside Newton's loop,
    so that its program holds one copy (every evaluation of L inside the loop would otherwise refactor Q_k):

        dynamics_precisions  (Q_k^{-1} (K, D, D), log det Q_k (K,))
        initial_precisions   (Sigma_k^{-1} (K, D, D), log det Sigma_k (K,))
        emissions            ``EmissionQuadratic`` or None (the family's generic log-density)."""

    dynamics_precisions: tuple
    initial_precisions: tuple
    emissions: EmissionQuadratic | None


def estep_constants(model, params, step, quadratic_emissions=True) -> EStepConstants:
    """``EStepConstants`` of one trial; ``quadratic_emissions=False`` keeps the generic emission path."""
    quad = emission_quadratic(model, params, step) if quadratic_emissions else None
    return EStepConstants(dyn.precisions(params.dynamics), dyn.precision_and_logdet(params.initial.covs), quad)


def _constants(model, params, step, consts):
    return estep_constants(model, params, step, quadratic_emissions=False) if consts is None else consts


def emission_terms(model, params, x, step, quad=None):
    """(T,) log p(y_t | x_t [, y_{t-1}]) at x (T, D): from ``quad`` if given, else the family's log_prob."""
    if quad is not None:
        # an einsum (one batched dot): XLA:CPU runs the broadcast multiply-sum over T several times slower
        return (quad.constants + jnp.einsum("ti,ti->t", quad.linear, x)
                - 0.5 * jnp.einsum("ti,tij,tj->t", x, quad.precisions, x))
    em = family(model.emissions)
    f = lambda *a: em.log_prob(model, params.emissions, *a)
    return jax.vmap(f)(x, step.emissions, step.prev_emissions, step.masks)


def unary_terms(model, params, x, step, q_probs, q_pairs, quad=None):
    """(T,) the terms of L(x) that involve x_t alone at x (T, D) (the initial-state term excluded)."""
    return emission_terms(model, params, x, step, quad) + prior_terms(model, params, x, step,
                                                                       _padded_pairs(q_pairs, step.valid))


def unary_hessians(model, params, x, step, q_probs, q_pairs, consts=None):
    """(T, D, D) Hessians of the unary terms, the initial state's included (all in closed form)."""
    consts = _constants(model, params, step, consts)
    u, valid, pairs = step.inputs, step.valid, _padded_pairs(q_pairs, step.valid)
    D = x.shape[1]
    if consts.emissions is not None:
        H = -consts.emissions.precisions
    else:
        em = lambda x_t, y_t, yp_t, m_t: value_and_hessian(model, params.emissions, x_t, y_t, yp_t, m_t)[1]
        H = jax.vmap(em)(x, step.emissions, step.prev_emissions, step.masks)
    H = H - (1.0 - valid)[:, None, None] * jnp.eye(D, dtype=x.dtype)
    if model.transitions not in trans.CLOSED_FORM:
        H = H + trans.log_transition_hessians(model.transitions, params.transitions, x, u, pairs)
    return H.at[0].add(-initial_precision(q_probs[0], consts.initial_precisions))


def pairwise_terms(params, x, step, q_probs, prec):
    """(T-1,) sum_k w_tk log N(x_{t+1} | A_k x_t + V_k u_t + b_k, Q_k); prec: ``dyn.precisions(params.dynamics)``."""
    w = _pair_weights(q_probs, step.valid)
    return jnp.sum(w * dyn.log_likelihood_matrix(params.dynamics, x, step.inputs, prec), axis=-1)


def expected_log_joint(model, params, x, step, q_probs, q_pairs, consts=None):
    """L(x) for x (T, D) (the objective of Newton's method); consts: ``estep_constants`` or None (computed here,
    generic emission path)."""
    consts = _constants(model, params, step, consts)
    return (jnp.sum(pairwise_terms(params, x, step, q_probs, consts.dynamics_precisions))
            + initial_term(params, x[0], q_probs[0], consts.initial_precisions)
            + jnp.sum(unary_terms(model, params, x, step, q_probs, q_pairs, consts.emissions)))


def dynamics_precision_blocks(params, step, q_probs, prec):
    """Block-tridiagonal -Hessian of the pairwise (dynamics) terms: (J_diag (T,D,D), J_lower (T-1,D,D));
    prec: ``dyn.precisions(params.dynamics)``."""
    A = params.dynamics.weights
    Qinv = prec[0]
    QinvA = Qinv @ A
    AtQinvA = jnp.swapaxes(A, -1, -2) @ QinvA
    w = _pair_weights(q_probs, step.valid)
    upper = jnp.einsum("tk,kij->tij", w, AtQinvA)
    lower_diag = jnp.einsum("tk,kij->tij", w, Qinv)
    T, D = step.valid.shape[0], A.shape[-1]
    zeros = jnp.zeros((1, D, D), A.dtype)
    J_diag = jnp.concatenate([upper, zeros]) + jnp.concatenate([zeros, lower_diag])
    J_lower = -jnp.einsum("tk,kij->tij", w, QinvA)
    return J_diag, J_lower


def precision_blocks(model, params, x, step, q_probs, q_pairs, consts=None):
    """J = -Hessian of L at x, as (J_diag (T, D, D), J_lower (T-1, D, D))."""
    consts = _constants(model, params, step, consts)
    J_diag, J_lower = dynamics_precision_blocks(params, step, q_probs, consts.dynamics_precisions)
    H = unary_hessians(model, params, x, step, q_probs, q_pairs, consts)
    return J_diag - 0.5 * (H + jnp.swapaxes(H, -1, -2)), J_lower


def _information_vector(J_diag, J_lower, x):
    """J x for block-tridiagonal J: (T, D)."""
    h = jnp.einsum("tij,tj->ti", J_diag, x)
    h = h.at[1:].add(jnp.einsum("tij,tj->ti", J_lower, x[:-1]))
    return h.at[:-1].add(jnp.einsum("tji,tj->ti", J_lower, x[1:]))


def newton_posterior(model, params, x, step, q_probs, q_pairs, parallel=False, consts=None):
    """At x: (L(x), Gaussian N(x + J^{-1} g, J^{-1}) with J = -Hessian, g = grad L (core posterior), g)."""
    consts = _constants(model, params, step, consts)
    objective = lambda z: expected_log_joint(model, params, z, step, q_probs, q_pairs, consts)
    value, grad = jax.value_and_grad(objective)(x)
    J_diag, J_lower = precision_blocks(model, params, x, step, q_probs, q_pairs, consts)
    h = _information_vector(J_diag, J_lower, x) + grad
    return value, block_tridiag_posterior(J_diag, J_lower, h, parallel=parallel), grad


def newton_step(model, params, x, step, q_probs, q_pairs, parallel=False, consts=None):
    """One damped Newton step on L: x + s J^{-1} grad L with s = 1, halved (up to MAX_HALVINGS times) until L
    improves, else no step. Near the mode the full step is taken after one evaluation of L (a while loop, so
    also under vmap, where a cond would evaluate both branches).
    -> (new x, gain in L, Newton decrement g^T J^{-1} g, L at x, posterior at x)."""
    consts = _constants(model, params, step, consts)
    objective = lambda z: expected_log_joint(model, params, z, step, q_probs, q_pairs, consts)
    value, post, grad = newton_posterior(model, params, x, step, q_probs, q_pairs, parallel, consts)
    direction = post.means - x
    at = lambda size: jnp.nan_to_num(objective(x + size * direction), nan=-jnp.inf, posinf=-jnp.inf)

    def halve(c):
        halvings, size, _ = c
        return halvings + 1, 0.5 * size, at(0.5 * size)

    one = jnp.ones((), x.dtype)
    _, size, new_value = jax.lax.while_loop(lambda c: (c[2] <= value) & (c[0] < MAX_HALVINGS), halve, (0, one, at(one)))
    improved = new_value > value
    x_new = jnp.where(improved, x + size * direction, x)
    return x_new, jnp.where(improved, new_value - value, 0.0), jnp.sum(grad * direction), value, post


def laplace_posterior_at_mode(model, params, x0, step, q_probs, q_pairs, max_steps=10, tol=1e-6, parallel=False,
                              consts=None):
    """Damped Newton from x0 until the Newton decrement g^T J^{-1} g < tol (1 + |L|) (then one full step);
    -> core BlockTridiagPosterior at the mode (means = x*, covs = J(x*)^{-1} blocks).

    The loop body runs at most max_steps + 1 times: the last pass only evaluates the posterior at the final
    point (so the posterior code is compiled once, not again outside the loop). consts: ``estep_constants``
    (built here if None)."""
    consts = estep_constants(model, params, step) if consts is None else consts

    def cond(c):
        return ~c[2]

    def body(c):
        i, x, _, _ = c
        x_new, gain, decrement, value, post = newton_step(model, params, x, step, q_probs, q_pairs, parallel, consts)
        converged = (decrement < tol * (1.0 + jnp.abs(value))) | ~(gain > 0)
        out_of_steps = i >= max_steps
        # converged: the posterior computed at x already holds the full Newton step as its mean;
        # out of steps: keep x, whose posterior (covariance) was just computed
        full_step = converged & ~out_of_steps & jnp.all(jnp.isfinite(post.means))
        x_next = jnp.where(full_step, post.means, jnp.where(out_of_steps, x, x_new))
        return i + 1, x_next, converged | out_of_steps, post

    T, D = x0.shape
    zeros = lambda *shape: jnp.zeros(shape, x0.dtype)
    post0 = BlockTridiagPosterior(zeros(T, D), zeros(T, D, D), zeros(T - 1, D, D), zeros(), zeros())
    _, x, _, post = jax.lax.while_loop(cond, body, (0, x0, jnp.asarray(False), post0))
    return post._replace(means=x)


def discrete_potentials(model, params, means, covs, cross_covs, step, consts=None):
    """(log_init (K,), log_transition_matrices (T-1, K, K), log_likelihoods (T, K)) for q(z)."""
    consts = _constants(model, params, step, consts)
    ll0 = dyn.initial_expected_log_likelihoods(params.initial, means[0], covs[0], consts.initial_precisions)
    ll = dyn.expected_log_likelihood_matrix(params.dynamics, means, covs, cross_covs, step.inputs,
                                            consts.dynamics_precisions)
    ll = jnp.concatenate([ll0[None], ll * step.valid[1:, None]], axis=0)
    log_Ps = trans.log_transition_matrices(model.transitions, params.transitions, means, step.inputs)
    return jnp.log(params.initial.probs), log_Ps, ll


def expected_emission_log_prob(model, params, means, covs, step, quad=None):
    """sum_t E_q[log p(y_t | x_t)] ~ sum_t log p(y_t | m_t) + 1/2 tr(H_t S_t) (exact for Gaussian emissions;
    from ``quad`` if given: H_t = -quad.precisions[t])."""
    if quad is not None:
        return jnp.sum(emission_terms(model, params, means, step, quad)) - 0.5 * jnp.sum(quad.precisions * covs)
    f = lambda m, S, y, yp, k: expected_log_prob(model, params.emissions, m, S, y, yp, k)
    return jnp.sum(jax.vmap(f)(means, covs, step.emissions, step.prev_emissions, step.masks))


def e_step(model, params, x0, q_probs, q_pairs, step, max_newton=10, parallel=False):
    """One trial's E-step: q(x) by Newton/Laplace given q(z), then q(z) given q(x). -> (Posterior, elbo)."""
    consts = estep_constants(model, params, step)
    qx = laplace_posterior_at_mode(model, params, x0, step, q_probs, q_pairs, max_newton, parallel=parallel,
                                   consts=consts)
    x = qx.means
    log_init, log_Ps, ll = discrete_potentials(model, params, x, qx.covs, qx.cross_covs, step, consts)
    from ssmneuro.inference.hmm import hmm_smoother

    qz = hmm_smoother(log_init, log_Ps, ll, parallel=parallel)
    T, D = x.shape
    num_padded = T - jnp.sum(step.valid)
    entropy = 0.5 * T * D * (1.0 + LOG_2PI) - 0.5 * qx.log_det_precision
    elbo = (qz.log_likelihood + expected_emission_log_prob(model, params, x, qx.covs, step, consts.emissions) + entropy
            - num_padded * 0.5 * D * (1.0 + LOG_2PI))
    post = Posterior(qz.smoothed_probs, x, qx.covs, qx.cross_covs, qz.expected_transitions)
    return post, elbo
