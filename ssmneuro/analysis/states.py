"""Fixed points of a fitted switching model, per discrete state and of its state-averaged flow.

Each state k has the affine map x -> A_k x + b_k with fixed point x*_k solving (I - A_k) x = b_k. The
point is "real" when state k is the most likely next state at x*_k (argmax of the transition logits
there), so the system can actually rest at it, and "virtual" otherwise (another state takes over before
the point is reached) - the distinction of Nair et al. (2023) and Linderman et al. (2017).
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.analysis.linear import StateDynamics, state_dynamics


class StateFixedPoints(NamedTuple):
    """dynamics: StateDynamics per state (fixed points, eigenvalues, time constants (s), scores, kind);
    real: (K,) bool, x*_k exists and state k is the most likely state there; most_likely_state: (K,) int
    argmax of the transition logits at x*_k (-1 where no fixed point)."""

    dynamics: StateDynamics
    real: np.ndarray
    most_likely_state: np.ndarray


def real_fixed_points(fixed_points, has_fixed_point, most_likely_state: Callable):
    """real (K,) bool and the most likely state (K,) at each x*_k; most_likely_state: x (D,) -> int."""
    states = np.array([int(most_likely_state(x)) if ok else -1 for x, ok in zip(fixed_points, has_fixed_point)])
    return (states == np.arange(len(states))) & np.asarray(has_fixed_point), states


def state_fixed_points(model, params, dt: float | None = None, time: str = "discrete") -> StateFixedPoints:
    """Per-state fixed points of a fitted (r)SLDS / LDS, with real/virtual from model.transition_logits.
    dt: bin width in seconds (for the time constants)."""
    summary = state_dynamics(params.dynamics.weights, params.dynamics.biases, dt, time)
    real, states = real_fixed_points(summary.fixed_points, summary.has_fixed_point,
                                     lambda x: jnp.argmax(model.transition_logits(params, jnp.asarray(x))))
    return StateFixedPoints(dynamics=summary, real=real, most_likely_state=states)


def mixture_map(weights, biases, logits_fn: Callable):
    """The state-averaged one-step mean map of a recurrent switching model,
    f(x) = sum_k softmax(logits(x))_k (A_k x + b_k). weights (K, D, D), biases (K, D); logits_fn: x -> (K,).
    Use it with find_fixed_points / find_slow_points (time="discrete")."""
    A, b = jnp.asarray(weights), jnp.asarray(biases)

    def f(x):
        p = jax.nn.softmax(logits_fn(x))
        return jnp.einsum("k,kd->d", p, A @ x + b)

    return f


def model_map(model, params, u=None):
    """``mixture_map`` of a fitted model (inputs u (U,) held fixed, default zero)."""
    return mixture_map(params.dynamics.weights, params.dynamics.biases,
                       lambda x: model.transition_logits(params, x, u))
