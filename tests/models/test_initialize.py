"""The AR-HMM start of the default initialisation: k-means groups time steps by their dynamics, not by
where a slow drift has carried the latents."""

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.models.fitting.data import TrialBatch
from ssmneuro.models.fitting.initialize import _kmeans_labels


def test_kmeans_start_follows_the_steps_not_a_slow_drift():
    # one latent dimension drifts steadily over the recording; the other alternates between two regimes
    # (steps +0.5 and -0.5, 25 steps each). Clustering (x_t, x_{t+1} - x_t), the former features, cut the
    # recording in time for 2 of these 5 keys (agreement 0.57-0.58).
    T = 400
    rng = np.random.default_rng(0)
    regime = (np.arange(T) // 25) % 2
    zigzag = np.cumsum(np.where(regime == 0, 0.5, -0.5) + 0.05 * rng.standard_normal(T))
    drift = np.linspace(0.0, 10.0, T)
    x = np.stack([drift, zigzag], -1) + 0.01 * rng.standard_normal((T, 2))
    xs = (jnp.asarray(x[None], jnp.float32),)
    zeros = jnp.zeros((1, T, 1), jnp.float32)
    batch = TrialBatch(zeros, zeros, jnp.ones((1, T, 1)), zeros[..., :0], jnp.ones((1, T), jnp.float32))
    # the label at t describes the step x_{t-1} -> x_t, taken in regime[t] (t = 0 repeats the first step)
    step_regime = np.concatenate([regime[1:2], regime[1:]])
    for key in jax.random.split(jax.random.key(0), 5):
        labels = np.asarray(_kmeans_labels(key, xs, (batch,), 2)[0][0])
        agreement = max(np.mean(labels == step_regime), np.mean(labels != step_regime))
        assert agreement >= 0.95, agreement
