"""Kernels in whitened feature form and their Gaussian expectations, against direct formulas (float64)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models.gp.expectations import (
    drift_moments,
    feature_moments,
    gauss_hermite,
    rbf_feature_moments_analytic,
)
from ssmneuro.models.gp.kernels import RBF, SSL, Linear, Sum, gram, kernel_by_name


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def ssl_direct(x, y, centers, w, s02, W, tau):
    """k(x,y) = sum_j pi_j(x) pi_j(y) [(x-c_j)^T diag(w) (y-c_j) + s0^2], written out with numpy."""

    def pi(z):
        logits = np.append(W.T @ np.append(1.0, z), 0.0) / tau
        e = np.exp(logits - logits.max())
        return e / e.sum()

    return sum(pi(x)[j] * pi(y)[j] * ((x - c) @ np.diag(w) @ (y - c) + s02) for j, c in enumerate(centers))


def test_ssl_kernel_and_features_match_the_formula():
    kern = SSL(num_regimes=3, tau=0.3)
    p = kern.init_params(2, jax.random.PRNGKey(0), weight=0.7, bias=1.3, center_scale=1.0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 2)) * 2
    direct = np.array([[ssl_direct(x, y, np.asarray(p.centers), np.exp(np.asarray(p.log_weights)),
                                   float(np.exp(p.log_bias)), np.asarray(p.boundary_weights), 0.3) for y in X] for x in X])
    A, c = jax.jit(kern.features)(p, jnp.asarray(X))
    np.testing.assert_allclose(jax.jit(gram, static_argnums=0)(kern, p, jnp.asarray(X), jnp.asarray(X)), direct, rtol=1e-12)
    np.testing.assert_allclose(A @ A.T, direct, rtol=1e-12)
    assert A.shape == (6, kern.num_features(2)) and np.all(c == 0)


def test_linear_features_exact_and_sum_concatenates():
    lin, ssl = Linear(), SSL(2)
    pl = lin.init_params(3, weight=2.0, bias=0.5)._replace(center=jnp.array([0.1, -0.2, 0.3]))
    ps = ssl.init_params(3, jax.random.PRNGKey(1))
    X = jnp.asarray(np.random.default_rng(1).normal(size=(5, 3)))
    A, _ = jax.jit(lin.features)(pl, X)
    np.testing.assert_allclose(A @ A.T, jax.jit(gram, static_argnums=0)(lin, pl, X, X), rtol=1e-12)
    s = Sum((lin, ssl))
    A, c = jax.jit(s.features)((pl, ps), X)
    np.testing.assert_allclose(A @ A.T, jax.jit(gram, static_argnums=0)(s, (pl, ps), X, X), rtol=1e-12)


def test_rbf_inducing_features_reproduce_kernel_at_inducing_points():
    kern = RBF(jitter=1e-10)
    p = kern.init_params(2, lengthscale=1.2, variance=2.0)
    Z = jnp.asarray(np.random.default_rng(2).normal(size=(7, 2)) * 1.5)
    feats = jax.jit(kern.features)
    A, c = feats(p, Z, Z)
    np.testing.assert_allclose(A @ A.T, jax.jit(gram, static_argnums=0)(kern, p, Z, Z), atol=1e-7)
    assert np.all(np.asarray(c) < 1e-7)
    X = jnp.asarray(np.random.default_rng(3).normal(size=(4, 2)) * 4)  # far points: residual carries the variance
    A, c = feats(p, X, Z)
    np.testing.assert_allclose(np.sum(A**2, 1) + c, 2.0, rtol=1e-10)


def test_gauss_hermite_exact_for_low_degree_polynomials():
    q = gauss_hermite(2, 3)
    nodes, w = np.asarray(q.nodes), np.asarray(q.weights)
    for i, j in itertools.product(range(6), repeat=2):
        exact = (0 if i % 2 else np.prod(np.arange(i - 1, 0, -2))) * (0 if j % 2 else np.prod(np.arange(j - 1, 0, -2)))
        assert abs(w @ (nodes[:, 0] ** i * nodes[:, 1] ** j) - exact) < 1e-10


def test_rbf_feature_moments_quadrature_matches_closed_form():
    kern = RBF(jitter=1e-8)
    p = kern.init_params(2, lengthscale=1.5, variance=1.7)
    Z = jnp.asarray(np.random.default_rng(4).normal(size=(9, 2)))
    m, S = jnp.array([0.3, -0.5]), jnp.array([[0.2, 0.05], [0.05, 0.1]])
    quad = jax.jit(lambda p, Z, m, S: feature_moments(lambda X: kern.features(p, X, Z), m, S, gauss_hermite(2, 12)))(p, Z, m, S)
    A1, Ax, A2 = jax.jit(rbf_feature_moments_analytic, static_argnums=2)(p, Z, 1e-8, m, S)
    np.testing.assert_allclose(quad.mean, A1, atol=1e-8)
    np.testing.assert_allclose(quad.cross, Ax, atol=1e-8)
    np.testing.assert_allclose(quad.second, A2, atol=1e-8)


def test_drift_moments_of_a_linear_drift_are_exact():
    """f(x) = A x + b (linear kernel, point-mass q(v)): F = A m + b, P = S A^T, E f_d^2 = F_d^2 + (A S A^T)_dd + var."""
    lin = Linear()
    p = lin.init_params(2)
    A = jnp.array([[-1.0, 2.0], [-0.5, 0.3]])
    b = jnp.array([0.2, -1.0])
    means = jnp.concatenate([A.T, b[None]])
    covs = jnp.stack([0.1 * jnp.eye(3), 0.2 * jnp.eye(3)])
    m, S = jnp.array([0.5, 1.0]), jnp.array([[0.3, 0.1], [0.1, 0.2]])
    mom = jax.jit(lambda *a: drift_moments(lambda X: lin.features(p, X), *a, gauss_hermite(2, 2)))(means, covs, m, S)
    np.testing.assert_allclose(mom.mean, A @ m + b, rtol=1e-12)
    np.testing.assert_allclose(mom.cross, S @ A.T, rtol=1e-12)
    e_aa = np.block([[S + np.outer(m, m), m[:, None]], [m[None], np.ones((1, 1))]])
    expect = (A @ m + b) ** 2 + np.diag(A @ S @ A.T) + np.array([np.trace(c @ e_aa) for c in np.asarray(covs)])
    np.testing.assert_allclose(mom.second, expect, rtol=1e-12)


def test_kernel_by_name_rejects_unknown():
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernel_by_name("matern")
