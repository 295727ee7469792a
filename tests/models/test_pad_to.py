"""fit(pad_to=(T, N)): the data padded to a fixed shape (one bucket of T steps, masked neurons appended) give
the same fit, and recordings of different sizes then share one compiled program."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models import RSLDS
from ssmneuro.models.simulate import nascar_params


def _nascar(T, N, seed=1, dtype=jnp.float64):
    truth = RSLDS(4, 2, N, transitions="recurrent_only")
    _, _, y = truth.sample(nascar_params(jax.random.key(0), emission_dim=N, dtype=dtype),
                           jax.random.key(seed), T)
    return np.asarray(y)


def test_padded_neurons_give_the_same_fit():
    with jax.enable_x64(True):
        y = _nascar(300, 6)
        model = RSLDS(4, 2, 6, transitions="recurrent_only")
        key = jax.random.key(3)
        plain = model.fit(y, key=key, num_iters=5, verbose=False)
        padded = model.fit(y, key=key, num_iters=5, verbose=False, pad_to=(300, 9))
        np.testing.assert_allclose(padded.elbos, plain.elbos, rtol=1e-9)
        for a, b in zip(padded.params.emissions, plain.params.emissions):
            assert a.shape == b.shape  # the padded neurons are dropped again
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(padded.params.dynamics.weights, plain.params.dynamics.weights, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(padded.posterior[0].latent_means, plain.posterior[0].latent_means,
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(padded.posterior[0].discrete_probs, plain.posterior[0].discrete_probs, atol=1e-8)


def test_recordings_of_different_sizes_compile_once():
    """Two recordings, (250, 6) and (200, 5), both fitted with pad_to=(250, 6): the second fit compiles no
    large program (none over 0.2 s; the first fit compiles several), and it still fits its own data."""
    first, second = _nascar(250, 6, seed=1, dtype=jnp.float32), _nascar(200, 5, seed=2, dtype=jnp.float32)
    compiles = []
    listening = [False]

    def listener(event, duration, **_):
        if listening[0] and event == "/jax/core/compile/backend_compile_duration":
            compiles[-1].append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    results = []
    try:
        for y in (first, second):
            compiles.append([])
            listening[0] = True
            model = RSLDS(4, 2, y.shape[1], transitions="recurrent_only")
            results.append(model.fit(y, key=jax.random.key(0), num_iters=3, verbose=False, pad_to=(250, 6)))
            listening[0] = False
    finally:
        listening[0] = False
    large = [[d for d in c if d > 0.2] for c in compiles]
    assert len(large[0]) >= 2, compiles[0]  # the initialisation and the iteration
    assert large[1] == [], large[1]
    r = results[1]
    assert r.params.emissions.weights.shape == (5, 2) and r.posterior[0].latent_means.shape == (200, 2)
    assert np.all(np.isfinite(r.elbos)) and r.elbos[-1] > r.elbos[0]


def test_pad_to_bad_arguments():
    y = np.random.default_rng(0).normal(size=(50, 3))
    model = RSLDS(2, 2, 3)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="pad_to must be a pair"):
        model.fit(y, key=key, pad_to=60)
    with pytest.raises(ValueError, match="longest trial has 50 steps"):
        model.fit(y, key=key, pad_to=(40, 3))
    with pytest.raises(ValueError, match="the data have 3 neurons"):
        model.fit(y, key=key, pad_to=(50, 2))
    with pytest.raises(ValueError, match="params="):
        model.fit(y, params=model.random_params(key), pad_to=(50, 3))
    with pytest.raises(ValueError, match="emission_cov='full'"):
        RSLDS(2, 2, 3, emission_cov="full").fit(y, key=key, pad_to=(50, 4))
