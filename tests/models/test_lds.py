"""Gaussian LDS: exact marginal likelihood (vs a dense Gaussian), EM never decreases it, and recovers the
dynamics eigenvalues from a seeded simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from ssmneuro.models import LDS


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def rotation_params(model, key, theta=0.1, rho=0.98, q=0.01):
    p = model.random_params(key, jnp.float64)
    A = rho * jnp.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return p._replace(dynamics=p.dynamics._replace(weights=A[None], biases=jnp.array([[0.05, -0.02]]),
                                                   covs=q * jnp.eye(2)[None]))


def dense_log_likelihood(p, y):
    """log p(y) from the joint Gaussian of (x_1..x_T) built explicitly."""
    T, N = y.shape
    A, b, Q = (np.asarray(a[0]) for a in (p.dynamics.weights, p.dynamics.biases, p.dynamics.covs))
    m0, S0 = np.asarray(p.initial.means[0]), np.asarray(p.initial.covs[0])
    C, d, r = (np.asarray(a) for a in (p.emissions.weights, p.emissions.biases, p.emissions.covs))
    D = A.shape[0]
    means, covs = [m0], {(0, 0): S0}
    for t in range(1, T):
        means.append(A @ means[-1] + b)
        covs[(t, t)] = A @ covs[(t - 1, t - 1)] @ A.T + Q
    Sx = np.zeros((T * D, T * D))
    for s in range(T):
        for t in range(s, T):
            block = np.linalg.matrix_power(A, t - s) @ covs[(s, s)]
            Sx[t * D:(t + 1) * D, s * D:(s + 1) * D] = block
            Sx[s * D:(s + 1) * D, t * D:(t + 1) * D] = block.T
    Cbig = np.kron(np.eye(T), C)
    mean_y = Cbig @ np.concatenate(means) + np.tile(d, T)
    cov_y = Cbig @ Sx @ Cbig.T + np.diag(np.tile(r, T))
    return multivariate_normal(mean_y, cov_y).logpdf(y.reshape(-1))


def test_exact_log_likelihood_matches_dense_gaussian():
    model = LDS(latent_dim=2, emission_dim=3)
    p = rotation_params(model, jax.random.key(0))
    _, _, y = model.sample(p, jax.random.key(1), 25)
    y = np.asarray(y)
    np.testing.assert_allclose(model.elbo(p, y), dense_log_likelihood(p, y), rtol=1e-10)


@pytest.fixture(scope="module")
def lds_fit():
    with jax.enable_x64(True):
        model = LDS(latent_dim=2, emission_dim=5)
        p = rotation_params(model, jax.random.key(1))
        _, _, y = model.sample(p, jax.random.key(2), 1000)
        result = model.fit(np.asarray(y), key=jax.random.key(3), num_iters=300, verbose=False)
        return p, result


def test_em_log_likelihood_never_decreases(lds_fit):
    _, result = lds_fit
    assert result.rejected == []
    assert np.all(np.diff(result.elbos) >= -1e-8 * np.abs(result.elbos[1:])), np.diff(result.elbos).min()


def test_em_recovers_dynamics_eigenvalues(lds_fit):
    p, result = lds_fit
    true = np.sort_complex(np.linalg.eigvals(np.asarray(p.dynamics.weights[0])))
    fit = np.sort_complex(np.linalg.eigvals(np.asarray(result.params.dynamics.weights[0])))
    assert np.max(np.abs(true - fit)) < 0.02, (true, fit)
