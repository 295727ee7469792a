"""Bad input raises a ValueError naming the problem; long float32 runs stay finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.lgssm import LGSSMParams, kalman_filter, kalman_smoother
from tests.inference.lgssm_reference import random_problem


@pytest.fixture(scope="module")
def problem():
    return random_problem(5, T=6, D=2, N=3, U=1, diagonal=True, mask_frac=0.3)


def _raises(match, params, y, u=None, mask=None):
    with pytest.raises(ValueError, match=match):
        kalman_filter(params, y, u, mask)


def test_nan_in_emissions_suggests_mask(problem):
    params, y, u, mask = problem
    y = y.copy()
    y[2, 1] = np.nan
    _raises("emissions contains 1 NaN.*mask", params, y, u)
    y[3, 0] = np.inf
    _raises("emissions contains 2 NaN/inf", params, y, u)


def test_nan_at_masked_entries_is_fine(problem):
    params, y, u, mask = problem
    out = kalman_filter(params, np.where(mask, y, np.nan), u, mask)
    assert np.isfinite(out.log_likelihood)


def test_mismatched_shapes(problem):
    params, y, u, mask = problem
    _raises("emission_matrix has shape \\(4, 2\\)", params._replace(emission_matrix=np.ones((4, 2))), y, u)
    _raises("dynamics_matrix has shape", params._replace(dynamics_matrix=np.eye(3)), y, u)
    _raises("emission_cov has shape", params._replace(emission_cov=np.ones(4)), y, u)
    _raises("emissions must have 2 dimensions", params, y[:, 0], u)
    _raises("inputs=None", params, y)
    _raises("inputs has shape", params, y, u[:-1])


def test_mask_of_wrong_shape(problem):
    params, y, u, mask = problem
    _raises("mask has shape \\(6, 2\\)", params, y, u, mask[:, :2])


def test_non_psd_covariances(problem):
    params, y, u, mask = problem
    _raises("dynamics_cov is not positive definite", params._replace(dynamics_cov=np.diag([1.0, -0.1])), y, u)
    _raises("initial_cov is not symmetric", params._replace(initial_cov=np.array([[1.0, 0.5], [0.0, 1.0]])), y, u)
    _raises("emission_cov must be strictly positive", params._replace(emission_cov=np.array([1.0, 0.0, 1.0])), y, u)
    _raises("emission_cov is not positive definite",
            params._replace(emission_cov=np.array([[1.0, 2.0, 0], [2.0, 1.0, 0], [0, 0, 1.0]])), y, u)


def test_no_checks_under_jit(problem):
    """Inside jit the values are unknown: shapes are still checked, value checks are skipped."""
    params, y, u, mask = problem
    f = jax.jit(lambda y: kalman_filter(params, y, u, mask).log_likelihood)
    assert np.isfinite(f(y))


def _simulate(key, params, T):
    D, N = params.emission_matrix.shape[1], params.emission_matrix.shape[0]
    k1, k2, k3 = jax.random.split(key, 3)
    w = jax.random.normal(k1, (T, D)) @ jnp.linalg.cholesky(params.dynamics_cov).T

    def step(x, w_t):
        x = params.dynamics_matrix @ x + params.dynamics_bias + w_t
        return x, x

    x0 = params.initial_mean + jnp.linalg.cholesky(params.initial_cov) @ jax.random.normal(k2, (D,))
    _, xs = jax.lax.scan(step, x0, w[1:])
    x = jnp.concatenate([x0[None], xs])
    y = x @ params.emission_matrix.T + params.emission_bias + jnp.sqrt(params.emission_cov) * jax.random.normal(k3, (T, N))
    return x, y


@pytest.mark.parametrize("parallel", [False, True])
def test_long_float32_sequence_stays_finite(parallel):
    """T = 10^5, D = 8, N = 50 in float32 (information form; sequential, and parallel under the device's
    schedule): no NaN, sensible estimates."""
    T, D, N = 100_000, 8, 50
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    params = LGSSMParams(np.zeros(D), np.eye(D), 0.99 * Q, np.zeros(D), 0.05 * np.eye(D),
                         rng.normal(size=(N, D)) / np.sqrt(D), rng.normal(size=N), np.full(N, 0.5))
    params = LGSSMParams(*(None if p is None else jnp.asarray(p, jnp.float32) for p in params))
    x, y = _simulate(jax.random.PRNGKey(0), params, T)
    post = kalman_smoother(params, y, parallel=parallel)
    assert post.smoothed_means.dtype == jnp.float32
    for name, value in post._asdict().items():
        assert np.all(np.isfinite(value)), name
    rmse = np.sqrt(np.mean((np.asarray(post.smoothed_means) - np.asarray(x)) ** 2))
    assert rmse < 0.2, rmse  # posterior sd here is about 0.1
