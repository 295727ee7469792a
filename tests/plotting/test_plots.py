"""Every plotting function renders to PNG (Agg) and exports SVG; colours and markers say what they should."""

import matplotlib

matplotlib.use("Agg")
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402

from ssmneuro.analysis.fixed_points import find_fixed_points  # noqa: E402
from ssmneuro.analysis.perturbation import pulse_response  # noqa: E402
from ssmneuro.analysis.score import summarize_scores  # noqa: E402
from ssmneuro.analysis.toy_systems import bistable_drift, line_attractor_dynamics, nascar  # noqa: E402
from ssmneuro.analysis.variance import variance_explained_arrays  # noqa: E402
from ssmneuro import plotting  # noqa: E402
from ssmneuro.plotting.palette import OKABE_ITO  # noqa: E402


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield
    plt.close("all")


def _render(ax, tmp_path, name):
    fig = ax.figure
    fig.savefig(tmp_path / f"{name}.png", dpi=60)
    fig.savefig(tmp_path / f"{name}.svg")
    assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert (tmp_path / f"{name}.svg").read_text().startswith("<?xml")


def _nascar_fn():
    system, _ = nascar()
    A, b = jnp.asarray(system.weights), jnp.asarray(system.biases)
    R, r = jnp.asarray(system.recurrent_weights), jnp.asarray(system.recurrent_biases)
    logits = lambda x: R @ x + r  # noqa: E731
    return (lambda x: jnp.einsum("k,kd->d", jax.nn.softmax(logits(x)), A @ x + b)), logits


def test_flow_field_coloured_by_state(tmp_path):
    f, logits = _nascar_fn()
    ax = plotting.plot_flow_field(f, (-4, 4), (-3, 3), state_fn=logits, num_states=4, num_points=15)
    quiver = ax.collections[0]
    colors = {to_hex(c) for c in quiver.get_facecolors()}
    assert colors <= {c.lower() for c in OKABE_ITO[:4]} and len(colors) == 4
    assert ax.get_xlabel() and ax.get_ylabel()
    _render(ax, tmp_path, "flow")
    ax = plotting.plot_flow_field(bistable_drift, time="continuous", style="stream", num_points=15)
    _render(ax, tmp_path, "stream")


def test_fixed_points_filled_stable_open_unstable(tmp_path):
    fp = find_fixed_points(bistable_drift, np.random.default_rng(0).uniform(-2, 2, (32, 2)), time="continuous")
    ax = plotting.plot_flow_field(bistable_drift, (-2, 2), (-2, 2), time="continuous", num_points=12)
    plotting.plot_fixed_points(fp.points, fp.kind, ax=ax)
    by_label = {c.get_label(): c for c in ax.collections if c.get_label().endswith("fixed point")}
    assert set(by_label) == {"stable fixed point", "saddle fixed point"}
    assert to_hex(by_label["stable fixed point"].get_facecolors()[0]) == "#000000"
    assert to_hex(by_label["saddle fixed point"].get_facecolors()[0]) == "#ffffff"
    _render(ax, tmp_path, "fixed")


def test_trajectory_raster_and_projection(tmp_path):
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(100, 3)), 0)
    z = (np.arange(100) // 25) % 3
    A, V, _ = line_attractor_dynamics(jax.random.PRNGKey(0), 3)
    centre, basis = plotting.slow_mode_projection(A)
    assert abs(abs(basis[:, 0] @ V[:, 0]) - 1) < 1e-9  # first axis = slowest mode
    ax = plotting.plot_latent_trajectory(x, z, projection=(centre, basis))
    assert len(ax.collections[0].get_segments()) == 99
    _render(ax, tmp_path, "traj")
    ax = plotting.plot_state_raster([z, z[:80]], dt=0.1, behaviour=[z % 2, (z % 2)[:80]],
                                    behaviour_names=["rest", "attack"])
    assert ax.get_xlabel() == "time (s)"
    _render(ax, tmp_path, "raster")


def test_score_time_constants_pulses_and_variance(tmp_path):
    A, _, _ = line_attractor_dynamics(jax.random.PRNGKey(0), 3)
    rng = np.random.default_rng(0)
    samples = A + 1e-3 * rng.normal(size=(200, 1, 3, 3))
    result = summarize_scores(A, 0.1, samples)
    ax = plotting.plot_score_distribution(result)
    assert "P(score > 1)" in ax.get_title()
    _render(ax, tmp_path, "score")
    _render(plotting.plot_time_constants(np.stack([result.time_constants[0], [2.0, 1.0, 0.5]])), tmp_path, "tau")
    C = rng.normal(size=(20, 3))
    resp = {"on": pulse_response(A, C, [0, 1], 0.1, num_steps=500), "off": pulse_response(A, C, [2], 0.1, num_steps=500)}
    _render(plotting.plot_pulse_responses(resp), tmp_path, "pulse")
    from ssmneuro.analysis.perturbation import rank_neurons

    _render(plotting.plot_neuron_loadings(rank_neurons(A, C, 0.1), on_set=[0], off_set=[1, 2]), tmp_path, "loadings")
    x = rng.normal(size=(200, 3))
    ve = variance_explained_arrays(x @ C.T + rng.normal(size=(200, 20)), x, C, states=(x[:, 0] > 0).astype(int))
    _render(plotting.plot_variance_explained(ve), tmp_path, "ve")


def test_model_flow_of_a_recurrent_model(tmp_path):
    import ssmneuro

    model = ssmneuro.RSLDS(num_states=3, latent_dim=3, emission_dim=5)
    params = model.random_params(jax.random.PRNGKey(0), jnp.float64)
    params = params._replace(transitions=params.transitions._replace(
        recurrent_weights=jnp.asarray(np.random.default_rng(0).normal(size=(3, 3)) * 3)))
    proj = plotting.slow_mode_projection(params.dynamics.weights[0])
    ax = plotting.plot_model_flow(model, params, (-2, 2), (-2, 2), projection=proj, num_points=10)
    assert len({to_hex(c) for c in ax.collections[0].get_facecolors()}) >= 2
    _render(ax, tmp_path, "model_flow")
