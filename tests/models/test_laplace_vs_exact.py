"""Laplace-EM with Gaussian emissions and K = 1 gives exact EM's posterior and log-likelihood (1e-6),
on ragged, padded, partly masked trials; one Laplace-EM iteration gives exact EM's M-step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models import LDS
from ssmneuro.models.fitting.em import exact_em_iteration, exact_posterior
from ssmneuro.models.fitting.laplace_em import laplace_em_iteration, laplace_posterior


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def case():
    with jax.enable_x64(True):
        model = LDS(latent_dim=2, emission_dim=4, input_dim=1)
        p = model.random_params(jax.random.key(0), jnp.float64)
        A = 0.95 * jnp.array([[np.cos(0.2), -np.sin(0.2)], [np.sin(0.2), np.cos(0.2)]])
        p = p._replace(dynamics=p.dynamics._replace(weights=A[None], input_weights=jnp.ones((1, 2, 1)),
                                                    biases=jnp.array([[0.1, 0.0]])))
        ys, us, ms = [], [], []
        rng = np.random.default_rng(0)
        for i, T in enumerate([30, 45, 17]):
            u = rng.normal(size=(T, 1))
            _, _, y = model.sample(p, jax.random.key(10 + i), T, inputs=u)
            ys.append(np.asarray(y)), us.append(u), ms.append(rng.random((T, 4)) > 0.1)
        _, _, _, batches, groups = model._prepare(ys, us, ms, max_buckets=2)
        return model, p, batches


def test_laplace_posterior_equals_kalman_smoother(case):
    model, p, batches = case
    exact, ll = exact_posterior(model, p, batches)
    qs = model._flat_posteriors(p, batches)
    approx, elbo = laplace_posterior(model, p, batches, qs, num_sweeps=1)
    assert len(batches) >= 1
    for e, a, b in zip(exact, approx, batches):
        v = np.asarray(b.valid) > 0
        np.testing.assert_allclose(a.latent_means[v], e.latent_means[v], rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(a.latent_covs[v], e.latent_covs[v], rtol=1e-6, atol=1e-8)
        v1 = v[:, 1:]
        np.testing.assert_allclose(a.latent_cross_covs[v1], e.latent_cross_covs[v1], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(float(elbo), float(ll), rtol=1e-6)


def test_laplace_em_step_equals_exact_em_step(case):
    model, p, batches = case
    new_exact, _, _ = exact_em_iteration(model, p, batches)
    qs = model._flat_posteriors(p, batches)
    new_laplace, _, _ = laplace_em_iteration(model, p, batches, qs)
    for a, b in zip(jax.tree.leaves(new_laplace), jax.tree.leaves(new_exact)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)
