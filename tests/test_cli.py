"""The ``ssmneuro`` command: bad inputs give one-line errors (exit 2), never a traceback."""

import numpy as np
import pytest
from typer.testing import CliRunner

from ssmneuro.cli import app

runner = CliRunner()
MODEL, K = "rslds", 2


def _one_line_error(result, *needles):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in errors[0], errors[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 6))
    np.save(d / "good.npy", x)
    np.save(d / "transposed.npy", x.T)
    bad = x.copy()
    bad[:, 3] = np.nan
    np.save(d / "dead_neuron.npy", bad)
    inf = x.copy()
    inf[4, 1] = np.inf
    np.save(d / "inf.npy", inf)
    np.save(d / "constant.npy", np.ones((50, 4)))
    (d / "notes.xyz").write_text("hello")
    return d


def test_missing_file(files):
    _one_line_error(runner.invoke(app, ["fit", str(files / "nope.npy")]), "no such file", "nope.npy")


def test_wrong_orientation(files):
    _one_line_error(runner.invoke(app, ["fit", str(files / "transposed.npy")]), "neurons x time", "data.T")


def test_nan_neuron_and_inf(files):
    _one_line_error(runner.invoke(app, ["fit", str(files / "dead_neuron.npy")]), "NaN in every frame")
    _one_line_error(runner.invoke(app, ["fit", str(files / "inf.npy")]), "inf")


def test_constant_and_unknown_type(files):
    _one_line_error(runner.invoke(app, ["fit", str(files / "constant.npy")]), "constant")
    _one_line_error(runner.invoke(app, ["fit", str(files / "notes.xyz")]), "unknown file type")


def test_unknown_model_and_emissions(files):
    _one_line_error(runner.invoke(app, ["fit", str(files / "good.npy"), "--model", "hmmm"]),
                    "unknown model 'hmmm'", "rslds")
    _one_line_error(runner.invoke(app, ["fit", str(files / "good.npy"), "--emissions", "gamma"]),
                    "unknown emissions 'gamma'")
    _one_line_error(runner.invoke(app, ["fit", str(files / "good.npy"), "--states", "0"]), "num_states")


def test_select_bad_lists(files):
    _one_line_error(runner.invoke(app, ["select", str(files / "good.npy"), "--states", "1,x"]),
                    "comma-separated")


def test_simulate_writes_a_readable_file(tmp_path):
    out = tmp_path / "sim.npz"
    result = runner.invoke(app, ["simulate", str(out), "--neurons", "8", "--frames", "100"])
    assert result.exit_code == 0, result.output
    from ssmneuro.io import load_recording

    rec = load_recording(out)
    assert rec.traces[0].shape == (100, 8) and rec.dt == pytest.approx(0.1) and rec.labels is not None
    assert rec.label_names == ("no intruder", "intruder")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """One small end-to-end `ssmneuro fit` on the simulated recording with NaN frames (masked)."""
    import jax

    from ssmneuro.io import simulate_hypothalamus

    d = tmp_path_factory.mktemp("fit")
    sim = simulate_hypothalamus(jax.random.PRNGKey(0), num_neurons=12, num_timesteps=300)
    x = sim.recording.traces[0].copy()
    x[50:53] = np.nan
    np.savez(d / "rec.npz", traces=x, labels=sim.states, dt=0.1)
    result = runner.invoke(app, ["fit", str(d / "rec.npz"), "--model", MODEL, "--states", "2", "--latents", "2",
                                 "--iters", "3", "--out", str(d / "out")])
    return d / "out", result


def test_fit_writes_model_summary_and_report(fitted):
    import json

    import ssmneuro

    out, result = fitted
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "36 NaN value(s)" in warnings[0]  # 3 frames x 12 neurons, masked
    summary = json.loads((out / "summary.json").read_text())
    acc = summary["states_vs_behaviour"]["balanced_accuracy"]
    assert 0.0 <= acc <= 1.0 and summary["model"]["num_states"] == K
    la = summary["line_attractor"]
    assert la["interval"][0] <= la["interval"][1] and 0 <= la["prob_above_1"] <= 1
    assert np.asarray(la["time_constants_s"]).shape == (K, 2)
    assert summary["fit"]["num_iters"] == 3
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6
    model, params = ssmneuro.load(out / "model.npz")
    assert model.num_states == K and params.dynamics.weights.shape == (K, 2, 2)
    assert f"report: {(out / 'report.html').resolve()}" in result.output


def test_select_writes_scores_and_plot(tmp_path):
    import json

    import jax

    from ssmneuro.io import simulate_hypothalamus

    sim = simulate_hypothalamus(jax.random.PRNGKey(2), num_neurons=8, num_timesteps=120)
    np.save(tmp_path / "rec.npy", sim.recording.traces[0])
    result = runner.invoke(app, ["select", str(tmp_path / "rec.npy"), "--states", "1,2", "--latents", "2",
                                 "--iters", "2", "--folds", "2", "--out", str(tmp_path / "sel")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sel" / "selection.json").read_text())
    scores = np.asarray(data["cosmoothing"], float)
    assert scores.shape == (2, 1, 2) and np.all(scores < 1)  # (K candidates, D candidates, folds)
    assert np.isfinite(np.asarray(data["forecast"], float)).all()
    assert data["best_num_states"] in (1, 2) and (tmp_path / "sel" / "selection.png").stat().st_size > 1000
    assert f"best: K = {data['best_num_states']}, D = 2" in result.output
