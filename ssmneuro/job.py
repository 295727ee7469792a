"""The main job: a recording in; a fitted switching model, ``summary.json`` and ``report.html`` out.

Steps (each a small function, so that notebooks and the CLI can call them one at a time):

1. :func:`prepare` — drop silent neurons; z-score for Gaussian emissions.
2. :func:`fit_model` — build the model (``rslds`` | ``slds`` | ``lds``) and run ``model.fit``.
3. :func:`analyse` — states vs behaviour (balanced accuracy), line-attractor score with its interval,
   time constants, fixed points, flow field, variance explained.
4. :func:`write_outputs` — ``model.npz``, ``summary.json``, ``report.html``.

:func:`run_main_job` runs all four.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from ssmneuro.io import Recording, drop_silent_neurons, zscore

MODELS = ("rslds", "slds", "lds")
EMISSIONS = ("gaussian", "poisson", "calcium")


class JobConfig(NamedTuple):
    """What to fit. ``num_iters`` are EM / Laplace-EM iterations."""

    model: str = "rslds"
    num_states: int = 4
    latent_dim: int = 4
    emissions: str = "gaussian"
    num_iters: int = 50
    seed: int = 0
    score_samples: int = 1000


class JobResult(NamedTuple):
    """Everything the job produced. ``summary`` is what ``summary.json`` holds."""

    model: object
    fit: object
    recording: Recording
    states: list
    summary: dict
    analysis: dict


def check_config(config: JobConfig) -> JobConfig:
    """ValueError for an unknown model or emission family, or sizes < 1."""
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; choose one of {', '.join(MODELS)}")
    if config.emissions not in EMISSIONS:
        raise ValueError(f"unknown emissions {config.emissions!r}; choose one of {', '.join(EMISSIONS)}")
    for name in ("num_states", "latent_dim", "num_iters"):
        if getattr(config, name) < 1:
            raise ValueError(f"{name} = {getattr(config, name)}; it must be at least 1")
    if config.model == "lds" and config.num_states != 1:
        config = config._replace(num_states=1)
    return config


def prepare(rec: Recording, emissions: str) -> tuple[Recording, np.ndarray]:
    """Drop silent/constant neurons; z-score when emissions are Gaussian.

    Count emissions (poisson) need non-negative integer data; calcium emissions need traces.
    Returns: ``(recording, kept neuron indices)``.
    """
    rec, kept = drop_silent_neurons(rec)
    if emissions == "gaussian":
        rec = zscore(rec)
    elif emissions == "poisson":
        values = np.concatenate(rec.traces)
        if values.min() < 0 or not np.allclose(values, np.round(values)):
            raise ValueError("poisson emissions need spike counts (non-negative integers); these data are "
                             "not counts — use --emissions gaussian (or calcium for fluorescence)")
    return rec, kept


def build_model(config: JobConfig, num_neurons: int):
    """The model object named by ``config.model``."""
    import ssmneuro

    if config.model == "rslds":
        return ssmneuro.RSLDS(config.num_states, config.latent_dim, num_neurons, emissions=config.emissions)
    if config.model == "slds":
        return ssmneuro.SLDS(config.num_states, config.latent_dim, num_neurons, emissions=config.emissions)
    return ssmneuro.LDS(config.latent_dim, num_neurons, emissions=config.emissions)


def fit_model(rec: Recording, config: JobConfig, key, verbose: bool = True):
    """Build and fit the model. Returns ``(model, FitResult)``."""
    model = build_model(config, rec.num_neurons)
    result = model.fit(rec.traces, key=key, masks=rec.masks, num_iters=config.num_iters, verbose=verbose)
    return model, result


def most_likely_states(fit) -> list:
    """Per trial ``(T_i,)`` argmax of the posterior state probabilities."""
    return [np.asarray(p.discrete_probs).argmax(-1) for p in fit.posterior]


def balanced_accuracy(states, labels, num_states: int, fit_frames=None) -> tuple[float, np.ndarray]:
    """Balanced accuracy of states read out as behaviour labels, and the state -> label map.

    Each state k is mapped to the label l maximising ``n(k, l) / n(l)`` (the fraction of label l's frames
    that state k covers); this map maximises the balanced accuracy ``mean_l recall(l)``.
    ``fit_frames`` (bool ``(T,)``) learns the map on those frames only and scores the others.

    Args:
        states, labels: ``(T,)`` ints (all trials concatenated).
    Returns: ``(balanced accuracy, (K,) label of each state)``.
    """
    states, labels = np.asarray(states), np.asarray(labels)
    train = np.ones(states.size, bool) if fit_frames is None else np.asarray(fit_frames)
    test = train if fit_frames is None else ~train
    L = int(labels.max()) + 1
    counts = np.zeros((num_states, L))
    np.add.at(counts, (states[train], labels[train]), 1)
    per_label = np.maximum(counts.sum(0), 1)
    state_to_label = (counts / per_label).argmax(1)
    predicted = state_to_label[states[test]]
    truth = labels[test]
    recalls = [np.mean(predicted[truth == l] == l) for l in range(L) if np.any(truth == l)]
    return float(np.mean(recalls)), state_to_label


def states_vs_behaviour(states: list, rec: Recording, num_states: int) -> dict | None:
    """Balanced accuracy on all frames and, honestly, with the map learned on the first half only."""
    if rec.labels is None:
        return None
    z, lab = np.concatenate(states), np.concatenate(rec.labels)
    acc, mapping = balanced_accuracy(z, lab, num_states)
    first_half = np.arange(z.size) < z.size // 2
    held_out, _ = balanced_accuracy(z, lab, num_states, fit_frames=first_half)
    occupancy = np.bincount(z, minlength=num_states) / z.size
    return {"balanced_accuracy": acc, "balanced_accuracy_held_out_half": held_out, "chance": 0.5,
            "state_to_label": [rec.label_names[m] if m < len(rec.label_names) else int(m) for m in mapping],
            "state_occupancy": occupancy.round(4).tolist()}


def line_attractor(model, fit, rec: Recording, key, num_samples: int) -> dict:
    """Line-attractor score of the most line-like state, its interval, P(score > 1), every state's time
    constants (``ssmneuro.analysis.line_attractor_score``, conjugate posterior over the dynamics)."""
    from ssmneuro.analysis.score import line_attractor_score

    s = line_attractor_score(model, fit.params, rec.dt, data=rec.traces, key=key, posterior=fit.posterior,
                             masks=rec.masks, num_samples=num_samples)
    return {"score": float(s.score), "interval": np.asarray(s.interval, float).tolist(),
            "prob_above_1": float(s.prob_above_1), "level": float(s.level), "state": int(s.state),
            "scores_per_state": np.asarray(s.scores, float).tolist(), "method": s.method,
            "time_constants_s": np.asarray(s.time_constants, float).tolist(),
            "samples": np.asarray(s.samples, float).ravel()}


def variance_explained(model, params, rec: Recording, fit) -> dict:
    """R^2 of E[y | E[x]] per neuron and overall: ``1 - sum (y - yhat)^2 / sum (y - mean y)^2``
    over observed entries of all trials."""
    y = np.concatenate(rec.traces)
    m = np.ones(y.shape, bool) if rec.masks is None else np.concatenate(rec.masks)
    yhat = np.concatenate([np.asarray(model.emission_mean(params, p.latent_means)) for p in fit.posterior])
    resid = ((y - yhat) ** 2 * m).sum(0)
    mean = (y * m).sum(0) / m.sum(0)
    total = (((y - mean) ** 2) * m).sum(0)
    return {"overall": float(1 - resid.sum() / total.sum()), "per_neuron": (1 - resid / total).tolist()}


def flow_field(model, params, fit, grid_size: int = 25) -> dict:
    """Drift ``E[x_{t+1}] - x_t`` on a grid in the plane of the top two principal components of the
    posterior means; each grid point uses its most likely next state ``argmax transition_logits``.

    Returns arrays ``grid (G, G, 2)``, ``drift (G, G, 2)``, ``state (G, G)``, ``trajectory (T, 2)``
    (first trial), ``center (D,)``, ``basis (D, 2)``.
    """
    means = np.concatenate([np.asarray(p.latent_means) for p in fit.posterior])
    center = means.mean(0)
    D = means.shape[1]
    if D == 1:
        basis = np.array([[1.0, 0.0]])
    else:
        _, _, vt = np.linalg.svd(means - center, full_matrices=False)
        basis = vt[:2].T
    proj = (means - center) @ basis
    lo, hi = np.percentile(proj, 1, 0), np.percentile(proj, 99, 0)
    pad = 0.15 * (hi - lo + 1e-9)
    axes = [np.linspace(lo[i] - pad[i], hi[i] + pad[i], grid_size) for i in range(2)]
    grid = np.stack(np.meshgrid(*axes, indexing="xy"), -1)
    points = center + grid.reshape(-1, 2) @ basis.T
    dyn = params.dynamics
    A, b = np.asarray(dyn.weights), np.asarray(dyn.biases)
    logits = np.asarray(jax.vmap(lambda x: model.transition_logits(params, x))(points))
    k = logits.argmax(-1)
    nxt = np.einsum("pij,pj->pi", A[k], points) + b[k]
    drift = (nxt - points) @ basis
    T0 = fit.posterior[0].latent_means.shape[0]
    return {"grid": grid, "drift": drift.reshape(grid_size, grid_size, 2),
            "state": k.reshape(grid_size, grid_size), "trajectory": proj[:T0], "center": center,
            "basis": basis}


def fixed_points(params, center, basis, dt: float) -> list[dict]:
    """Each state's fixed point ``x* = (I - A_k)^{-1} b_k`` (``ssmneuro.analysis.linear.state_dynamics``),
    its kind (stable / unstable / saddle / marginal) and its projection onto the flow-field plane."""
    from ssmneuro.analysis.linear import state_dynamics

    dyn = params.dynamics
    sd = state_dynamics(np.asarray(dyn.weights, float), np.asarray(dyn.biases, float), dt)
    out = []
    for k in range(sd.fixed_points.shape[0]):
        x = sd.fixed_points[k]
        exists = bool(sd.has_fixed_point[k])
        out.append({"state": k, "point": x.tolist() if exists else None,
                    "projected": ((x - center) @ basis).tolist() if exists else None,
                    "kind": str(sd.kind[k]), "stable": str(sd.kind[k]) == "stable",
                    "max_abs_eigenvalue": float(np.abs(sd.eigenvalues[k]).max())})
    return out


def analyse(model, fit, rec: Recording, config: JobConfig, key) -> tuple[dict, dict, list]:
    """All numbers of the report. Returns ``(summary dict, arrays for figures, states)``."""
    params = fit.params
    states = most_likely_states(fit)
    behaviour = states_vs_behaviour(states, rec, model.num_states if config.model != "lds" else 1)
    attractor = line_attractor(model, fit, rec, key, config.score_samples) if config.latent_dim > 1 else None
    ve = variance_explained(model, params, rec, fit)
    flow = flow_field(model, params, fit)
    fps = fixed_points(params, flow["center"], flow["basis"], rec.dt)
    summary = {"states_vs_behaviour": behaviour,
               "line_attractor": None if attractor is None else {k: v for k, v in attractor.items()
                                                                 if k != "samples"},
               "variance_explained": ve, "fixed_points": fps}
    arrays = {"flow": flow, "attractor": attractor}
    return summary, arrays, states


def run_main_job(rec: Recording, config: JobConfig, out_dir, verbose: bool = True,
                 log=print, context: list[str] = ()) -> JobResult:
    """Prepare, fit, analyse and write ``model.npz``, ``summary.json`` and ``report.html`` to ``out_dir``.

    ``context``: lines shown at the top of the report (e.g. the truth behind a simulated recording).
    """
    from ssmneuro.plotting.report import write_main_report

    config = check_config(config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    tic = time.perf_counter()
    rec_in = rec
    rec, kept = prepare(rec, config.emissions)
    if rec.num_neurons < rec_in.num_neurons:
        log(f"dropped {rec_in.num_neurons - rec.num_neurons} silent/constant neuron(s)")
    key_fit, key_score = jax.random.split(jax.random.PRNGKey(config.seed))
    log(f"fitting {config.model} (K={config.num_states}, D={config.latent_dim}, {config.emissions}) to "
        f"{rec.describe()}")
    t0 = time.perf_counter()
    model, fit = fit_model(rec, config, key_fit, verbose=verbose)
    timings["fit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    log("analysing: states, line-attractor score, fixed points, flow field")
    numbers, arrays, states = analyse(model, fit, rec, config, key_score)
    timings["analysis_s"] = time.perf_counter() - t0
    import ssmneuro

    ssmneuro.save(out_dir / "model.npz", model, fit.params)
    elbos = np.asarray(fit.elbos, float)
    summary = {
        "recording": {"name": rec.name, "trials": rec.num_trials, "frames": rec.num_frames,
                      "neurons": rec.num_neurons, "neurons_dropped": rec_in.num_neurons - rec.num_neurons,
                      "kept_neurons": kept.tolist(), "dt_s": rec.dt,
                      "label_names": list(rec.label_names)},
        "model": dict(config._asdict()),
        "fit": {"num_iters": int(elbos.size), "final_elbo": _finite(elbos[-1]) if elbos.size else None,
                "best_elbo": _finite(np.nanmax(elbos)) if elbos.size else None,
                "best_iteration": int(fit.best_iteration), "rejected_iterations": list(map(int, fit.rejected))},
        **numbers,
    }
    t0 = time.perf_counter()
    timings["report_s"] = 0.0
    summary["timings_s"] = timings
    write_main_report(out_dir / "report.html", summary, elbos, fit.best_iteration, states[0],
                      None if rec.labels is None else rec.labels[0], rec.dt, rec.label_names,
                      config.num_states, arrays["flow"], arrays["attractor"], context=list(context))
    timings["report_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - tic
    (out_dir / "summary.json").write_text(json.dumps(_jsonable(summary), indent=2))
    return JobResult(model=model, fit=fit, recording=rec, states=states, summary=summary, analysis=arrays)


def _finite(x):
    x = float(x)
    return x if np.isfinite(x) else None


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, jax.Array)):
        return _jsonable(np.asarray(obj).tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return obj


def write_selection(rec, out_dir, num_states, latent_dims, model="rslds", emissions="gaussian",
                    num_folds=2, num_iters=20, seed=0, log=None):
    """Prepare ``rec``, run :func:`select_model`, write ``selection.json`` and ``selection.png``."""
    import matplotlib.pyplot as plt

    from ssmneuro.analysis.selection import plot_selection, select_model

    if emissions not in EMISSIONS:
        raise ValueError(f"unknown emissions {emissions!r}; choose one of {', '.join(EMISSIONS)}")
    rec, _ = prepare(rec, emissions)
    result = select_model(rec, num_states, latent_dims, model=model, emissions=emissions, num_folds=num_folds,
                          num_iters=num_iters, key=jax.random.PRNGKey(seed), log=log)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), layout="constrained")
    plot_selection(result, axes[0])
    plot_selection(result, axes[1], metric="forecast")
    fig.savefig(out_dir / "selection.png", dpi=110)
    plt.close(fig)
    data = {k: (np.asarray(v).tolist() if isinstance(v, np.ndarray) else v) for k, v in result._asdict().items()}
    data["recording"] = rec.name
    (out_dir / "selection.json").write_text(json.dumps(data, indent=2, default=lambda v: None))
    return result
