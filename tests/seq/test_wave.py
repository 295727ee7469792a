"""nu-Wave / shift SSM: the polynomial-in-S scan against dense loops, nu = 1 against a shift register."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import comb

from ssmneuro.seq.selective import CausalConv
from ssmneuro.seq.wave import (WaveSSM, binomial_pulses, toeplitz_scan, truncated_polymul, wave_coefficients,
                               wave_recurrence)
from tests.seq.seq_reference import step_loop

TOL = dict(rtol=1e-10, atol=1e-10)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def _toeplitz(p):
    N = len(p)
    return np.array([[p[i - j] if i >= j else 0.0 for j in range(N)] for i in range(N)])


def _wave_matrix(nu, N):
    """Dense (1 - nu) I + nu S, S the down-shift with zero inflow."""
    return (1 - nu) * np.eye(N) + nu * np.eye(N, k=-1)


def test_truncated_polymul_is_toeplitz_product():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=6), rng.normal(size=6)
    np.testing.assert_allclose(truncated_polymul(jnp.asarray(p), jnp.asarray(q)), _toeplitz(p) @ q, **TOL)
    # compositions stay Toeplitz and commute
    np.testing.assert_allclose(_toeplitz(np.asarray(truncated_polymul(jnp.asarray(p), jnp.asarray(q)))),
                               _toeplitz(p) @ _toeplitz(q), **TOL)


@pytest.mark.parametrize("parallel", [True, False])
def test_toeplitz_scan_equals_dense_loop(parallel):
    rng = np.random.default_rng(1)
    T, D, N = 29, 3, 5
    coeffs, b, h0 = rng.normal(size=(T, D, N)) * 0.5, rng.normal(size=(T, D, N)), rng.normal(size=(D, N))
    h, expected = h0, []
    for t in range(T):
        h = np.stack([_toeplitz(coeffs[t, d]) @ h[d] for d in range(D)]) + b[t]
        expected.append(h)
    got = toeplitz_scan(jnp.asarray(coeffs), jnp.asarray(b), jnp.asarray(h0), parallel=parallel)
    np.testing.assert_allclose(got, np.stack(expected), **TOL)


def _dense_wave_loop(nu, u, N):
    """h_t = M(nu_t) h_{t-1} + e_1 u_t with dense matrices; nu (T, D, V), u (T, D) -> (T, D, V, N)."""
    T, D, V = nu.shape
    h, out = np.zeros((D, V, N)), []
    for t in range(T):
        h = np.stack([[_wave_matrix(nu[t, d, v], N) @ h[d, v] for v in range(V)] for d in range(D)])
        h[:, :, 0] += u[t][:, None]
        out.append(h.copy())
    return np.stack(out)


@pytest.mark.parametrize("mode", ["fixed", "channel", "input"])
def test_wave_ssm_parallel_equals_recurrence(mode):
    T, D, V, N = 31, 4, 2, 6
    u = jax.random.normal(jax.random.PRNGKey(0), (T, D))
    layer = WaveSSM(D, N, V, mode=mode, nu_init="spread", fixed_nu=0.7, key=jax.random.PRNGKey(1))
    if mode == "input":  # make the input dependence strong enough to matter
        layer = eqx_replace(layer, "nu_proj", layer.nu_proj * 50)
    nu = np.broadcast_to(np.asarray(layer.velocities(u)), (T, D, V))
    assert nu.min() > 0 and nu.max() <= 1
    if mode == "input":
        assert np.std(nu[:, 0, 0]) > 0.05  # really input-dependent
    h_ref = _dense_wave_loop(nu, np.asarray(u), N)
    np.testing.assert_allclose(eqx.filter_jit(layer.hidden_states)(u), h_ref, **TOL)
    seq = WaveSSM(D, N, V, mode=mode, nu_init="spread", fixed_nu=0.7, parallel=False, key=jax.random.PRNGKey(1))
    seq = eqx_replace(seq, "nu_proj", layer.nu_proj)
    np.testing.assert_allclose(seq.hidden_states(u), h_ref, **TOL)
    # the recurrent step loop, and the forward pass (a convolution with the wave's kernel unless nu_t varies)
    np.testing.assert_allclose(step_loop(layer, u), eqx.filter_jit(layer.__call__)(u), **TOL)


def eqx_replace(module, name, value):
    if value is None:
        return module
    return eqx.tree_at(lambda m: getattr(m, name), module, value, is_leaf=lambda x: x is None)


def test_nu_one_is_a_shift_register_and_a_causal_conv():
    T, D, N = 20, 3, 5
    u = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (T, D)))
    layer = WaveSSM(D, N, 1, mode="fixed", fixed_nu=1.0, key=jax.random.PRNGKey(3))
    register, expected = np.zeros((D, N)), []
    for t in range(T):
        register = np.concatenate([u[t][:, None], register[:, :-1]], axis=1)  # push u_t, drop the oldest
        expected.append(register.copy())
    h = np.asarray(eqx.filter_jit(layer.hidden_states)(jnp.asarray(u)))[:, :, 0]
    np.testing.assert_array_equal(h, np.stack(expected))  # exact: only multiplications by 0 and 1
    conv = CausalConv(D, N, key=jax.random.PRNGKey(4))
    conv = eqx_replace(conv, "weight", layer.readout[:, 0, :])
    np.testing.assert_allclose(eqx.filter_jit(layer.__call__)(jnp.asarray(u)), conv(jnp.asarray(u)), **TOL)


def test_impulse_response_is_binomial():
    """With fixed nu, M^k e_1 has entries C(k, i) nu^i (1 - nu)^(k - i): a pulse moving at speed nu."""
    N, T, nu = 7, 12, 0.35
    layer = WaveSSM(1, N, 1, mode="fixed", fixed_nu=nu, key=jax.random.PRNGKey(0))
    u = jnp.zeros((T, 1)).at[0, 0].set(1.0)
    h = np.asarray(layer.hidden_states(u))[:, 0, 0]
    k, i = np.meshgrid(np.arange(T), np.arange(N), indexing="ij")
    np.testing.assert_allclose(h, comb(k, i) * nu**i * (1 - nu) ** (k - i), **TOL)
    centre = (h[:6] * np.arange(N)).sum(1) / h[:6].sum(1)  # before mass leaves the last cell
    np.testing.assert_allclose(centre, nu * np.arange(6), atol=1e-10)


def test_closed_form_pulses_equal_the_recurrence_and_its_gradient():
    """The kernel's closed form (log-space binomials, no loop) against the two-term recurrence over 2000 lags,
    at velocities near 0 and 1 and at exactly 1 (the shift register), and d/dnu of a readout of them."""
    nu = jnp.asarray([[0.02, 0.5], [0.999, 1.0]])
    T, N = 2000, 6
    impulse = jnp.zeros((T,) + nu.shape + (N,)).at[0, ..., 0].set(1.0)
    np.testing.assert_allclose(binomial_pulses(nu, N, T), wave_recurrence(nu, impulse), rtol=1e-10, atol=1e-13)
    w = jax.random.normal(jax.random.PRNGKey(7), (T, N))
    grad_closed = jax.grad(lambda n: jnp.sum(binomial_pulses(n, N, T) * w[:, None]))(jnp.asarray([0.3, 0.97]))
    grad_loop = jax.grad(lambda n: jnp.sum(wave_recurrence(n, impulse[:, 0]) * w[:, None]))(jnp.asarray([0.3, 0.97]))
    np.testing.assert_allclose(grad_closed, grad_loop, rtol=1e-9)


def test_long_sequences_use_an_fft_convolution_that_matches_the_scan():
    T, D, N = 300, 2, 4
    u = jax.random.normal(jax.random.PRNGKey(5), (T, D))
    layer = WaveSSM(D, N, 2, mode="channel", nu_init="spread", parallel=False, key=jax.random.PRNGKey(6))
    scanned = eqx.filter_jit(lambda m, u: m.read_out(m.hidden_states(u)))(layer, u)
    np.testing.assert_allclose(eqx.filter_jit(layer.__call__)(u), scanned, rtol=1e-9, atol=1e-10)


def test_wave_coefficients_and_validation():
    np.testing.assert_allclose(wave_coefficients(jnp.asarray(0.3), 4), [0.7, 0.3, 0.0, 0.0])
    with pytest.raises(ValueError, match="mode"):
        WaveSSM(2, mode="bogus", key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="CFL"):
        WaveSSM(2, mode="fixed", fixed_nu=1.5, key=jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="nu_init"):
        WaveSSM(2, nu_init=1.0, key=jax.random.PRNGKey(0))
