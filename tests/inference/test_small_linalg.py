"""The unrolled small-matrix Cholesky / triangular solves (used instead of LAPACK's batched kernels, which
deadlock XLA:CPU's thread pool in jaxlib 0.10) against numpy / scipy in float64."""

import jax
import numpy as np
import pytest
import scipy.linalg

from ssmneuro.inference._chol import (SMALL, SMALL_MATMUL, cho_solve_spd, cholesky, cholesky_and_solve, matmul,
                                      psd_factor, solve_triangular)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _spd(rng, batch, D):
    M = rng.normal(size=(*batch, D, D))
    return M @ np.swapaxes(M, -1, -2) + D * np.eye(D)


@pytest.mark.parametrize("D", [1, 3, 6, SMALL, SMALL + 2])
def test_cholesky_and_solves_match_lapack(D):
    rng = np.random.default_rng(D)
    A = _spd(rng, (4, 2), D)
    L = np.asarray(cholesky(A))
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-12, atol=1e-12)
    B, v = rng.normal(size=(4, 2, D, 3)), rng.normal(size=(4, 2, D))
    for lower in (True, False):
        T = np.tril(A) if lower else np.triu(A)
        for trans in (0, 1):
            want = np.stack([scipy.linalg.solve_triangular(t, b, lower=lower, trans=trans)
                             for t, b in zip(T.reshape(-1, D, D), B.reshape(-1, D, 3))]).reshape(B.shape)
            np.testing.assert_allclose(solve_triangular(T, B, lower=lower, trans=trans), want, rtol=1e-10, atol=1e-12)
            want_v = np.stack([scipy.linalg.solve_triangular(t, b, lower=lower, trans=trans)
                               for t, b in zip(T.reshape(-1, D, D), v.reshape(-1, D))]).reshape(v.shape)
            np.testing.assert_allclose(solve_triangular(T, v, lower=lower, trans=trans), want_v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cho_solve_spd(A, B), np.linalg.solve(A, B), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("D", [1, 3, SMALL, SMALL + 2])
def test_cholesky_and_solve_matches_lapack(D):
    """(L, (L^{-1} B)^T) from B^T, unrolled up to SMALL, LAPACK above."""
    rng = np.random.default_rng(20 + D)
    A, Bt = _spd(rng, (3,), D), rng.normal(size=(3, 5, D))
    L, Xt = cholesky_and_solve(A, Bt)
    np.testing.assert_allclose(L, np.linalg.cholesky(A), rtol=1e-12, atol=1e-12)
    want = np.stack([scipy.linalg.solve_triangular(l, b.T, lower=True).T
                     for l, b in zip(np.linalg.cholesky(A), Bt)])
    np.testing.assert_allclose(Xt, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [1, SMALL_MATMUL, SMALL_MATMUL + 3])
def test_matmul_matches_numpy(k):
    rng = np.random.default_rng(k)
    a, b, v = rng.normal(size=(2, 4, k)), rng.normal(size=(2, k, 3)), rng.normal(size=k)
    np.testing.assert_allclose(matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(matmul(a, v), a @ v, rtol=1e-12, atol=1e-12)


def test_cholesky_of_a_non_pd_matrix_is_not_finite():
    assert not np.all(np.isfinite(np.asarray(cholesky(np.array([[1.0, 2.0], [2.0, 1.0]])))))


@pytest.mark.parametrize("D", [1, 2, 5, 8, SMALL + 1])
def test_psd_factor_is_a_finite_square_root_of_singular_matrices(D):
    """U U^T = a for positive definite a (where it is the Cholesky factor up to SMALL), for rank-deficient a,
    for zero and in float32: never NaN (later pivots of a rank-deficient matrix are rounding error of either sign)."""
    rng = np.random.default_rng(10 + D)
    G = rng.normal(size=(4, D, max(D // 2, 1)))
    cases = np.stack([_spd(rng, (), D), G[0] @ G[0].T, np.zeros((D, D)), G[1] @ G[1].T * 1e-3])
    U = np.asarray(psd_factor(cases))
    assert np.all(np.isfinite(U))
    np.testing.assert_allclose(U @ np.swapaxes(U, -1, -2), cases, rtol=1e-10, atol=1e-12)
    if D <= SMALL:
        np.testing.assert_allclose(U[0], np.linalg.cholesky(cases[0]), rtol=1e-12, atol=1e-12)
    ones = np.ones((D, D))  # rank one: every pivot after the first is 0 (plain Cholesky: NaN)
    with jax.enable_x64(False):
        U32 = np.asarray(psd_factor(ones.astype(np.float32)))
    assert np.all(np.isfinite(U32))
    np.testing.assert_allclose(U32 @ U32.T, ones, atol=1e-5)
