"""The HTML report writer with fake inputs (no model needed), and the job's small numeric pieces."""

import base64
import re

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ssmneuro.job import balanced_accuracy
from ssmneuro.plotting import report


def _fake_summary():
    return {
        "recording": {"name": "fake", "trials": 1, "frames": 200, "neurons": 10, "neurons_dropped": 1,
                      "kept_neurons": list(range(10)), "dt_s": 0.1, "label_names": ["a", "b"]},
        "model": {"model": "rslds", "num_states": 3, "latent_dim": 2, "emissions": "gaussian",
                  "num_iters": 5, "seed": 0, "score_samples": 50},
        "fit": {"num_iters": 5, "final_elbo": -10.0, "best_elbo": -10.0, "best_iteration": 4,
                "rejected_iterations": [2]},
        "states_vs_behaviour": {"balanced_accuracy": 0.8, "balanced_accuracy_held_out_half": 0.7,
                                "chance": 0.5, "state_to_label": ["a", "b", "a"],
                                "state_occupancy": [0.3, 0.3, 0.4]},
        "line_attractor": {"score": 3.2, "interval": [2.5, 4.0], "prob_above_1": 0.97,
                           "time_constants_s": [[10.0, 1.0], [5.0, 0.5], [1.0, 0.9]]},
        "variance_explained": {"overall": 0.4, "per_neuron": list(np.linspace(0.1, 0.7, 10))},
        "fixed_points": [{"state": k, "point": [0.0, 0.0], "projected": [0.1 * k, 0.0], "stable": k != 1,
                          "max_abs_eigenvalue": 0.9} for k in range(3)],
        "timings_s": {"fit_s": 1.0, "analysis_s": 0.5},
    }


def test_write_main_report_embeds_every_panel(tmp_path):
    rng = np.random.default_rng(0)
    g = np.stack(np.meshgrid(np.linspace(-1, 1, 6), np.linspace(-1, 1, 6)), -1)
    flow = {"grid": g, "drift": -0.1 * g, "state": (g[..., 0] > 0).astype(int),
            "trajectory": rng.normal(size=(50, 2)) * 0.3}
    attractor = {"samples": rng.normal(3.2, 0.4, size=50)}
    path = report.write_main_report(tmp_path / "report.html", _fake_summary(), np.linspace(-50, -10, 5), 4,
                                    rng.integers(0, 3, 200), rng.integers(0, 2, 200), 0.1, ("a", "b"), 3,
                                    flow, attractor)
    text = path.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 6  # ELBO, raster, flow field, time constants, score samples, variance explained
    for data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    for needle in ("balanced accuracy 0.800", "3.20, 90% interval 2.50 to 4.00; P(score &gt; 1) = 0.97",
                   "1 iteration(s) were rejected", "Flow field and fixed points", "variance explained"):
        assert needle in text
    assert plt.get_fignums() == []  # every figure was closed


def test_report_without_behaviour_or_attractor(tmp_path):
    summary = _fake_summary()
    summary.update(states_vs_behaviour=None, line_attractor=None, fixed_points=None)
    path = report.write_main_report(tmp_path / "r.html", summary, [-3.0, -2.0], 1, np.zeros(20, int), None,
                                    0.1, (), 1, None, None)
    text = path.read_text()
    assert "No behaviour labels were given" in text and "P(score" not in text
    assert len(re.findall("data:image/png", text)) == 3


@pytest.mark.parametrize("fn, args", [
    (report.plot_elbo, ([1.0, 2.0, 3.0],)),
    (report.plot_state_raster, (np.array([0, 1, 1, 2]), 0.5)),
    (report.plot_time_constants, (np.array([[3.0, 1.0], [2.0, 0.1]]),)),
    (report.plot_score_samples, (np.array([1.0, 2.0, 3.0]), 2.0)),
    (report.plot_variance_explained, (np.array([0.1, 0.5]),)),
])
def test_plots_take_ax_and_return_it(fn, args):
    fig, ax = plt.subplots()
    assert fn(*args, ax=ax) is ax
    assert fn(*args).figure is not fig
    plt.close("all")


def test_balanced_accuracy_against_hand_count():
    labels = np.array([0] * 8 + [1] * 2)
    states = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
    # state 0 covers 6/8 of label 0, state 1: 2/8 of label 0 vs 1/2 of label 1 -> label 1,
    # state 2: 1/2 of label 1 -> label 1. recall(0) = 6/8, recall(1) = 2/2.
    acc, mapping = balanced_accuracy(states, labels, 3)
    assert mapping.tolist() == [0, 1, 1]
    assert acc == pytest.approx((6 / 8 + 1.0) / 2)
    # a map learned on the first half only is applied to the second half
    acc_half, _ = balanced_accuracy(states, labels, 3, fit_frames=np.arange(10) < 5)
    # first half has only label 0, so every state maps to 0; second half: recall(0) = 1, recall(1) = 0
    assert acc_half == pytest.approx(0.5)


def test_flow_field_and_variance_explained_with_a_known_linear_model():
    from typing import NamedTuple

    import jax.numpy as jnp

    from ssmneuro.job import fixed_points, flow_field, variance_explained
    from ssmneuro.io import as_recording

    class Dyn(NamedTuple):
        weights: jnp.ndarray
        biases: jnp.ndarray

    class Params(NamedTuple):
        dynamics: Dyn

    class Post(NamedTuple):
        latent_means: np.ndarray

    class Fit(NamedTuple):
        posterior: list

    rng = np.random.default_rng(0)
    A = np.array([[0.9, 0.1, 0.0], [-0.1, 0.9, 0.0], [0.0, 0.0, 0.5]])
    b = np.array([0.1, 0.0, 0.2])
    C = rng.normal(size=(5, 3))

    class Model:
        def transition_logits(self, params, x, u=None):
            return jnp.zeros(1)

        def emission_mean(self, params, x):
            return np.asarray(x) @ C.T

    params = Params(Dyn(jnp.asarray(A[None]), jnp.asarray(b[None])))
    latents = rng.normal(size=(80, 3)) * np.array([2.0, 1.0, 0.1])
    fit = Fit([Post(latents)])
    flow = flow_field(Model(), params, fit, grid_size=7)
    points = flow["center"] + flow["grid"].reshape(-1, 2) @ flow["basis"].T
    expected = (points @ A.T + b - points) @ flow["basis"]
    np.testing.assert_allclose(flow["drift"].reshape(-1, 2), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flow["basis"].T @ flow["basis"], np.eye(2), atol=1e-6)
    fps = fixed_points(params, flow["center"], flow["basis"], dt=0.1)
    np.testing.assert_allclose(fps[0]["point"], np.linalg.solve(np.eye(3) - A, b), rtol=1e-6)
    assert fps[0]["kind"] == "stable"

    y = latents @ C.T + 0.5 * rng.normal(size=(80, 5))
    ve = variance_explained(Model(), params, as_recording(y), fit)
    resid = ((y - latents @ C.T) ** 2).sum(0)
    total = ((y - y.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(ve["per_neuron"], 1 - resid / total, rtol=1e-4)
    assert ve["overall"] == pytest.approx(1 - resid.sum() / total.sum(), rel=1e-4)
