"""jax.grad of the log-likelihood through every filter variant equals central finite differences (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.lgssm import LGSSMParams, kalman_filter
from tests.inference.lgssm_reference import random_problem


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


VARIANTS = {  # (problem kwargs, parallel): information form diag / whitened full, covariance form, parallel
    "info_diag_mask_inputs_timevarying": (dict(diagonal=True, mask_frac=0.3, U=1, time_varying=True), False),
    "info_full_static": (dict(), False),
    "covariance_full_mask": (dict(mask_frac=0.3, U=1), False),
    "parallel_full_mask_inputs_timevarying": (dict(mask_frac=0.3, U=1, time_varying=True), True),
}


def _direction(rng, name, leaf):
    v = rng.normal(size=leaf.shape)
    if name.endswith("cov") and leaf.ndim >= 2 and leaf.shape[-1] == leaf.shape[-2]:
        v = v + np.swapaxes(v, -1, -2)  # keep covariances symmetric
    return v


@pytest.mark.parametrize("variant", VARIANTS)
def test_grad_matches_finite_differences(variant):
    kw, parallel = VARIANTS[variant]
    params, y, u, mask = random_problem(11, T=5, D=2, N=3, **kw)
    params = LGSSMParams(*(None if p is None else jnp.asarray(p) for p in params))
    loglik = jax.jit(lambda p: kalman_filter(p, y, u, mask, parallel=parallel).log_likelihood)
    grads = jax.grad(loglik)(params)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for name, leaf in params._asdict().items():
        if leaf is None:
            continue
        v = _direction(rng, name, leaf)
        shift = lambda s: params._replace(**{name: leaf + s * eps * v})
        fd = (loglik(shift(1)) - loglik(shift(-1))) / (2 * eps)
        analytic = np.sum(np.asarray(getattr(grads, name)) * v)
        assert np.isfinite(analytic), name
        np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-6, err_msg=name)
