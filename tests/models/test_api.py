"""Public API: configuration and data validation (clear ValueErrors), sampling shapes, transition logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssmneuro
from ssmneuro.models import LDS, RSLDS, SLDS


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_top_level_names():
    assert ssmneuro.LDS is LDS and ssmneuro.RSLDS is RSLDS and ssmneuro.SLDS is SLDS
    assert callable(ssmneuro.save) and callable(ssmneuro.load)


@pytest.mark.parametrize("kwargs,match", [
    (dict(emissions="gamma"), "emissions='gamma'"),
    (dict(transitions="hsmm"), "transitions='hsmm'"),
    (dict(dynamics_cov="banded"), "dynamics_cov"),
    (dict(link="relu"), "link"),
    (dict(latent_dim=0), "latent_dim"),
])
def test_bad_configuration(kwargs, match):
    args = dict(num_states=2, latent_dim=2, emission_dim=3) | kwargs
    with pytest.raises(ValueError, match=match):
        RSLDS(**args)


@pytest.mark.parametrize("data,match", [
    (np.zeros((10, 4)), r"expected \(T, 3\)"),
    (np.full((10, 3), np.nan), "NaN or inf"),
    (np.zeros((1, 3)), "at least 2 time steps"),
    ([], "data is empty"),
])
def test_bad_data(data, match):
    with pytest.raises(ValueError, match=match):
        SLDS(2, 2, 3).fit(data, key=jax.random.key(0), num_iters=1, verbose=False)


def test_bad_counts_and_masks():
    with pytest.raises(ValueError, match="non-negative"):
        LDS(2, 3, emissions="poisson").fit(-np.ones((10, 3)), key=jax.random.key(0), verbose=False)
    with pytest.raises(ValueError, match="masks shape"):
        LDS(2, 3).fit(np.zeros((10, 3)), key=jax.random.key(0), masks=np.ones((9, 3), bool), verbose=False)
    with pytest.raises(ValueError, match="input_dim=1"):
        LDS(2, 3, input_dim=1).fit(np.zeros((10, 3)), key=jax.random.key(0), verbose=False)
    with pytest.raises(ValueError, match="key"):
        LDS(2, 3).fit(np.zeros((10, 3)), verbose=False)


@pytest.mark.parametrize("emissions", ["gaussian", "poisson", "bernoulli", "calcium"])
def test_sample_shapes_and_support(emissions):
    model = RSLDS(3, 2, 4, emissions=emissions, input_dim=1)
    p = model.random_params(jax.random.key(0), jnp.float64)
    z, x, y = model.sample(p, jax.random.key(1), 50, inputs=np.zeros((50, 1)))
    assert z.shape == (50,) and x.shape == (50, 2) and y.shape == (50, 4)
    assert np.all((np.asarray(z) >= 0) & (np.asarray(z) < 3))
    if emissions in ("poisson", "bernoulli"):
        assert np.all(np.asarray(y) >= 0)
    assert model.emission_mean(p, x).shape == (50, 4)


def test_transition_logits():
    from ssmneuro.models.simulate import nascar_params

    model = RSLDS(4, 2, 10, transitions="recurrent_only")
    p = nascar_params(jax.random.key(0), dtype=jnp.float64)
    assert int(jnp.argmax(model.transition_logits(p, jnp.array([3.0, 0.5])))) == 0
    assert int(jnp.argmax(model.transition_logits(p, jnp.array([-3.0, 0.5])))) == 1
    assert int(jnp.argmax(model.transition_logits(p, jnp.array([0.0, 1.0])))) == 2
    assert int(jnp.argmax(model.transition_logits(p, jnp.array([0.0, -1.0])))) == 3
    sticky = SLDS(3, 2, 4, transitions="sticky")
    ps = sticky.random_params(jax.random.key(0), jnp.float64)
    np.testing.assert_allclose(jnp.exp(sticky.transition_logits(ps, jnp.zeros(2))), np.full(3, 1 / 3), atol=1e-8)
