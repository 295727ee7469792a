"""The fixed-point iteration shared by DEER, quasi-DEER, ELK and quasi-ELK.

Solve x_t = f(x_{t-1}, u_t), t = 1..T, for all states at once. Each iteration
  1. linearises f around the current guess and solves the linear problem (``steps.py``);
  2. keeps the exact prefix: let t* be the first step with a nonzero residual r_t = ||x̄_t - f(x̄_{t-1})||_inf
     (or the end of the prefix locked so far, if later); states before t* are kept, x_{t*} := f(x̄_{t*-1})
     (already computed) and the locked prefix becomes 1..t*. DEER does this by itself in exact
     arithmetic; making it explicit extends to every method, in floating point, the guarantee that
     the exact prefix grows by at least one step per iteration: every method converges within T
     iterations (after T iterations the states are the sequential loop's, step for step);
  ELK / QuasiELK with ``adaptive=True`` adapt the trust as Levenberg-Marquardt does: a step that does
  not lower the merit sum_t ||x_t - f(x_{t-1})||^2 is rejected (only the exact-prefix step is taken)
  and the trust shrinks; an accepted step grows it;
  3. stops on convergence (all r_t <= tol), divergence (non-finite iterate, or max_t r_t above
     ``divergence_growth`` times the first residual), or at ``max_iters``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssmneuro.seq.parallel_rnn import steps
from ssmneuro.seq.parallel_rnn.jacobians import (
    apply_cell,
    dense_jacobians,
    diagonal_jacobians,
    diagonal_rule,
)
from ssmneuro.seq.parallel_rnn.methods import DEER, ELK, QuasiDEER, QuasiELK


class RNNSolution(NamedTuple):
    """The states of x_t = f(x_{t-1}, u_t) and how they were found.

    states: (T, D) x_1..x_T.
    iterations: () int, linearised solves performed (0 for ``Sequential``).
    converged: () bool, the iteration reached max_t r_t <= tol (True for ``Sequential``).
    diverged: () bool, divergence was detected (non-finite or growing residual).
    fell_back: () bool, the states come from the sequential fallback.
    residuals: (max_iters + 1,) max_t r_t before each iteration (entry 0: the initial guess); NaN after
        the last iteration (empty for ``Sequential``).
    """

    states: jax.Array
    iterations: jax.Array
    converged: jax.Array
    diverged: jax.Array
    fell_back: jax.Array
    residuals: jax.Array


def default_tol(dtype):
    """1e-5 in float32 (about 100 machine epsilons), 1e-10 in float64."""
    return 1e-5 if jnp.finfo(dtype).bits <= 32 else 1e-10


def shift(states, x0):
    """prev_t = x_{t-1}: (T, D) = (x_0, x_1, ..., x_{T-1})."""
    return jnp.concatenate([x0[None], states[:-1]])


def sequential_states(cell, params, x0, inputs):
    """x_t = f(x_{t-1}, u_t) one step after another: (T, D)."""

    def step(x, u):
        x = cell(params, x, u)
        return x, x

    return jax.lax.scan(step, x0, inputs)[1]


def residuals(cell, params, states, x0, inputs):
    """fx_t = f(x_{t-1}, u_t) (T, D), r_t = ||x_t - fx_t||_inf (T,) and the merit sum_t ||x_t - fx_t||^2."""
    fx = apply_cell(cell, params, shift(states, x0), inputs)
    diff = states - fx
    return fx, jnp.max(jnp.abs(diff), axis=-1), jnp.sum(diff**2)


def keep_exact_prefix(new, old, fx, r, locked):
    """Keep ``old`` before t* = max(locked, first t with r_t != 0), set x_{t*} = fx_{t*}, ``new`` after.

    Returns the states (T, D) and the new locked length t* + 1 (capped at T).
    """
    first_inexact = jnp.argmax(~(r == 0))  # NaN counts as inexact
    first_inexact = jnp.where(jnp.all(r == 0), r.shape[0], first_inexact)
    t_star = jnp.maximum(locked, first_inexact)
    t = jnp.arange(r.shape[0])[:, None]
    states = jnp.where(t < t_star, old, jnp.where(t == t_star, fx, new))
    return states, jnp.minimum(t_star + 1, r.shape[0]).astype(locked.dtype)


def linearised_step(cell, params, x0, inputs, method):
    """The method's update (states, fx, trust) -> new states (T, D)."""

    def step(states, fx, trust):
        prev = shift(states, x0)
        if isinstance(method, (DEER, ELK)):
            J = dense_jacobians(cell, params, prev, inputs)
        else:
            rule = diagonal_rule(cell, method.diagonal_jacobian)
            J = diagonal_jacobians(cell, params, prev, inputs, rule)
        if isinstance(method, DEER):
            return steps.newton_step(J, fx, prev, x0, method.parallel)
        if isinstance(method, QuasiDEER):
            return steps.quasi_newton_step(J, fx, prev, x0, method.parallel)
        if isinstance(method, ELK):
            return steps.elk_step(J, fx, prev, states, trust, method.parallel)
        if isinstance(method, QuasiELK):
            return steps.quasi_elk_step(J, fx, prev, states, trust, method.parallel)
        raise TypeError(f"not an iterative method: {method!r}")

    return step


class _Carry(NamedTuple):
    states: jax.Array  # (T, D) current iterate
    fx: jax.Array  # (T, D) f(x_{t-1}, u_t) at the iterate
    r: jax.Array  # (T,) residual norms
    merit: jax.Array  # () sum of squared residuals
    k: jax.Array  # () iterations done
    history: jax.Array  # (max_iters + 1,)
    diverged: jax.Array  # () bool
    locked: jax.Array  # () length of the exact prefix
    trust: jax.Array  # () current trust (ELK family)


def iterate(cell, params, x0, inputs, guess, method) -> RNNSolution:
    """Run the fixed-point iteration from ``guess`` (T, D); see the module docstring."""
    T = guess.shape[0]
    max_iters = T if method.max_iters is None else method.max_iters
    tol = default_tol(guess.dtype) if method.tol is None else method.tol
    adaptive = getattr(method, "adaptive", False)
    step = linearised_step(cell, params, x0, inputs, method)
    evaluate_at = lambda states: (states,) + residuals(cell, params, states, x0, inputs)

    _, fx, r, merit = evaluate_at(guess)
    first = jnp.max(r)
    history = jnp.full((max_iters + 1,), jnp.nan, guess.dtype).at[0].set(first)
    blow_up = method.divergence_growth * jnp.maximum(first, tol)

    def not_done(c):
        return (c.k < max_iters) & ~jnp.all(c.r <= tol) & ~c.diverged

    def body(c):
        candidate, locked = keep_exact_prefix(step(c.states, c.fx, c.trust), c.states, c.fx, c.r, c.locked)
        new = evaluate_at(candidate)
        trust = c.trust
        if adaptive:  # Levenberg-Marquardt: accept if the merit does not grow, else only the exact step
            accept = jnp.all(jnp.isfinite(new[0])) & (new[3] <= c.merit)
            exact_step = lambda: evaluate_at(keep_exact_prefix(c.states, c.states, c.fx, c.r, c.locked)[0])
            new = jax.lax.cond(accept, lambda: new, exact_step)
            trust = jnp.clip(jnp.where(accept, trust * method.grow, trust * method.shrink), 1e-8, 1e8)
        states, fx, r, merit = new
        finite = jnp.all(jnp.isfinite(states)) & jnp.all(jnp.isfinite(r))
        worst = jnp.where(finite, jnp.max(r), jnp.inf)
        diverged = ~finite | ~(worst <= blow_up)
        keep = lambda a, b: jnp.where(diverged, b, a)  # on divergence keep the last finite iterate
        return _Carry(keep(states, c.states), keep(fx, c.fx), keep(r, c.r), keep(merit, c.merit), c.k + 1,
                      c.history.at[c.k + 1].set(worst), diverged, locked, trust)

    zero = jnp.zeros((), jnp.int32)
    trust = jnp.asarray(getattr(method, "trust", 1.0), guess.dtype)
    init = _Carry(guess, fx, r, merit, zero, history, jnp.zeros((), bool), zero, trust)
    c = jax.lax.while_loop(not_done, body, init)
    converged = jnp.all(c.r <= tol)
    fall_back = (method.on_divergence == "fallback") & (c.diverged | ~converged)
    states = jax.lax.cond(fall_back, lambda: sequential_states(cell, params, x0, inputs), lambda: c.states)
    return RNNSolution(states, c.k, converged, c.diverged, fall_back, c.history)
