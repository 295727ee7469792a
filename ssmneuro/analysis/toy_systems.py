"""Small dynamical systems with known fixed points and attractors, for tests, docs and demos.

All are pure functions of plain arrays; the switching simulator is a plain-array (r)SLDS sampler so
that the analysis can be checked without the model classes.
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def rotation(theta: float) -> np.ndarray:
    """2-D rotation matrix by angle theta (radians), (2, 2)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


class SwitchingLinear(NamedTuple):
    """Per-state affine maps x_{t+1} = A_k x_t + b_k, plus recurrent transition logits.

    weights:           (K, D, D) A_k
    biases:            (K, D) b_k
    recurrent_weights: (K, D) R, next-state logits R x + r
    recurrent_biases:  (K,) r
    """

    weights: np.ndarray
    biases: np.ndarray
    recurrent_weights: np.ndarray
    recurrent_biases: np.ndarray


def nascar() -> tuple[SwitchingLinear, np.ndarray]:
    """The NASCAR rSLDS of Linderman et al. (2017): two rotations about (+2, 0) and (-2, 0) and two
    straight drives (A = I, b = +-(0.1, 0)) that have no fixed point.

    Returns (system, centres (2, 2)): the fixed points of states 0 and 1.
    """
    A = np.stack([rotation(-np.pi / 24), rotation(-np.pi / 48), np.eye(2), np.eye(2)])  # clockwise
    centres = np.array([[2.0, 0.0], [-2.0, 0.0]])
    b = np.stack([(np.eye(2) - A[0]) @ centres[0], (np.eye(2) - A[1]) @ centres[1],
                  np.array([0.1, 0.0]), np.array([-0.1, 0.0])])
    R = 100.0 * np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    r = 100.0 * np.array([-2.0, -2.0, 0.0, 0.0])
    return SwitchingLinear(A, b, R, r), centres


def bistable_drift(x):
    """Continuous drift with two stable points (+-1, 0) and a saddle at 0: dx = x - x^3, dy = -y."""
    return jnp.stack([x[0] - x[0] ** 3, -x[1]])


def ring_drift(x, radius: float = 1.0):
    """Continuous drift with a ring attractor of the given radius and an unstable point at 0:
    in polar form dr/dt = r (1 - r^2 / radius^2), dtheta/dt = 0, i.e. dx/dt = (1 - |x|^2/radius^2) x."""
    return (1.0 - jnp.sum(x**2) / radius**2) * x


def line_attractor_dynamics(key, latent_dim: int = 3, slow: float = 0.999, fast=(0.9, 0.85)):
    """A dynamics matrix (D, D) with eigenvalues (slow, *fast) and a random non-orthogonal eigenbasis.

    slow = 0.999 and fast <= 0.9 give tau_1 = 99.95 s, tau_2 = 0.949 s at dt = 0.1 s: score 6.72.
    Returns (A, eigenvectors (D, D) columns, eigenvalues (D,)).
    """
    eigenvalues = np.array([slow, *fast], dtype=float)[:latent_dim]
    if eigenvalues.size != latent_dim:
        raise ValueError(f"need {latent_dim} eigenvalues, got {eigenvalues.size}")
    Q = np.asarray(jax.random.orthogonal(key, latent_dim), dtype=float)
    V = Q + 0.3 * np.eye(latent_dim)
    V = V / np.linalg.norm(V, axis=0)
    return V @ np.diag(eigenvalues) @ np.linalg.inv(V), V, eigenvalues


def simulate_switching(key, system: SwitchingLinear, emission_weights, emission_biases, num_timesteps: int,
                       dynamics_std: float, emission_std: float, initial_mean=None, initial_std: float = 1.0,
                       initial_state: int = 0, num_trials: int | None = None):
    """Sample trials of a Gaussian-emission rSLDS from plain arrays.

    z_{t+1} ~ Cat(softmax(R x_t + r)), x_{t+1} = A_{z_{t+1}} x_t + b_{z_{t+1}} + dynamics_std * eps,
    y_t = C x_t + d + emission_std * eta, x_0 ~ N(initial_mean, initial_std^2 I), z_0 = initial_state.
    Returns (z (T,) int, x (T, D), y (T, N)), each with a leading (num_trials,) axis when num_trials is given.
    """
    D = np.shape(system.weights)[-1]
    mean0 = np.zeros(D) if initial_mean is None else np.asarray(initial_mean, dtype=float)
    args = (tuple(jnp.asarray(a) for a in system), jnp.asarray(emission_weights), jnp.asarray(emission_biases),
            dynamics_std, emission_std, jnp.asarray(mean0), initial_std, initial_state)
    if num_trials is None:
        return tuple(np.asarray(a) for a in _simulate(key, *args, num_timesteps))
    keys = jax.random.split(key, num_trials)
    out = jax.vmap(lambda k: _simulate(k, *args, num_timesteps))(keys)
    return tuple(np.asarray(a) for a in out)


@partial(jax.jit, static_argnums=9)
def _simulate(key, system, C, d, dynamics_std, emission_std, mean0, initial_std, initial_state, num_timesteps):
    A, b, R, r = system
    D = A.shape[-1]
    k0, kx, ky = jax.random.split(key, 3)
    x0 = mean0 + initial_std * jax.random.normal(k0, (D,))

    def step(x, k):
        kz, ke = jax.random.split(k)
        z = jax.random.categorical(kz, R @ x + r)
        x = A[z] @ x + b[z] + dynamics_std * jax.random.normal(ke, (D,))
        return x, (z, x)

    _, (z, x) = jax.lax.scan(step, x0, jax.random.split(kx, num_timesteps - 1))
    z = jnp.concatenate([jnp.full((1,), initial_state, dtype=z.dtype), z])
    x = jnp.concatenate([x0[None], x])
    y = x @ C.T + d + emission_std * jax.random.normal(ky, (num_timesteps, C.shape[0]))
    return z, x, y
