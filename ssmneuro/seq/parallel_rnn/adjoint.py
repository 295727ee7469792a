"""Gradients through the solution by the implicit function theorem.

The states solve x = F(x, θ) with F_t(x) = f(x_{t-1}, u_t; θ). For a cotangent g (T, D) on the states,
    λ = (I - ∂F/∂x)^{-T} g   <=>   λ_t = g_t + J_{t+1}^T λ_{t+1},  λ_T = g_T,
a linear recurrence run backwards in time (J_{t+1} = ∂f/∂x at (x_t, u_{t+1})); then
    θ̄ = Σ_t (∂f/∂θ (x_{t-1}, u_t))^T λ_t,  ū_t = (∂f/∂u)^T λ_t,  x̄_0 = J_1^T λ_1,
which is one vector-Jacobian product of the vmapped cell. None of this depends on how the states
were found, so every method shares it and it equals backprop through the sequential loop.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ssmneuro.inference.scan import dense_scan
from ssmneuro.seq.parallel_rnn.jacobians import apply_cell, dense_jacobians


def _shift(states, x0):
    return jnp.concatenate([x0[None], states[:-1]])


def adjoint_parallel(cell, params, states, inputs, g):
    """λ (T, D) by a dense reverse associative scan with A_t = J_{t+1}^T (O(T D^2) memory)."""
    later = jax.tree_util.tree_map(lambda a: a[1:], inputs)
    J_next = dense_jacobians(cell, params, states[:-1], later)  # J_{t+1}, t = 1..T-1
    A = jnp.concatenate([jnp.swapaxes(J_next, 1, 2), jnp.zeros_like(J_next[:1])])
    return dense_scan(A, g, reverse=True)


def adjoint_sequential(cell, params, states, inputs, g):
    """λ (T, D) by a reverse ``lax.scan`` of vector-Jacobian products (O(T D) memory)."""
    later = jax.tree_util.tree_map(lambda a: a[1:], inputs)

    def step(lam_next, xs):
        g_t, x_t, u_next = xs
        _, pullback = jax.vjp(lambda x: cell(params, x, u_next), x_t)
        lam = g_t + pullback(lam_next)[0]
        return lam, lam

    _, lam = jax.lax.scan(step, g[-1], (g[:-1], states[:-1], later), reverse=True)
    return jnp.concatenate([lam, g[-1:]])


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def attach_gradient(cell, adjoint, params, x0, inputs, states):
    """Returns ``states`` unchanged; its VJP is the implicit-function gradient (module docstring)."""
    return states


def _forward(cell, adjoint, params, x0, inputs, states):
    return states, (params, x0, inputs, states)


def _backward(cell, adjoint, residual, g):
    params, x0, inputs, states = residual
    solve = adjoint_parallel if adjoint == "parallel" else adjoint_sequential
    lam = solve(cell, params, states, inputs, g)
    _, pullback = jax.vjp(lambda p, xp, u: apply_cell(cell, p, xp, u), params, _shift(states, x0), inputs)
    d_params, d_prev, d_inputs = pullback(lam)
    return d_params, d_prev[0], d_inputs, jnp.zeros_like(states)


attach_gradient.defvjp(_forward, _backward)
