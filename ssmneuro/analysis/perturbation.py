"""Perturbation design: which neurons to stimulate to push the state along (on-manifold) or across
(off-manifold) a line attractor, and the model's predicted response to a pulse.

Stimulating a set S of neurons with a pulse of size ``amplitude`` enters the latents as the kick
delta = amplitude * C_S^T 1 (input along C^T of the set, C (N, D) the emission weights). The kick of one
neuron n, c_n = C[n] (D,), splits on the slowest mode v (unit) with left eigenvector w (w^T v = 1):

    slow coordinate a_n = w^T c_n,   fast part f_n = || c_n - a_n v ||.

On-manifold neurons have a large slow coordinate of one sign and a small fast part (score
sign * a_n - f_n, the sign of the best neuron); off-manifold neurons the smallest slow fraction
|a_n| / ||c_n|| among the neurons with at least the median kick size ||c_n|| (then the weaker ones), so
that the summed kick of a set stays off the attractor. After the pulse the deviation from the unperturbed trajectory evolves by
the state's dynamics, delta_t = A^t delta, and the neural response is C delta_t. Its decay time is the
first time ||C delta_t|| falls below ||C delta_0|| / e (linear interpolation of the log; inf when it does
not within the horizon).
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.analysis.linear import slowest_mode


class NeuronRanking(NamedTuple):
    """on_manifold (N,) and off_manifold (N,) neuron indices, best first; slow_coordinate (N,) a_n;
    fast_part (N,) f_n; direction (D,) v; left (D,) w."""

    on_manifold: np.ndarray
    off_manifold: np.ndarray
    slow_coordinate: np.ndarray
    fast_part: np.ndarray
    direction: np.ndarray
    left: np.ndarray


def rank_neurons(dynamics_weights, emission_weights, dt: float | None = None, time: str = "discrete") -> NeuronRanking:
    """Rank neurons for on- and off-manifold stimulation. dynamics_weights A (D, D) of the attractor
    state, emission_weights C (N, D)."""
    mode = slowest_mode(dynamics_weights, dt, time)
    C = np.asarray(emission_weights, dtype=float)
    a = C @ mode.left
    fast = np.linalg.norm(C - np.outer(a, mode.direction), axis=1)
    best = np.argmax(np.abs(a) - fast)
    on = np.argsort(-(np.sign(a[best]) * a - fast), kind="stable")
    norm = np.linalg.norm(C, axis=1)
    weak = norm < np.median(norm)
    off = np.lexsort((np.abs(a) / np.maximum(norm, 1e-300), weak))
    return NeuronRanking(on_manifold=on, off_manifold=off, slow_coordinate=a, fast_part=fast,
                         direction=mode.direction, left=mode.left)


def off_manifold_set(ranking: NeuronRanking, emission_weights, size: int) -> np.ndarray:
    """Greedy off-manifold stimulation set of ``size`` neurons: starting from the best-ranked off-manifold
    neuron, add the neuron (among those with at least the median kick size) that keeps the slow fraction
    |w^T k| / ||k|| of the summed kick k = sum_S c_n smallest, so slow components of the set cancel."""
    C = np.asarray(emission_weights, dtype=float)
    norm = np.linalg.norm(C, axis=1)
    candidates = set(np.flatnonzero(norm >= np.median(norm))) | {int(ranking.off_manifold[0])}
    chosen = [int(ranking.off_manifold[0])]
    kick = C[chosen[0]].copy()
    while len(chosen) < min(size, len(candidates)):
        rest = np.array(sorted(candidates - set(chosen)))
        trial = kick + C[rest]
        frac = np.abs(trial @ ranking.left) / np.linalg.norm(trial, axis=1)
        chosen.append(int(rest[np.argmin(frac)]))
        kick = kick + C[chosen[-1]]
    return np.asarray(chosen)


def stimulation_kick(emission_weights, neurons, amplitude: float = 1.0) -> np.ndarray:
    """Latent kick amplitude * C_S^T 1 of stimulating the neurons S (indices) (D,)."""
    C = np.asarray(emission_weights, dtype=float)
    return amplitude * C[np.asarray(neurons, dtype=int)].sum(0)


@jax.jit
def _linear_responses(A, kick, C, steps):
    """||C A^t kick|| for t = 0..len(steps)-1, vmapped over leading axis of A (S, D, D) -> (S, T)."""

    def one(A):
        def step(d, _):
            return A @ d, jnp.linalg.norm(C @ d)

        return jax.lax.scan(step, kick, steps)[1]

    return jax.vmap(one)(A)


def decay_time(response, dt: float) -> float:
    """First time (s) ||response|| falls below its initial value / e (log-linear interpolation between
    bins); inf when it never does. response (T,) nonnegative."""
    r = np.asarray(response, dtype=float)
    below = np.flatnonzero(r <= r[0] / np.e)
    if below.size == 0:
        return np.inf
    i = below[0]
    lo, hi = np.log(r[i - 1]), np.log(max(r[i], 1e-300))
    frac = (lo - (np.log(r[0]) - 1.0)) / (lo - hi) if lo > hi else 1.0
    return float((i - 1 + frac) * dt)


class PulseResponse(NamedTuple):
    """times (T,) s; response (T,) ||C delta_t|| at the point estimate; decay_time (s); decay_time_samples
    (S,) s under dynamics samples (empty without); interval (2,) central ``level`` interval (NaN without);
    kick (D,) the latent kick."""

    times: np.ndarray
    response: np.ndarray
    decay_time: float
    decay_time_samples: np.ndarray
    interval: np.ndarray
    kick: np.ndarray


def pulse_response(dynamics_weights, emission_weights, neurons, dt: float, *, num_steps: int = 5000,
                   amplitude: float = 1.0, weight_samples=None, level: float = 0.9) -> PulseResponse:
    """Predicted neural response to a one-bin pulse on ``neurons`` under linear dynamics A (D, D) (the
    attractor state's), with the decay-time distribution under weight_samples (S, D, D)."""
    A = np.asarray(dynamics_weights, dtype=float)
    C = np.asarray(emission_weights, dtype=float)
    kick = stimulation_kick(C, neurons, amplitude)
    steps = jnp.zeros(num_steps)
    dtype = jnp.result_type(float)
    resp = np.asarray(_linear_responses(jnp.asarray(A[None], dtype), jnp.asarray(kick, dtype), jnp.asarray(C, dtype),
                                        steps))[0]
    samples, interval = np.zeros(0), np.full(2, np.nan)
    if weight_samples is not None:
        R = np.asarray(_linear_responses(jnp.asarray(weight_samples, dtype), jnp.asarray(kick, dtype),
                                         jnp.asarray(C, dtype), steps))
        samples = np.array([decay_time(r, dt) for r in R])
        tail = 100 * (1 - level) / 2
        interval = np.percentile(samples, [tail, 100 - tail], method="inverted_cdf")  # inf-safe
    return PulseResponse(times=np.arange(num_steps) * dt, response=resp, decay_time=decay_time(resp, dt),
                         decay_time_samples=samples, interval=interval, kick=kick)
