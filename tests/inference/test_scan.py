"""Scans against an explicit Python loop in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.scan import dense_scan, diagonal_scan


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _loop(step, h0, T, reverse=False):
    h, out = h0, [None] * T
    for t in (reversed(range(T)) if reverse else range(T)):
        h = step(t, h)
        out[t] = h
    return np.stack(out)


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("complex_", [False, True])
def test_diagonal_scan_equals_loop(parallel, reverse, complex_):
    rng = np.random.default_rng(0)
    T, D = 37, 5
    a = rng.uniform(-1, 1, (T, D))
    b = rng.normal(size=(T, D))
    if complex_:
        a = a * np.exp(1j * rng.uniform(0, np.pi, (T, D)))
        b = b + 1j * rng.normal(size=(T, D))
    h0 = rng.normal(size=D)
    expected = _loop(lambda t, h: a[t] * h + b[t], h0, T, reverse)
    got = diagonal_scan(jnp.asarray(a), jnp.asarray(b), jnp.asarray(h0), reverse=reverse, parallel=parallel)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
def test_dense_scan_equals_loop(parallel, reverse):
    rng = np.random.default_rng(1)
    T, D = 29, 4
    A = rng.normal(size=(T, D, D)) / np.sqrt(D)
    b = rng.normal(size=(T, D))
    h0 = rng.normal(size=D)
    expected = _loop(lambda t, h: A[t] @ h + b[t], h0, T, reverse)
    got = dense_scan(jnp.asarray(A), jnp.asarray(b), jnp.asarray(h0), reverse=reverse, parallel=parallel)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-10, atol=1e-10)


def test_diagonal_scan_broadcasts_static_multiplier():
    b = jnp.ones((10, 3))
    h = diagonal_scan(jnp.asarray(0.5), b)
    np.testing.assert_allclose(np.asarray(h[-1]), 2 * (1 - 0.5**10) * np.ones(3), rtol=1e-6)
