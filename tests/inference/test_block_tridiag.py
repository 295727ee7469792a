"""Block-tridiagonal Gaussian chains against the dense TD x TD Gaussian (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.block_tridiag import (
    block_tridiag_posterior,
    block_tridiag_sample,
    block_tridiag_solve,
)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def random_chain(rng, T, D, scale=1.0):
    """J = L L^T with L block lower-bidiagonal: a generic PD block-tridiagonal precision."""
    L = np.zeros((T * D, T * D))
    for t in range(T):
        L[t * D:(t + 1) * D, t * D:(t + 1) * D] = np.tril(rng.normal(size=(D, D)), -1) + np.diag(1.0 + np.abs(rng.normal(size=D)))
        if t + 1 < T:
            L[(t + 1) * D:(t + 2) * D, t * D:(t + 1) * D] = scale * rng.normal(size=(D, D))
    J = L @ L.T
    J_diag = np.stack([J[t * D:(t + 1) * D, t * D:(t + 1) * D] for t in range(T)])
    J_lower = np.array([J[(t + 1) * D:(t + 2) * D, t * D:(t + 1) * D] for t in range(T - 1)]).reshape(T - 1, D, D)
    h = rng.normal(size=(T, D))
    return J, J_diag, J_lower, h


def dense_reference(J, h, T, D):
    Sigma = np.linalg.inv(J)
    mean = Sigma @ h.reshape(-1)
    logdet = np.linalg.slogdet(J)[1]
    covs = np.stack([Sigma[t * D:(t + 1) * D, t * D:(t + 1) * D] for t in range(T)])
    cross = np.array([Sigma[(t + 1) * D:(t + 2) * D, t * D:(t + 1) * D] for t in range(T - 1)]).reshape(T - 1, D, D)
    log_norm = 0.5 * h.reshape(-1) @ mean - 0.5 * logdet + 0.5 * T * D * math.log(2 * math.pi)
    return mean.reshape(T, D), covs, cross, logdet, log_norm, Sigma


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("T,D", [(7, 3), (1, 2), (2, 1)])
def test_posterior_equals_dense(parallel, T, D):
    rng = np.random.default_rng(T * 10 + D)
    J, J_diag, J_lower, h = random_chain(rng, T, D)
    mean, covs, cross, logdet, log_norm, _ = dense_reference(J, h, T, D)
    post = block_tridiag_posterior(J_diag, J_lower, h, parallel=parallel)
    np.testing.assert_allclose(post.means, mean, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(post.covs, covs, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(post.cross_covs, cross, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(post.log_det_precision, logdet, atol=1e-8, rtol=1e-10)
    np.testing.assert_allclose(post.log_normalizer, log_norm, atol=1e-8, rtol=1e-10)
    np.testing.assert_array_equal(post.covs, np.swapaxes(post.covs, -1, -2))
    assert post.cross_covs.shape == (T - 1, D, D)


@pytest.mark.parametrize("parallel", [False, True])
def test_solve_equals_dense(parallel):
    rng = np.random.default_rng(1)
    T, D = 9, 3
    J, J_diag, J_lower, _ = random_chain(rng, T, D, scale=2.0)
    rhs = rng.normal(size=(T, D))
    x = block_tridiag_solve(J_diag, J_lower, rhs, parallel=parallel)
    np.testing.assert_allclose(x, np.linalg.solve(J, rhs.reshape(-1)).reshape(T, D), atol=1e-8, rtol=1e-8)


def test_parallel_equals_sequential_long_chain():
    rng = np.random.default_rng(2)
    T, D = 100, 4
    J, J_diag, J_lower, h = random_chain(rng, T, D, scale=0.5)
    assert np.linalg.cond(J) < 1e5  # well-posed: both orders then agree to ~cond * eps
    seq = block_tridiag_posterior(J_diag, J_lower, h, parallel=False)
    par = block_tridiag_posterior(J_diag, J_lower, h, parallel=True)
    for a, b in zip(seq, par):
        np.testing.assert_allclose(a, b, atol=1e-8, rtol=1e-8)
    x_seq = block_tridiag_solve(J_diag, J_lower, h, parallel=False)
    x_par = block_tridiag_solve(J_diag, J_lower, h, parallel=True)
    np.testing.assert_allclose(x_par, x_seq, atol=1e-8, rtol=1e-8)
    np.testing.assert_allclose(x_seq, seq.means, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("parallel", [False, True])
def test_samples_match_mean_and_cov(parallel):
    rng = np.random.default_rng(3)
    T, D, S = 5, 2, 40_000
    J, J_diag, J_lower, h = random_chain(rng, T, D)
    mean, _, _, _, _, Sigma = dense_reference(J, h, T, D)
    samples = block_tridiag_sample(jax.random.PRNGKey(0), J_diag, J_lower, h, num_samples=S, parallel=parallel)
    assert samples.shape == (S, T, D)
    flat = np.asarray(samples).reshape(S, -1)
    # 5 standard errors of the sample mean and of each sample covariance entry
    mean_se = np.sqrt(np.diag(Sigma) / S)
    assert np.all(np.abs(flat.mean(0) - mean.reshape(-1)) < 5 * mean_se)
    cov_se = np.sqrt((np.outer(np.diag(Sigma), np.diag(Sigma)) + Sigma**2) / S)
    assert np.all(np.abs(np.cov(flat.T) - Sigma) < 5 * cov_se)
    one = block_tridiag_sample(jax.random.PRNGKey(1), J_diag, J_lower, h, parallel=parallel)
    assert one.shape == (T, D)


@pytest.mark.parametrize("parallel", [False, True])
def test_log_normalizer_gradient_matches_finite_differences(parallel):
    rng = np.random.default_rng(6)
    T, D = 6, 2
    _, J_diag, J_lower, h = random_chain(rng, T, D)

    def f(Jd, Jl, hh):
        return block_tridiag_posterior(Jd, Jl, hh, parallel=parallel).log_normalizer

    grads = jax.grad(f, argnums=(0, 1, 2))(J_diag, J_lower, h)
    dJd = rng.normal(size=J_diag.shape)
    dJd = dJd + np.swapaxes(dJd, -1, -2)
    dJl, dh = rng.normal(size=J_lower.shape), rng.normal(size=h.shape)
    eps = 1e-5
    fd = (f(J_diag + eps * dJd, J_lower + eps * dJl, h + eps * dh)
          - f(J_diag - eps * dJd, J_lower - eps * dJl, h - eps * dh)) / (2 * eps)
    directional = sum(np.sum(g * d) for g, d in zip(grads, (dJd, dJl, dh)))
    np.testing.assert_allclose(directional, fd, rtol=1e-7, atol=1e-8)
    # analytic: d/dh = E[x]
    post = block_tridiag_posterior(J_diag, J_lower, h, parallel=parallel)
    np.testing.assert_allclose(grads[2], post.means, atol=1e-10)


def test_float32_long_chain_is_finite_and_close_to_float64():
    rng = np.random.default_rng(7)
    T, D = 500, 3
    _, J_diag, J_lower, h = random_chain(rng, T, D, scale=0.5)
    ref = block_tridiag_posterior(J_diag, J_lower, h)
    with jax.enable_x64(False):
        for parallel in (False, True):
            post = block_tridiag_posterior(
                J_diag.astype(np.float32), J_lower.astype(np.float32), h.astype(np.float32), parallel=parallel)
            assert post.means.dtype == jnp.float32
            assert all(bool(jnp.all(jnp.isfinite(x))) for x in post)
            np.testing.assert_allclose(post.means, ref.means, atol=1e-3, rtol=1e-3)
            np.testing.assert_allclose(post.covs, ref.covs, atol=1e-3, rtol=1e-3)
            np.testing.assert_allclose(post.log_normalizer, ref.log_normalizer, rtol=1e-4)


def test_bad_input_raises():
    rng = np.random.default_rng(8)
    _, J_diag, J_lower, h = random_chain(rng, 4, 2)
    with pytest.raises(ValueError, match="J_lower"):
        block_tridiag_posterior(J_diag, J_lower[:-1], h)
    with pytest.raises(ValueError, match="J_diag"):
        block_tridiag_posterior(J_diag[:, :1], J_lower, h)
    with pytest.raises(ValueError, match=r"\(T, D\)"):
        block_tridiag_posterior(J_diag, J_lower, h[0])
    h_bad = h.copy()
    h_bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        block_tridiag_posterior(J_diag, J_lower, h_bad)
    with pytest.raises(ValueError, match="positive definite"):
        block_tridiag_posterior(-J_diag, J_lower, h)
    with pytest.raises(ValueError, match="positive definite"):
        block_tridiag_solve(-J_diag, J_lower, h)


def test_works_under_jit_and_vmap():
    rng = np.random.default_rng(9)
    chains = [random_chain(rng, 5, 2)[1:] for _ in range(3)]
    J_diag, J_lower, h = (np.stack(x) for x in zip(*chains))
    batched = jax.jit(jax.vmap(lambda a, b, c: block_tridiag_posterior(a, b, c).means))(J_diag, J_lower, h)
    for i in range(3):
        np.testing.assert_allclose(batched[i], block_tridiag_posterior(J_diag[i], J_lower[i], h[i]).means, atol=1e-12)
