"""The demo's simulated hypothalamus recording: seeded, with the line attractor it promises."""

import jax
import numpy as np
import pytest

from ssmneuro.io import simulate_hypothalamus


@pytest.fixture(scope="module")
def sim():
    return simulate_hypothalamus(jax.random.PRNGKey(0), num_neurons=20, num_timesteps=1500)


def test_same_key_same_recording_other_key_differs(sim):
    again = simulate_hypothalamus(jax.random.PRNGKey(0), num_neurons=20, num_timesteps=1500)
    np.testing.assert_array_equal(sim.recording.traces[0], again.recording.traces[0])
    other = simulate_hypothalamus(jax.random.PRNGKey(1), num_neurons=20, num_timesteps=1500)
    assert not np.allclose(sim.recording.traces[0], other.recording.traces[0])


def test_dynamics_have_one_slow_eigenvalue(sim):
    eig = np.sort(np.abs(np.linalg.eigvals(sim.dynamics_matrix)))[::-1]
    np.testing.assert_allclose(eig, [0.999, 0.9, 0.8], atol=1e-5)
    np.testing.assert_allclose(sim.dynamics_matrix @ sim.line_direction, 0.999 * sim.line_direction, atol=1e-5)
    np.testing.assert_allclose(sim.time_constants[0], -0.1 / np.log(0.999), rtol=1e-4)  # ~100 s


def test_calcium_traces_follow_the_indicator_kernel(sim):
    # F = a c + noise with c_t = gamma c_{t-1} + s_t: the regression of F_t on F_{t-1} is ~gamma for
    # noise-free calcium; with noise it is attenuated but stays clearly positive and < 1.
    y = sim.recording.traces[0]
    assert y.shape == (1500, 20) and sim.recording.dt == 0.1
    lag1 = np.mean([np.corrcoef(y[1:, n], y[:-1, n])[0, 1] for n in range(20)])
    assert 0.3 < lag1 < 0.99
    labels = sim.recording.labels[0]
    np.testing.assert_array_equal(labels, sim.states)
    assert 0.1 < labels.mean() < 0.7  # both behaviour states occur


def test_intruder_drives_the_line(sim):
    proj = sim.latents @ sim.line_direction
    # activity along the line rises while the intruder is present
    rises = np.diff(proj)[sim.states[:-1] == 1].mean()
    falls = np.diff(proj)[sim.states[:-1] == 0].mean()
    assert rises > 0.003 and falls < rises / 2
