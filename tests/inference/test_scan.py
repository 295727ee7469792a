"""Scans against an explicit Python loop in float64."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference import scan
from ssmneuro.inference.scan import MAX_CHUNK, associative_scan, dense_scan, diagonal_scan, schedule_for


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


def _compose_affine(earlier, later):
    """h -> A h + b maps, earlier applied first: a non-commutative operator."""
    return later[0] @ earlier[0], jnp.einsum("...ij,...j->...i", later[0], earlier[1]) + later[1]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T, max_chunk", [(1, MAX_CHUNK), (2, MAX_CHUNK), (3, MAX_CHUNK), (16, MAX_CHUNK),
                                          (17, MAX_CHUNK), (150, 4)])
def test_blocked_schedule_equals_loop_and_tree(T, max_chunk, reverse, monkeypatch):
    """The reduce-then-scan schedule gives jax.lax.associative_scan's output (argument order included) and the
    loop's: one chunk, sqrt(T) chunks with a padded last one, and chunks capped at MAX_CHUNK (4 here)."""
    monkeypatch.setattr(scan, "MAX_CHUNK", max_chunk)
    rng = np.random.default_rng(T)
    A, b = rng.normal(size=(T, 3, 3)) / np.sqrt(3), rng.normal(size=(T, 3))
    tree = associative_scan(_compose_affine, (jnp.asarray(A), jnp.asarray(b)), reverse=reverse, schedule="tree")
    blocked = associative_scan(_compose_affine, (jnp.asarray(A), jnp.asarray(b)), reverse=reverse,
                               schedule="blocked")
    expected = _loop(lambda t, h: A[t] @ h + b[t], np.zeros(3), T, reverse)
    np.testing.assert_allclose(np.asarray(blocked[1]), expected, rtol=1e-10, atol=1e-10)
    for x, y in zip(blocked, tree):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("T, max_chunk", [(17, MAX_CHUNK), (150, 4)])
def test_blocked_schedule_rescans_with_apply(T, max_chunk, reverse, monkeypatch):
    """``apply`` (the operator restricted to a prefix, here a state h: A = 0) gives the tree's output, and the
    blocked schedule really calls it: a wrong ``apply`` changes the result."""
    monkeypatch.setattr(scan, "MAX_CHUNK", max_chunk)
    rng = np.random.default_rng(T)
    A, b = rng.normal(size=(T, 3, 3)) / np.sqrt(3), rng.normal(size=(T, 3))
    A[-1 if reverse else 0] = 0.0  # the first element of the scan is a state, so is every prefix
    elems = (jnp.asarray(A), jnp.asarray(b))
    tree = associative_scan(_compose_affine, elems, reverse=reverse, schedule="tree")

    def propagate(state, later):
        return state[0], jnp.einsum("...ij,...j->...i", later[0], state[1]) + later[1]

    blocked = associative_scan(_compose_affine, elems, reverse=reverse, schedule="blocked", apply=propagate)
    for x, y in zip(blocked, tree):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-10, atol=1e-10)
    wrong = associative_scan(_compose_affine, elems, reverse=reverse, schedule="blocked",
                             apply=lambda s, x: (s[0], propagate(s, x)[1] + 1.0))
    assert np.max(np.abs(np.asarray(wrong[1]) - np.asarray(tree[1]))) > 0.5


def test_schedule_for_names_the_choices():
    assert schedule_for(False) is None
    assert schedule_for(True) == ("blocked" if jax.default_backend() == "cpu" else "tree")
    assert schedule_for("tree") == "tree"
    with pytest.raises(ValueError, match="parallel must be"):
        schedule_for("fast")
    with pytest.raises(ValueError, match="schedule must be"):
        associative_scan(_compose_affine, (jnp.ones((2, 1, 1)), jnp.ones((2, 1))), schedule="fast")
