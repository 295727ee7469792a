"""``evaluate(f, x0, inputs, method)``: the states of a nonlinear recurrence, sequentially or in parallel."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.seq.parallel_rnn.adjoint import attach_gradient
from ssmneuro.seq.parallel_rnn.methods import DEER, ELK, METHODS, QuasiELK, Sequential
from ssmneuro.seq.parallel_rnn.solver import RNNSolution, iterate, sequential_states


@dataclass(frozen=True)
class _Hoisted:
    """A closure-converted ``f(x, u, *consts)`` seen as a cell ``(consts, x, u)`` (hashable, for jit)."""

    fn: Callable

    def __call__(self, consts, x, u):
        return self.fn(x, u, *consts)


@dataclass(frozen=True)
class _WithoutParams:
    """A user's ``rule(x, u)`` seen with a cell's signature ``(params, x, u)``."""

    fn: Callable

    def __call__(self, params, x, u):
        return self.fn(x, u)


def evaluate(f, x0, inputs, method=DEER(), *, params=None, guess=None) -> RNNSolution:
    """States x_1..x_T of x_t = f(x_{t-1}, u_t) by the chosen method.

    Args:
        f: the cell, ``f(x, u) -> x'`` (arrays it closes over are differentiable too), or
            ``f(params, x, u)`` when ``params`` is given (e.g. ``cells.gru``). x, x' are (D,).
        x0: (D,) the initial state.
        inputs: (T, U) inputs u_1..u_T, or any pytree of arrays with leading axis T (use a (T, 0)
            array for an autonomous recurrence such as a model's drift).
        method: ``Sequential()``, ``DEER(...)``, ``QuasiDEER(...)``, ``ELK(trust)``, ``QuasiELK(...)``.
        params: optional pytree passed as f's first argument.
        guess: (T, D) initial guess of the states for iterative methods; zeros when None.

    Returns:
        ``RNNSolution(states (T, D), iterations, converged, diverged, fell_back, residuals)``.
        Gradients of ``states`` with respect to x0, inputs and params (or f's closure) follow from the
        implicit function theorem (``adjoint.py``) and equal backprop through the sequential loop.
        Divergence or non-convergence sets the flags and issues a ``RuntimeWarning``; with
        ``on_divergence="fallback"`` (default) the states are then the sequential loop's.

    Compiles once per (cell, method, shapes); for a fresh lambda per call, wrap the call in ``jax.jit``.
    """
    _check_method(method)
    x0 = jnp.asarray(x0)
    inputs = jax.tree_util.tree_map(jnp.asarray, inputs)
    T = _check_inputs(inputs)
    u0 = jax.tree_util.tree_map(lambda a: a[0], inputs)
    if params is None:
        fn, consts = jax.closure_convert(f, x0, u0)
        cell, params = _Hoisted(fn), list(consts)
        if getattr(method, "diagonal_jacobian", None) is not None:
            method = dataclasses.replace(method, diagonal_jacobian=_WithoutParams(method.diagonal_jacobian))
    else:
        cell = f
    x0 = _check_state(cell, params, x0, u0)
    if guess is not None:
        guess = jnp.asarray(guess, x0.dtype)
        if guess.shape != (T,) + x0.shape:
            raise ValueError(f"guess must have shape (T, D) = {(T,) + x0.shape}, got {guess.shape}")
    solution = _solve(cell, method, params, x0, inputs, guess)
    _report(solution, method)
    return solution


@partial(jax.jit, static_argnums=(0, 1))
def _solve(cell, method, params, x0, inputs, guess):
    if isinstance(method, Sequential):
        states = sequential_states(cell, params, x0, inputs)
        true, false = jnp.ones((), bool), jnp.zeros((), bool)
        return RNNSolution(states, jnp.zeros((), jnp.int32), true, false, false, jnp.zeros((0,), x0.dtype))
    T = jax.tree_util.tree_leaves(inputs)[0].shape[0]
    if guess is None:
        guess = jnp.zeros((T,) + x0.shape, x0.dtype)
    frozen = jax.lax.stop_gradient
    solution = iterate(cell, frozen(params), frozen(x0), frozen(inputs), frozen(guess), method)
    states = attach_gradient(cell, method.adjoint, params, x0, inputs, solution.states)
    return solution._replace(states=states)


def _check_method(method):
    if not isinstance(method, METHODS):
        names = ", ".join(m.__name__ + "()" for m in METHODS)
        raise ValueError(f"method must be one of {names}; got {method!r}")
    if isinstance(method, Sequential):
        return
    if method.on_divergence not in ("fallback", "stop"):
        raise ValueError(f"on_divergence must be 'fallback' or 'stop', got {method.on_divergence!r}")
    if method.adjoint not in ("parallel", "sequential"):
        raise ValueError(f"adjoint must be 'parallel' or 'sequential', got {method.adjoint!r}")
    if method.max_iters is not None and method.max_iters < 1:
        raise ValueError(f"max_iters must be a positive int or None (= T), got {method.max_iters}")
    if method.tol is not None and not method.tol >= 0:
        raise ValueError(f"tol must be >= 0, got {method.tol}")
    if isinstance(method, (ELK, QuasiELK)) and not method.trust > 0:
        raise ValueError(f"trust (the pseudo-observation variance 1/lambda) must be > 0, got {method.trust}")


def _concrete(a):
    return not isinstance(a, jax.core.Tracer)


def _check_inputs(inputs):
    leaves = jax.tree_util.tree_leaves(inputs)
    if not leaves:
        raise ValueError("inputs must hold at least one array with leading axis T (use a (T, 0) array for none)")
    lengths = {a.shape[0] if a.ndim else None for a in leaves}
    if len(lengths) != 1 or None in lengths or 0 in lengths:
        raise ValueError(f"every input array needs the same leading time axis T >= 1; got shapes "
                         f"{[a.shape for a in leaves]}")
    for a in leaves:
        if _concrete(a) and jnp.issubdtype(a.dtype, jnp.inexact) and not np.all(np.isfinite(np.asarray(a))):
            raise ValueError("inputs contain NaN or inf; clean or mask them before evaluating the RNN")
    return lengths.pop()


def _check_state(cell, params, x0, u0):
    """x0 must be (D,) and finite, and f must map it to (D,); returns x0 in f's output dtype."""
    if x0.ndim != 1:
        raise ValueError(f"x0 must be a state vector of shape (D,), got shape {x0.shape}")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    if _concrete(x0) and not np.all(np.isfinite(np.asarray(x0))):
        raise ValueError("x0 contains NaN or inf")
    out = jax.eval_shape(cell, params, x0, u0)
    if not hasattr(out, "shape") or out.shape != x0.shape:
        raise ValueError(f"f(x, u) must return the next state with x's shape {x0.shape}; got "
                         f"{getattr(out, 'shape', type(out))}")
    return x0.astype(jnp.result_type(x0.dtype, out.dtype))


def _warn(name, diverged, converged, fell_back):
    diverged, converged, fell_back = (np.any(np.asarray(a)) for a in (diverged, converged, fell_back))
    converged = np.all(np.asarray(converged))
    if diverged or not converged:
        what = "diverged" if diverged else "did not converge"
        then = ("the sequential loop's states are returned (fell_back=True)" if fell_back
                else "the last finite iterate is returned")
        warnings.warn(f"parallel RNN evaluation by {name} {what}; {then}. Try ELK/QuasiELK with a "
                      f"smaller trust, more max_iters, or a looser tol.", RuntimeWarning, stacklevel=3)


def _report(solution, method):
    """Warn (at the Python level, or from inside jit by a debug callback) when the iteration failed."""
    if isinstance(method, Sequential):
        return
    name = type(method).__name__
    flags = (solution.diverged, solution.converged, solution.fell_back)
    if all(_concrete(a) for a in flags):
        _warn(name, *flags)
    else:
        jax.debug.callback(partial(_warn, name), *flags)
