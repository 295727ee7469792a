"""Fixed-point finder, slow points and continuous attractors against systems with known answers (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.analysis.attractors import find_continuous_attractors, find_slow_points
from ssmneuro.analysis.fixed_points import classify, find_fixed_points
from ssmneuro.analysis.linear import affine_fixed_point, state_dynamics
from ssmneuro.analysis.toy_systems import bistable_drift, line_attractor_dynamics, nascar, ring_drift


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _starts(seed, n, scale, D=2):
    return np.random.default_rng(seed).uniform(-scale, scale, size=(n, D))


def test_nascar_per_state_fixed_points():
    system, centres = nascar()
    for k in range(4):
        A, b = jnp.asarray(system.weights[k]), jnp.asarray(system.biases[k])
        fp = find_fixed_points(lambda x: A @ x + b, _starts(k, 16, 4.0), time="discrete")
        if k < 2:  # rotations about the two centres: one fixed point each, |lambda| = 1 (marginal)
            assert fp.points.shape == (1, 2)
            np.testing.assert_allclose(fp.points[0], centres[k], atol=1e-4)
            np.testing.assert_allclose(np.abs(fp.eigenvalues[0]), 1.0, atol=1e-12)
            assert fp.kind[0] == "marginal"
        else:  # straight drives: q = 1/2||b||^2 everywhere, no fixed point
            assert fp.points.shape == (0, 2)
    x, exists = affine_fixed_point(system.weights, system.biases)
    np.testing.assert_array_equal(exists, [True, True, False, False])
    np.testing.assert_allclose(x[:2], centres, atol=1e-12)
    assert np.all(np.isnan(x[2:]))
    summary = state_dynamics(system.weights, system.biases, dt=0.1)
    np.testing.assert_array_equal(summary.has_fixed_point, exists)


def test_bistable_fixed_points_and_jacobians():
    fp = find_fixed_points(bistable_drift, _starts(1, 64, 2.0), time="continuous")
    order = np.argsort(fp.points[:, 0])
    np.testing.assert_allclose(fp.points[order], [[-1, 0], [0, 0], [1, 0]], atol=1e-4)
    np.testing.assert_array_equal(fp.kind[order], ["stable", "saddle", "stable"])
    # Jacobians: equal to jax.jacobian and to the analytic [[1 - 3x^2, 0], [0, -1]]
    ref = np.stack([jax.jacobian(bistable_drift)(jnp.asarray(p)) for p in fp.points])
    np.testing.assert_allclose(fp.jacobians, ref, atol=1e-12)
    analytic = np.stack([np.diag([1 - 3 * p[0] ** 2, -1.0]) for p in fp.points])
    np.testing.assert_allclose(fp.jacobians, analytic, atol=1e-6)
    # eigenvalues sorted slowest first (largest real part)
    assert np.all(np.diff(fp.eigenvalues.real, axis=1) <= 0)


def test_discrete_map_jacobian_against_finite_differences():
    W = np.array([[1.5, 0.2], [0.2, 0.5]])  # one eigenvalue > 1: saddle at 0, two stable points
    f = lambda x: jnp.tanh(jnp.asarray(W) @ x)  # noqa: E731  a small RNN cell, fixed points at 0 and +-x*
    fp = find_fixed_points(f, _starts(2, 64, 2.0), time="discrete")
    assert fp.points.shape[0] == 3
    np.testing.assert_allclose([np.asarray(f(jnp.asarray(p))) for p in fp.points], fp.points, atol=1e-6)
    eps = 1e-6
    for p, J in zip(fp.points, fp.jacobians):
        fd = np.stack([(np.asarray(f(jnp.asarray(p + eps * e))) - np.asarray(f(jnp.asarray(p - eps * e)))) / (2 * eps)
                       for e in np.eye(2)], axis=1)
        np.testing.assert_allclose(J, fd, atol=1e-7)
    kinds = dict(zip(np.round(np.abs(fp.points[:, 0]), 6) > 0, fp.kind))
    assert kinds[False] == "saddle" and kinds[True] == "stable"


def test_ring_fixed_points_and_ring_attractor():
    starts = _starts(3, 200, 2.0)
    fp = find_fixed_points(ring_drift, starts, time="continuous", unique_tol=1e-2)
    r = np.linalg.norm(fp.points, axis=1)
    on_ring = r > 0.5
    assert on_ring.sum() > 20
    np.testing.assert_allclose(r[on_ring], 1.0, atol=1e-4)
    assert np.all(fp.kind[on_ring] == "marginal")
    np.testing.assert_allclose(fp.points[~on_ring], [[0.0, 0.0]], atol=1e-4)
    assert fp.kind[~on_ring][0] == "unstable"
    slow = find_slow_points(ring_drift, starts, time="continuous", q_threshold=1e-8, num_steps=3000)
    found = find_continuous_attractors(slow)
    assert [a.kind for a in found] == ["ring"]
    assert abs(found[0].radius - 1.0) < 1e-3
    np.testing.assert_allclose(found[0].centre, [0.0, 0.0], atol=1e-3)
    assert np.median(found[0].alignment) > 0.99


def test_line_attractor_detected_and_point_attractor_not():
    A, V, _ = line_attractor_dynamics(jax.random.PRNGKey(0), latent_dim=3)
    f = lambda x: jnp.asarray(A) @ x  # noqa: E731
    starts = np.random.default_rng(4).normal(size=(300, 3)) * 3.0
    slow = find_slow_points(f, starts, time="discrete", q_threshold=1e-5, num_steps=3000)
    found = find_continuous_attractors(slow)
    assert [a.kind for a in found] == ["line"]
    assert abs(found[0].direction @ V[:, 0]) > 0.99
    A_point = V @ np.diag([0.9, 0.88, 0.85]) @ np.linalg.inv(V)
    slow = find_slow_points(lambda x: jnp.asarray(A_point) @ x, starts, q_threshold=1e-5, num_steps=3000)
    assert find_continuous_attractors(slow) == []


def test_classify_conventions():
    lam = np.array([[0.5, 0.2], [1.5, 1.2], [1.5, 0.5], [1.0, 0.5], [0.9995, 0.5]])
    np.testing.assert_array_equal(classify(lam, "discrete"), ["stable", "unstable", "saddle", "marginal", "marginal"])
    mu = np.array([[-1.0, -2.0], [1.0, 2.0], [1.0, -1.0], [0.0, -1.0]])
    np.testing.assert_array_equal(classify(mu, "continuous"), ["stable", "unstable", "saddle", "marginal"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="time"):
        find_fixed_points(bistable_drift, np.zeros((2, 2)), time="forward")
    with pytest.raises(ValueError, match="NaN"):
        find_fixed_points(bistable_drift, np.array([[np.nan, 0.0]]), time="continuous")
    with pytest.raises(ValueError, match="shape"):
        find_fixed_points(bistable_drift, np.zeros(2), time="continuous")
    with pytest.raises(ValueError, match="same shape"):
        find_fixed_points(lambda x: x[:1], np.zeros((2, 2)))
