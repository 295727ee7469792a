"""The parallel Kalman filter's and smoother's operators: the state-only ``apply`` forms equal the full
compositions when their first argument is a state (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference._chol import SMALL
from ssmneuro.inference.lgssm_parallel import filter_apply, filter_combine, smoother_apply, smoother_combine


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _psd(rng, batch, D, rank=None):
    M = rng.normal(size=(batch, D, rank or D))
    return M @ np.swapaxes(M, -1, -2) / D


@pytest.mark.parametrize("D", [3, SMALL + 2])  # unrolled Cholesky, LAPACK
def test_filter_apply_equals_combine_on_a_state(D):
    rng = np.random.default_rng(D)
    batch = 4
    zeros = np.zeros((batch, D, D))
    state = (zeros, rng.normal(size=(batch, D)), _psd(rng, batch, D), np.zeros((batch, D)), zeros)
    # a singular later J (an emission seeing fewer dimensions than D) and a general transition
    later = (rng.normal(size=(batch, D, D)), rng.normal(size=(batch, D)), _psd(rng, batch, D) + np.eye(D),
             rng.normal(size=(batch, D)), _psd(rng, batch, D, rank=2))
    state, later = jax.tree.map(jnp.asarray, (state, later))
    for got, want in zip(filter_apply(state, later), filter_combine(state, later)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)


def test_smoother_apply_equals_combine_on_a_state():
    rng = np.random.default_rng(0)
    D, batch = 4, 3
    state = (np.zeros((batch, D, D)), rng.normal(size=(batch, D)), _psd(rng, batch, D))
    earlier = (rng.normal(size=(batch, D, D)), rng.normal(size=(batch, D)), _psd(rng, batch, D))
    state, earlier = jax.tree.map(jnp.asarray, (state, earlier))
    for got, want in zip(smoother_apply(state, earlier), smoother_combine(state, earlier)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-12)
