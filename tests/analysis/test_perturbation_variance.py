"""Perturbation design, variance explained and real/virtual fixed points (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.analysis.dynamics_posterior import latent_stats, sample_dynamics
from ssmneuro.analysis.perturbation import decay_time, off_manifold_set, pulse_response, rank_neurons
from ssmneuro.analysis.states import mixture_map, real_fixed_points
from ssmneuro.analysis.toy_systems import SwitchingLinear, line_attractor_dynamics, nascar, simulate_switching
from ssmneuro.analysis.variance import direction_variance_explained, variance_explained_arrays

DT = 0.1


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_decay_time_of_an_exponential():
    t = np.arange(200) * DT
    np.testing.assert_allclose(decay_time(np.exp(-t / 2.0), DT), 2.0, rtol=1e-9)
    assert decay_time(np.ones(10), DT) == np.inf


def test_on_manifold_stimulation_persists_off_manifold_decays():
    A, V, _ = line_attractor_dynamics(jax.random.PRNGKey(100), 3)
    C = np.asarray(jax.random.normal(jax.random.PRNGKey(0), (30, 3)))
    system = SwitchingLinear(A[None], np.zeros((1, 3)), np.zeros((1, 3)), np.zeros(1))
    _, x, _ = simulate_switching(jax.random.PRNGKey(1), system, C, np.zeros(30), 100, 0.1, 0.5, num_trials=20)
    samples = sample_dynamics(jax.random.PRNGKey(2), latent_stats(list(x)), 200).weights[:, 0]
    rank = rank_neurons(A, C, DT)
    assert abs(rank.direction @ V[:, 0]) > 1 - 1e-9
    on_set, off_set = rank.on_manifold[:5], off_manifold_set(rank, C, 5)
    on = pulse_response(A, C, on_set, DT, num_steps=3000, weight_samples=samples)
    off = pulse_response(A, C, off_set, DT, num_steps=3000, weight_samples=samples)
    assert on.decay_time > 10 * off.decay_time, (on.decay_time, off.decay_time)
    assert on.interval[0] > 10 * off.interval[1], (on.interval, off.interval)  # with uncertainty
    # the linear response equals the explicit matrix power
    kick = C[on_set].sum(0)
    np.testing.assert_allclose(on.response[50], np.linalg.norm(C @ np.linalg.matrix_power(A, 50) @ kick))


def test_variance_explained_against_hand_computation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2)) * [2.0, 0.5]
    C = rng.normal(size=(10, 2))
    y = x @ C.T + 0.3 * rng.normal(size=(500, 10))
    states = (x[:, 0] > 0).astype(int)
    ve = variance_explained_arrays(y, x, C, states=states, num_states=2)
    yc = y - y.mean(0)
    ref_total = 1 - np.sum((yc - (x - x.mean(0)) @ C.T) ** 2) / np.sum(yc**2)
    np.testing.assert_allclose(ve.total, ref_total)
    ref_0 = 1 - np.sum((yc - np.outer(x[:, 0] - x[:, 0].mean(), C[:, 0])) ** 2) / np.sum(yc**2)
    np.testing.assert_allclose(ve.per_dimension[0], ref_0)
    assert ve.per_dimension[0] > ve.per_dimension[1] > 0
    np.testing.assert_allclose(ve.occupancy.sum(), 1.0)
    np.testing.assert_allclose(direction_variance_explained(y, x, C, np.array([1.0, 0.0])), ve.per_dimension[0])
    with pytest.raises(ValueError, match="need y"):
        variance_explained_arrays(y, x, C[:5])


def test_nascar_real_and_virtual_fixed_points():
    system, centres = nascar()
    R, r = jnp.asarray(system.recurrent_weights), jnp.asarray(system.recurrent_biases)
    logits = lambda x: R @ x + r  # noqa: E731
    fp = np.concatenate([centres, np.full((2, 2), np.nan)])
    real, states = real_fixed_points(fp, [True, True, False, False], lambda x: jnp.argmax(logits(x)))
    # at (+2, 0) and (-2, 0) logits are 0 for states 0/1 and 0 for 2/3 (y = 0): ties -> first max = own state
    np.testing.assert_array_equal(states[2:], [-1, -1])
    # a virtual point: move state 0's fixed point inside the band where state 2 dominates
    real_v, states_v = real_fixed_points(np.array([[0.0, 1.0]]), [True], lambda x: jnp.argmax(logits(x)))
    assert not real_v[0] and states_v[0] == 2
    # the state-averaged map equals state k's map where state k dominates
    f = mixture_map(system.weights, system.biases, logits)
    x = jnp.array([3.0, 0.0])
    np.testing.assert_allclose(f(x), system.weights[0] @ np.asarray(x) + system.biases[0], atol=1e-12)
