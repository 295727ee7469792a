"""fit(num_fits=F): F seeded fits advanced together in one vmapped program. Each of them must be the very
fit that ``fit(key=split(key, F)[f])`` gives on its own, and the kept one the best ELBO."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models import LDS, RSLDS
from ssmneuro.models.simulate import nascar_params


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _nascar(T=300, N=6):
    truth = RSLDS(4, 2, N, transitions="recurrent_only")
    _, _, y = truth.sample(nascar_params(jax.random.key(0), emission_dim=N, dtype=jnp.float64),
                           jax.random.key(1), T)
    return np.asarray(y)


@pytest.mark.parametrize("kind", ["rslds", "lds"])
def test_batched_fits_equal_separate_fits(kind):
    with jax.enable_x64(True):
        y = _nascar()
        model = (RSLDS(4, 2, y.shape[1], transitions="recurrent_only") if kind == "rslds"
                 else LDS(2, y.shape[1]))
        key, F, iters = jax.random.key(7), 3, 6
        many = model.fit(y, key=key, num_iters=iters, num_fits=F, verbose=False)
        assert many.all_elbos.shape == (F, iters)
        singles = [model.fit(y, key=k, num_iters=iters, verbose=False) for k in jax.random.split(key, F)]
        for f, single in enumerate(singles):
            np.testing.assert_allclose(many.all_elbos[f], single.elbos, rtol=1e-10)
        if kind == "rslds":  # the seeds really differ (the LDS initialisation is deterministic: PCA)
            assert np.ptp(np.stack([s.elbos for s in singles]), axis=0).max() > 1e-3  # >> the 1e-10 above
        best = [s.elbos[s.best_iteration] for s in singles]
        assert many.kept_fit == int(np.argmax(best))
        kept = singles[many.kept_fit]
        np.testing.assert_allclose(many.elbos, kept.elbos, rtol=1e-10)
        assert many.best_iteration == kept.best_iteration
        np.testing.assert_allclose(many.params.dynamics.weights, kept.params.dynamics.weights, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(many.posterior[0].latent_means, kept.posterior[0].latent_means,
                                   rtol=1e-6, atol=1e-9)


def test_num_fits_bad_arguments():
    model = RSLDS(2, 2, 3)
    y = np.random.default_rng(0).normal(size=(50, 3))
    with pytest.raises(ValueError, match="num_fits"):
        model.fit(y, key=jax.random.key(0), num_fits=0)
    with pytest.raises(ValueError, match="num_fits > 1 needs key"):
        model.fit(y, num_fits=2)
