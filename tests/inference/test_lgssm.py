"""Kalman filter / smoother against the dense joint Gaussian (float64, tolerance 1e-8)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.inference.lgssm import LGSSMParams, _filter, _smoother, kalman_filter, kalman_smoother
from tests.inference.lgssm_reference import dense_smoother, random_problem

TOL = dict(rtol=1e-8, atol=1e-8)
FIELDS = ("log_likelihood", "filtered_means", "filtered_covs", "smoothed_means", "smoothed_covs",
          "smoothed_cross_covs")


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


CASES = {  # few, rich cases: every case is a fresh compilation
    "static_full": dict(),
    "static_diag": dict(diagonal=True),
    "mask_diag_inputs": dict(mask_frac=0.4, diagonal=True, U=1),
    "mask_timevarying_full_inputs": dict(mask_frac=0.4, time_varying=True, U=2),
    "mask_timevarying_diag": dict(mask_frac=0.4, time_varying=True, diagonal=True),
    "mask_diag_few_emissions": dict(mask_frac=0.4, diagonal=True, D=3, N=2),  # N <= D: covariance form
}


@pytest.fixture(scope="module")
def problems():
    out = {}
    for i, (name, kw) in enumerate(CASES.items()):
        prob = random_problem(i, **{"T": 6, "D": 2, "N": 3, **kw})
        if prob[3] is not None:
            prob[3][2] = False  # one fully unobserved row
        out[name] = prob, dense_smoother(*prob)
    return out


def _check(post, ref):
    for f in FIELDS:
        np.testing.assert_allclose(getattr(post, f), ref[f], **TOL, err_msg=f)


@pytest.mark.parametrize("parallel", [False, "tree", "blocked"])  # both schedules of the associative scan
@pytest.mark.parametrize("case", CASES)
def test_smoother_equals_dense_gaussian(problems, case, parallel):
    (params, y, u, mask), ref = problems[case]
    _check(kalman_smoother(params, y, u, mask, parallel=parallel), ref)


@pytest.mark.parametrize("form", ["information", "covariance"])
@pytest.mark.parametrize("case", ["static_diag", "mask_timevarying_full_inputs"])
def test_both_update_forms_equal_dense_gaussian(problems, case, form):
    (params, y, u, mask), ref = problems[case]
    params = LGSSMParams(*(None if p is None else jnp.asarray(p) for p in params))
    _check(_smoother(params, jnp.asarray(y), u if u is None else jnp.asarray(u),
                     None if mask is None else jnp.asarray(mask), False, form), ref)


@pytest.mark.parametrize("parallel", [False, True])
def test_filter_matches_smoother_and_mask_equals_dropping(problems, parallel):
    """Masked entries (even NaN there) are exactly absent; trailing all-missing rows change nothing."""
    (params, y, u, mask), ref = problems["mask_diag_inputs"]
    y_nan = np.where(mask, y, np.nan)
    filt = kalman_filter(params, y_nan, u, mask, parallel=parallel)
    np.testing.assert_allclose(filt.log_likelihood, ref["log_likelihood"], **TOL)
    np.testing.assert_allclose(filt.filtered_means, ref["filtered_means"], **TOL)
    # pad 3 unobserved steps at the end: same log-likelihood and same smoothed path on the first T steps
    pad = lambda a, v: np.concatenate([a, np.full((3,) + a.shape[1:], v, a.dtype)])
    post = kalman_smoother(params, pad(y, 0.0), pad(u, 0.0), pad(mask, False), parallel=parallel)
    np.testing.assert_allclose(post.log_likelihood, ref["log_likelihood"], **TOL)
    np.testing.assert_allclose(post.smoothed_means[:6], ref["smoothed_means"], **TOL)
    np.testing.assert_allclose(post.smoothed_covs[:6], ref["smoothed_covs"], **TOL)


@pytest.mark.parametrize("masked", [False, True])
def test_fast_path_equals_general_path(masked):
    """N >> D: diagonal R as an (N,) vector (information form, O(D^3) steps) equals the same R as a full
    (N, N) matrix (whitened information form without mask; covariance/Joseph form with a mask), 1e-8."""
    params, y, u, mask = random_problem(7, T=40, D=3, N=30, U=1, diagonal=True, mask_frac=0.3 if masked else 0)
    full = params._replace(emission_cov=np.diag(params.emission_cov))
    fast = kalman_smoother(params, y, u, mask)
    general = kalman_smoother(full, y, u, mask)
    for f in FIELDS:
        np.testing.assert_allclose(getattr(fast, f), getattr(general, f), **TOL, err_msg=f)


@pytest.mark.parametrize("D, N", [(10, 3), (18, 20)])
def test_wider_latents_equal_dense_gaussian(D, N):
    """Sizes past the fused small-matrix code: covariance form with dots (N <= D), and the information form
    with LAPACK factorizations (D > 16); masked, diagonal R."""
    params, y, u, mask = random_problem(30 + D, T=5, D=D, N=N, diagonal=True, mask_frac=0.3)
    _check(kalman_smoother(params, y, u, mask), dense_smoother(params, y, u, mask))


def test_vmap_over_trials_equals_single_calls(problems):
    """Batched use (models vmap over padded trials): vmap(kalman_smoother) == one call per trial."""
    (params, y, u, mask), _ = problems["mask_diag_inputs"]
    ys, us, masks = np.stack([y, y[::-1]]), np.stack([u, u[::-1]]), np.stack([mask, mask[::-1]])
    batched = jax.vmap(lambda y, u, m: kalman_smoother(params, y, u, m))(ys, us, masks)
    for b in range(2):
        single = kalman_smoother(params, ys[b], us[b], masks[b])
        for f in FIELDS:
            np.testing.assert_allclose(getattr(batched, f)[b], getattr(single, f), **TOL, err_msg=f)
