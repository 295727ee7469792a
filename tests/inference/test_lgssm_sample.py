"""Posterior samples: parallel == sequential for the same key; moments match the smoother (Monte Carlo)."""

import jax
import numpy as np
import pytest

from ssmneuro.inference.lgssm import kalman_posterior_sample
from tests.inference.lgssm_reference import dense_posterior, random_problem


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def problem():
    prob = random_problem(3, T=6, D=2, N=3, U=1, diagonal=True, mask_frac=0.3)
    _, mean, cov = dense_posterior(*prob)
    return prob, mean, cov


@pytest.fixture(scope="module")
def samples(problem):
    (params, y, u, mask), _, _ = problem
    with jax.enable_x64(True):
        key = jax.random.PRNGKey(0)
        return {par: np.asarray(kalman_posterior_sample(key, params, y, u, mask, parallel=par, num_samples=4000))
                for par in (False, True)}


def test_parallel_sample_equals_sequential_sample(samples):
    np.testing.assert_allclose(samples[True], samples[False], rtol=1e-8, atol=1e-8)


def test_sample_moments_match_dense_posterior(problem, samples):
    """Joint (TD x TD) sample mean/covariance within 5 standard errors of the dense posterior."""
    _, mean, cov = problem
    x = samples[False]
    S = x.shape[0]
    flat = x.reshape(S, -1)
    se_mean = np.sqrt(np.diag(cov) / S)
    assert np.all(np.abs(flat.mean(0) - mean.reshape(-1)) < 5 * se_mean)
    v = np.diag(cov)
    se_cov = np.sqrt((np.outer(v, v) + cov**2) / S)
    assert np.all(np.abs(np.cov(flat.T) - cov) < 5 * se_cov)


def test_single_sample_shape(problem):
    (params, y, u, mask), _, _ = problem
    x = kalman_posterior_sample(jax.random.PRNGKey(1), params, y, u, mask)
    assert x.shape == (6, 2) and np.all(np.isfinite(x))
