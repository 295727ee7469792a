"""20 ragged trials (50-400 steps) with 10% masked entries: the rSLDS fit runs in padded buckets, the
ELBO improves, masked entries are imputed from the posterior predictive far better than by column means;
save / load round-trips the model and its parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssmneuro
from ssmneuro.models import RSLDS
from ssmneuro.models.simulate import nascar_params


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def fitted():
    with jax.enable_x64(True):
        true_model = RSLDS(4, 2, 8, transitions="recurrent_only")
        p = nascar_params(jax.random.key(0), emission_dim=8, dtype=jnp.float64)
        rng = np.random.default_rng(0)
        lengths = rng.integers(50, 401, size=20)
        ys, ms, xs = [], [], []
        for i, T in enumerate(lengths):  # sampled at the longest length and cut: one compiled sampler
            _, x, y = true_model.sample(p, jax.random.key(100 + i), int(lengths.max()))
            x, y = np.asarray(x)[:T], np.asarray(y)[:T]
            ys.append(y), xs.append(x)
            ms.append(rng.random(y.shape) > 0.1)
        observed = [np.where(m, y, np.nan) for y, m in zip(ys, ms)]
        model = RSLDS(4, 2, 8, transitions="recurrent_only")
        result = model.fit([np.nan_to_num(o) for o in observed], key=jax.random.key(1), masks=ms,
                           num_iters=15, verbose=False)
        return model, result, ys, ms


def test_fit_on_ragged_masked_trials(fitted):
    model, result, ys, ms = fitted
    assert len(result.posterior) == 20
    for post, y in zip(result.posterior, ys):
        assert post.discrete_probs.shape == (y.shape[0], 4)
        assert post.latent_means.shape == (y.shape[0], 2)
        assert post.latent_covs.shape == (y.shape[0], 2, 2)
    assert np.all(np.isfinite(result.elbos))
    assert result.elbos[-1] > result.elbos[0]


def test_imputation_of_masked_entries(fitted):
    model, result, ys, ms = fitted
    with jax.enable_x64(True):
        pred = [model.emission_mean(result.params, p.latent_means) for p in result.posterior]
    Y, M, P = np.concatenate(ys), np.concatenate(ms), np.concatenate([np.asarray(p) for p in pred])
    held = ~M
    col_mean = np.where(M, Y, 0).sum(0) / M.sum(0)
    err = np.mean((P[held] - Y[held]) ** 2)
    baseline = np.mean((np.broadcast_to(col_mean, Y.shape)[held] - Y[held]) ** 2)
    r2 = 1 - err / baseline
    assert r2 > 0.95, r2


def test_save_load_round_trip(fitted, tmp_path):
    model, result, ys, ms = fitted
    path = tmp_path / "rslds.npz"
    ssmneuro.save(path, model, result.params)
    model2, params2 = ssmneuro.load(path)
    assert model2 == model
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(params2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert jax.tree.structure(result.params) == jax.tree.structure(params2)


def test_load_rejects_other_files(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(ValueError, match="not an ssmneuro model file"):
        ssmneuro.load(path)
