"""The AR-HMM start of the default initialisation: k-means groups time steps by their dynamics, not by
where a slow drift has carried the latents."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models.fitting.data import TrialBatch
from ssmneuro.models.fitting.initialize import KMEANS_WINDOW, _kmeans_labels, _windowed_steps


def test_kmeans_start_follows_the_steps_not_a_slow_drift():
    # two latent dimensions drift steadily over the recording; the third alternates between two regimes
    # (steps +0.5 and -0.5, 25 steps each). Clustering (x_t, x_{t+1} - x_t), the former features, cuts the
    # recording in time for all 5 keys (agreement 0.525, even with the best of 4 k-means++ starts), since the
    # drifting positions outweigh the one switching step. The features average the next 4 steps, which blurs
    # about 1.5 of the 25 steps after each switch: 0.942.
    T = 400
    rng = np.random.default_rng(0)
    regime = (np.arange(T) // 25) % 2
    zigzag = np.cumsum(np.where(regime == 0, 0.5, -0.5) + 0.05 * rng.standard_normal(T))
    drifts = [np.linspace(0.0, 10.0, T), np.linspace(0.0, 20.0, T)]
    x = np.stack(drifts + [zigzag], -1) + 0.01 * rng.standard_normal((T, 3))
    xs = (jnp.asarray(x[None], jnp.float32),)
    zeros = jnp.zeros((1, T, 1), jnp.float32)
    batch = TrialBatch(zeros, zeros, jnp.ones((1, T, 1)), zeros[..., :0], jnp.ones((1, T), jnp.float32))
    # the label at t describes the step x_{t-1} -> x_t, taken in regime[t] (t = 0 repeats the first step)
    step_regime = np.concatenate([regime[1:2], regime[1:]])
    for key in jax.random.split(jax.random.key(0), 5):
        labels = np.asarray(_kmeans_labels(key, xs, (batch,), 2)[0][0])
        agreement = max(np.mean(labels == step_regime), np.mean(labels != step_regime))
        assert agreement >= 0.93, agreement


def test_windowed_steps_average_the_next_steps_within_each_trial():
    # two padded trials of lengths 7 and 4 in one bucket of 7 steps, x_t = t^2 (so every window differs)
    t = np.arange(7.0)
    x = np.stack([t**2, np.where(t < 4, -(t**2), 99.0)])[..., None]
    valid = np.array([[1.0] * 7, [1.0] * 4 + [0.0] * 3])
    got = np.asarray(_windowed_steps(jnp.asarray(x), jnp.asarray(valid), KMEANS_WINDOW))[..., 0]
    w = KMEANS_WINDOW
    for b, n in enumerate([7, 4]):
        for s in range(n - 1):
            k = min(w, n - 1 - s)
            np.testing.assert_allclose(got[b, s], (x[b, s + k, 0] - x[b, s, 0]) / k)


def test_kmeans_window_is_validated_and_changes_the_start():
    from ssmneuro.models import RSLDS
    from ssmneuro.models.simulate import nascar

    model, params, _, _, y = nascar(jax.random.key(0), 300)
    with pytest.raises(ValueError, match="kmeans_window"):
        model.initialize(jax.random.key(1), y, kmeans_window=0)
    a, b = (model.initialize(jax.random.key(1), y, kmeans_window=w) for w in (1, 4))
    assert not np.allclose(a.dynamics.weights, b.dynamics.weights)
