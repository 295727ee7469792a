"""Simulated data sets: NASCAR (Linderman et al. 2017, the rSLDS paper's example)."""

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.models.components import emissions as em
from ssmneuro.models.components.transitions import RecurrentTransitions
from ssmneuro.models.params import DynamicsParams, InitialParams, SLDSParams


def _rotation(theta):
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def nascar_params(key, emission_dim=10, dynamics_var=1e-4, emission_var=1e-2, dtype=jnp.float32):
    """The NASCAR rSLDS (K=4, D=2, recurrent_only transitions).

    States: 0 rotates clockwise about (+2, 0) (where x1 > 2), 1 about (-2, 0) (where x1 < -2),
    2 translates right by 0.1 (x2 > 0), 3 left by 0.25 (x2 < 0). Logits R x + r with
    R = [100 e1, -100 e1, 10 e2, -10 e2], r = [-200, -200, 0, 0] (hyperplanes x1 = +-2, x2 = 0).
    x_0 ~ N((0, 1), 1e-4 I); emissions y = C x + d + N(0, emission_var I), C, d standard normal.
    """
    As = [_rotation(-np.pi / 24), _rotation(-np.pi / 48), np.eye(2), np.eye(2)]
    centers = [np.array([2.0, 0.0]), np.array([-2.0, 0.0])]
    bs = [(np.eye(2) - A) @ c for A, c in zip(As[:2], centers)] + [np.array([0.1, 0.0]), np.array([-0.25, 0.0])]
    R = np.array([[100.0, 0.0], [-100.0, 0.0], [0.0, 10.0], [0.0, -10.0]])
    r = np.array([-200.0, -200.0, 0.0, 0.0])
    K, D, N = 4, 2, emission_dim
    kc, kd = jax.random.split(key)
    cast = lambda a: jnp.asarray(a, dtype)
    initial = InitialParams(cast(np.full(K, 1.0 / K)), cast(np.tile([0.0, 1.0], (K, 1))),
                            cast(np.tile(1e-4 * np.eye(D), (K, 1, 1))))
    transitions = RecurrentTransitions(cast(np.zeros((K, K))), cast(np.zeros((K, 0))), cast(R), cast(r))
    dynamics = DynamicsParams(cast(np.stack(As)), cast(np.zeros((K, D, 0))), cast(np.stack(bs)),
                              cast(np.tile(dynamics_var * np.eye(D), (K, 1, 1))))
    emissions = em.gaussian.Params(jax.random.normal(kc, (N, D), dtype), jax.random.normal(kd, (N,), dtype),
                                   jnp.full((N,), emission_var, dtype))
    return SLDSParams(initial, transitions, dynamics, emissions)


def nascar(key, num_timesteps=10_000, emission_dim=10, dtype=jnp.float32):
    """-> (model, true params, z (T,), x (T, 2), y (T, N)) of the NASCAR example."""
    from ssmneuro.models.slds import RSLDS

    model = RSLDS(num_states=4, latent_dim=2, emission_dim=emission_dim, transitions="recurrent_only")
    kp, ks = jax.random.split(key)
    params = nascar_params(kp, emission_dim, dtype=dtype)
    z, x, y = model.sample(params, ks, num_timesteps)
    return model, params, z, x, y


def state_accuracy(true_states, states, num_states):
    """Fraction of steps where the states agree after the best relabelling (Hungarian on the confusion)."""
    from scipy.optimize import linear_sum_assignment

    true_states, states = np.asarray(true_states), np.asarray(states)
    K = max(num_states, int(true_states.max()) + 1, int(states.max()) + 1)
    confusion = np.zeros((K, K))
    np.add.at(confusion, (states, true_states), 1)
    rows, cols = linear_sum_assignment(-confusion)
    return confusion[rows, cols].sum() / len(states)


def latent_r2(true_latents, latents):
    """R^2 of the true latents (T, D) regressed on the inferred ones plus a constant (affine alignment)."""
    X = np.c_[np.asarray(latents), np.ones(len(latents))]
    Y = np.asarray(true_latents)
    W = np.linalg.lstsq(X, Y, rcond=None)[0]
    return 1.0 - ((Y - X @ W) ** 2).sum() / ((Y - Y.mean(0)) ** 2).sum()
