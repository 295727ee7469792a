"""S5: discretisations against matrix exponentials, HiPPO-N eigenbasis, parallel == step loop (float64)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.linalg import expm

from ssmneuro.seq.s5 import S5, discretise_bilinear, discretise_zoh, hippo_n_eigen, hippo_normal
from tests.seq.seq_reference import step_loop

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _zoh_reference(A, B, delta):
    """exp([[A, B], [0, 0]] delta) = [[A_bar, B_bar], [0, I]] (Van Loan)."""
    P, H = B.shape
    M = np.zeros((P + H, P + H), complex)
    M[:P, :P], M[:P, P:] = A, B
    E = expm(M * delta)
    return E[:P, :P], E[:P, P:]


def test_zoh_matches_matrix_exponential():
    rng = np.random.default_rng(0)
    P, H = 6, 3
    Lambda = -rng.uniform(0.1, 2, P) + 1j * rng.normal(size=P)
    B = rng.normal(size=(P, H)) + 1j * rng.normal(size=(P, H))
    for delta in (0.01, 0.3, 1.7):
        lam, B_bar = discretise_zoh(jnp.asarray(Lambda), jnp.asarray(B), delta)
        A_ref, B_ref = _zoh_reference(np.diag(Lambda), B, delta)
        np.testing.assert_allclose(np.diag(np.asarray(lam)), A_ref, **TOL)
        np.testing.assert_allclose(B_bar, B_ref, **TOL)


def test_zoh_in_the_hippo_eigenbasis_matches_dense_hippo_exponential():
    """V diag(exp(delta Lambda)) V^H == expm(delta S) for the dense HiPPO-N matrix S."""
    S = hippo_normal(8)
    Lambda, V = hippo_n_eigen(8)
    np.testing.assert_allclose(V @ np.diag(Lambda) @ V.conj().T, S, atol=1e-10)
    lam, _ = discretise_zoh(jnp.asarray(Lambda), jnp.eye(8, dtype=complex), 0.2)
    np.testing.assert_allclose(V @ np.diag(np.asarray(lam)) @ V.conj().T, expm(0.2 * S), atol=1e-10)


def test_bilinear_matches_dense_formula():
    rng = np.random.default_rng(1)
    P, H, delta = 5, 2, 0.4
    Lambda = -rng.uniform(0.1, 2, P) + 1j * rng.normal(size=P)
    B = rng.normal(size=(P, H))
    lam, B_bar = discretise_bilinear(jnp.asarray(Lambda), jnp.asarray(B, complex), delta)
    A = np.diag(Lambda)
    inv = np.linalg.inv(np.eye(P) - delta / 2 * A)
    np.testing.assert_allclose(np.diag(np.asarray(lam)), inv @ (np.eye(P) + delta / 2 * A), **TOL)
    np.testing.assert_allclose(B_bar, inv @ (delta * B), **TOL)


def _numpy_s5(layer, u, intervals, reverse=False, C=None):
    lam_c = np.asarray(layer.Lambda)
    B = np.asarray(layer.B[..., 0] + 1j * layer.B[..., 1])
    C = np.asarray(layer.C if C is None else C)
    C = C[..., 0] + 1j * C[..., 1]
    steps = np.exp(np.asarray(layer.log_step))
    h, out = np.zeros(len(lam_c), complex), [None] * len(u)
    for t in (reversed(range(len(u))) if reverse else range(len(u))):
        d = steps * intervals[t]
        if layer.discretisation == "zoh":
            lam = np.exp(d * lam_c)
            Bb = ((lam - 1) / lam_c)[:, None] * B
        else:
            lam = (1 + d * lam_c / 2) / (1 - d * lam_c / 2)
            Bb = (d / (1 - d * lam_c / 2))[:, None] * B
        h = lam * h + Bb @ np.asarray(u[t])
        out[t] = (2 if layer.conj_sym else 1) * (C @ h).real
    return np.stack(out)


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("irregular", [False, True])
def test_s5_parallel_equals_numpy_loop_and_step(disc, irregular):
    H, P, T = 3, 8, 27
    u = jax.random.normal(jax.random.PRNGKey(0), (T, H))
    layer = S5(H, P, discretisation=disc, dt_min=0.05, dt_max=0.5, key=jax.random.PRNGKey(1))
    intervals = jax.random.uniform(jax.random.PRNGKey(2), (T,), minval=0.2, maxval=3.0) if irregular else None
    ref = _numpy_s5(layer, u, np.ones(T) if intervals is None else np.asarray(intervals))
    ref = ref + np.asarray(layer.D) * np.asarray(u)
    np.testing.assert_allclose(eqx.filter_jit(layer.__call__)(u, intervals), ref, **TOL)
    seq = S5(H, P, discretisation=disc, dt_min=0.05, dt_max=0.5, parallel=False, key=jax.random.PRNGKey(1))
    np.testing.assert_allclose(seq(u, intervals), ref, **TOL)
    if intervals is None:
        np.testing.assert_allclose(step_loop(layer, u), ref, **TOL)
    else:
        steps = jax.lax.scan(lambda s, ui: layer.step(s, *ui), layer.init_state(), (u, intervals))[1]
        np.testing.assert_allclose(steps, ref, **TOL)


def test_unit_intervals_equal_no_intervals():
    layer = S5(2, 4, key=jax.random.PRNGKey(0))
    u = jax.random.normal(jax.random.PRNGKey(1), (9, 2))
    np.testing.assert_allclose(layer(u, jnp.ones(9)), layer(u), **TOL)


def test_conjugate_symmetry_equals_the_full_real_system():
    """2 Re(C h) over P/2 states == Re(C h) over all P states with the conjugate pairs restored."""
    H, P, T = 2, 6, 15
    half = S5(H, P, key=jax.random.PRNGKey(3))
    full = S5(H, P, conj_sym=False, key=jax.random.PRNGKey(3))
    conj = lambda x: jnp.stack([x[..., 0], -x[..., 1]], -1)  # noqa: E731
    full = eqx.tree_at(
        lambda m: (m.Lambda_re, m.Lambda_im, m.B, m.C, m.D, m.log_step), full,
        (jnp.concatenate([half.Lambda_re] * 2), jnp.concatenate([half.Lambda_im, -half.Lambda_im]),
         jnp.concatenate([half.B, conj(half.B)]), jnp.concatenate([half.C, conj(half.C)], axis=1),
         half.D, jnp.concatenate([half.log_step] * 2)))
    u = jax.random.normal(jax.random.PRNGKey(4), (T, H))
    np.testing.assert_allclose(eqx.filter_jit(full.__call__)(u), eqx.filter_jit(half.__call__)(u), **TOL)
    assert len(half.Lambda_re) == P // 2 and np.all(half.Lambda_im > 0)


def test_bidirectional_adds_a_backward_scan():
    H, P, T = 2, 4, 13
    layer = S5(H, P, bidirectional=True, key=jax.random.PRNGKey(5))
    u = jax.random.normal(jax.random.PRNGKey(6), (T, H))
    ones = np.ones(T)
    ref = (_numpy_s5(layer, u, ones, C=layer.C[0]) + _numpy_s5(layer, u, ones, reverse=True, C=layer.C[1])
           + np.asarray(layer.D) * np.asarray(u))
    np.testing.assert_allclose(layer(u), ref, **TOL)
    with pytest.raises(ValueError, match="bidirectional"):
        layer.step(layer.init_state(), u[0])


def test_validation():
    with pytest.raises(ValueError, match="discretisation"):
        S5(2, 4, discretisation="euler", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="even"):
        S5(2, 5, key=jax.random.PRNGKey(0))
