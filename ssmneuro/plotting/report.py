"""The HTML report of a fit: one self-contained file, figures embedded as base64 PNG.

:func:`write_report` takes a summary dict (the one written to ``summary.json``) and a list of
:class:`Figure` (title, caption, matplotlib figure) and writes ``report.html``. The small plotting
functions here draw the report's own panels; each takes ``ax=None`` and returns the Axes.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STATE_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c",
                "#ccb974", "#64b5cd")


class Figure(NamedTuple):
    """One report panel: a title, a caption saying how to read it, and the matplotlib figure."""

    title: str
    caption: str
    figure: object


def _axes(ax, size=(6, 3)):
    if ax is None:
        _, ax = plt.subplots(figsize=size, layout="constrained")
    return ax


def plot_elbo(elbos, ax=None, best_iteration: int | None = None):
    """ELBO (or log-likelihood) per iteration; marks the kept iteration."""
    ax = _axes(ax)
    elbos = np.asarray(elbos, dtype=float)
    ax.plot(np.arange(1, elbos.size + 1), elbos, color="k", lw=1.2)
    if best_iteration is not None and 0 <= best_iteration < elbos.size:
        ax.plot(best_iteration + 1, elbos[best_iteration], "o", color=STATE_COLORS[3], label="kept")
        ax.legend(frameon=False)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set(xlabel="iteration", ylabel="ELBO")
    return ax


def plot_state_raster(states, dt: float, labels=None, label_names=(), ax=None, num_states=None):
    """Inferred discrete states over time as coloured bars, with behaviour labels underneath.

    Args:
        states: ``(T,)`` int most likely state per frame.
        labels: optional ``(T,)`` int behaviour labels, drawn as a grey/black strip below.
    """
    ax = _axes(ax, (10, 2.2))
    states = np.asarray(states)
    K = int(num_states or states.max() + 1)
    cmap = matplotlib.colors.ListedColormap([STATE_COLORS[k % len(STATE_COLORS)] for k in range(K)])
    T = states.size
    ticks, names = [0.5], ["state"]
    extent_top = 1.0
    ax.imshow(states[None], aspect="auto", cmap=cmap, vmin=-0.5, vmax=K - 0.5, interpolation="nearest",
              extent=(0, T * dt, 1, 0))
    if labels is not None:
        labels = np.asarray(labels)
        L = int(max(labels.max() + 1, 2))
        ax.imshow(labels[None], aspect="auto", cmap="Greys", vmin=0, vmax=L - 1, interpolation="nearest",
                  extent=(0, T * dt, 1.9, 1.1))
        ticks.append(1.5)
        names.append("behaviour")
        extent_top = 1.9
    ax.set_ylim(extent_top, 0)
    ax.set_yticks(ticks, names)
    ax.set_xlabel("time (s)")
    handles = [matplotlib.patches.Patch(color=STATE_COLORS[k % len(STATE_COLORS)], label=f"state {k}")
               for k in range(K)]
    if labels is not None and label_names:
        handles.append(matplotlib.patches.Patch(color="black", label=f"{label_names[-1]} (behaviour)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return ax


def plot_time_constants(time_constants, ax=None, interval=None):
    """Time constants (seconds, log scale) of each state's dynamics, slowest first.

    Args:
        time_constants: ``(K, D)`` seconds.
    """
    ax = _axes(ax, (6, 3))
    tau = np.sort(np.asarray(time_constants, dtype=float), axis=-1)[:, ::-1]
    K, D = tau.shape
    width = 0.8 / K
    for k in range(K):
        ax.bar(np.arange(D) + k * width, tau[k], width=width, color=STATE_COLORS[k % len(STATE_COLORS)],
               label=f"state {k}")
    ax.set_yscale("log")
    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if tau[np.isfinite(tau)].size:
        finite = tau[np.isfinite(tau) & (tau > 0)]
        ax.set_ylim(finite.min() / 2, finite.max() * 2)
    ax.set_xticks(np.arange(D) + 0.4 - width / 2, [f"mode {i + 1}" for i in range(D)])
    ax.set_ylabel("time constant (s)")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_score_samples(samples, score: float, interval=None, ax=None):
    """Histogram of line-attractor score samples, with the estimate, its interval and the line at 1."""
    ax = _axes(ax, (6, 3))
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size:
        ax.hist(samples, bins=30, color="#9ab", edgecolor="white")
    ax.axvline(score, color="k", lw=1.5, label=f"score {score:.2f}")
    if interval is not None:
        ax.axvspan(interval[0], interval[1], color="k", alpha=0.1, label="interval")
    ax.axvline(1.0, color=STATE_COLORS[3], ls="--", label="score = 1")
    ax.set(xlabel="line-attractor score  (log2 tau_1 / tau_2)", ylabel="samples")
    ax.legend(frameon=False, fontsize=8)
    return ax


def plot_variance_explained(per_neuron, ax=None, total: float | None = None):
    """Variance explained per neuron (sorted), with the overall value."""
    ax = _axes(ax, (6, 3))
    r2 = np.sort(np.asarray(per_neuron, dtype=float))[::-1]
    ax.bar(np.arange(r2.size), r2, color="#678", width=1.0)
    if total is not None:
        ax.axhline(total, color="k", ls="--", label=f"overall {total:.2f}")
        ax.legend(frameon=False)
    ax.set(xlabel="neuron (sorted)", ylabel="variance explained", ylim=(min(0, r2.min()), 1))
    return ax


def figure_to_base64_png(fig, dpi: int = 110) -> str:
    """The figure as a base64 PNG string (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; max-width: 1000px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { padding: 0.25em 0.9em; text-align: left;
        border-bottom: 1px solid #eee; vertical-align: top; } th { color: #555; font-weight: 600; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 1em; min-width: 12em; }
.card .v { font-size: 1.5em; font-weight: 600; } .card .k { color: #666; font-size: 0.85em; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; }
figcaption { color: #444; font-size: 0.92em; max-width: 52em; }
.info { background: #eef5fb; border-left: 4px solid #4c72b0; padding: 0.4em 0.8em; }
.warn { background: #fff6e0; border-left: 4px solid #e0a000; padding: 0.4em 0.8em; }
code { background: #f4f4f4; padding: 0 0.25em; }
"""


def write_report(path, summary: dict, figures: list[Figure], cards: list[tuple[str, str, str]] = (),
                 notes: list[str] = (), context: list[str] = ()) -> Path:
    """Write a self-contained HTML report.

    Args:
        path: where to write ``report.html``.
        summary: the summary dict; ``summary["title"]``, ``["subtitle"]`` head the page and the flat
            entries of ``summary["table"]`` (a dict of label -> text) fill the key-numbers table.
        figures: panels in order.
        cards: headline numbers, each ``(value, label, tooltip)``.
        notes: warnings shown at the top (e.g. "the fit stopped early").
        context: plain information lines shown under the title.
    """
    path = Path(path)
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(summary.get('title', 'ssmneuro'))}"
             f"</title><style>{_CSS}</style></head><body>",
             f"<h1>{esc(summary.get('title', 'ssmneuro report'))}</h1>",
             f"<p class='sub'>{esc(summary.get('subtitle', ''))}</p>"]
    for line in context:
        parts.append(f"<p class='info'>{esc(line)}</p>")
    for note in notes:
        parts.append(f"<p class='warn'>{esc(note)}</p>")
    if cards:
        parts.append("<div class='cards'>")
        for value, label, tip in cards:
            parts.append(f"<div class='card' title='{esc(tip)}'><div class='v'>{esc(value)}</div>"
                         f"<div class='k'>{esc(label)}</div></div>")
        parts.append("</div>")
    table = summary.get("table", {})
    if table:
        parts.append("<h2>Key numbers</h2><table>")
        parts.extend(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in table.items())
        parts.append("</table>")
    for fig in figures:
        data = figure_to_base64_png(fig.figure)
        parts.append(f"<h2>{esc(fig.title)}</h2><figure><img alt='{esc(fig.title)}' "
                     f"src='data:image/png;base64,{data}'><figcaption>{esc(fig.caption)}</figcaption></figure>")
    parts.append("<p class='sub'>Written by ssmneuro. Numbers are also in <code>summary.json</code>; the fitted "
                 "model is in <code>model.npz</code> (<code>ssmneuro.load</code>).</p></body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def plot_flow_field(grid, drift, state=None, trajectory=None, fixed_points=None, ax=None):
    """Arrows of the drift on a 2-D grid, coloured by the most likely state, with a latent trajectory.

    Args:
        grid: ``(G, G, 2)`` coordinates; drift: ``(G, G, 2)`` ``E[x_{t+1}] - x_t`` in the same plane;
        state: ``(G, G)`` int state used at each point; trajectory: ``(T, 2)``;
        fixed_points: ``(P, 2)`` points to mark (filled = stable, open = unstable via ``stable`` list)
            or a list of dicts with ``projected`` and ``stable``.
    """
    ax = _axes(ax, (5.5, 5))
    grid, drift = np.asarray(grid), np.asarray(drift)
    colors = ("k" if state is None else
              [STATE_COLORS[int(k) % len(STATE_COLORS)] for k in np.asarray(state).ravel()])
    if state is not None:
        K = int(np.asarray(state).max()) + 1
        shade = matplotlib.colors.ListedColormap([STATE_COLORS[k % len(STATE_COLORS)] for k in range(K)])
        ax.pcolormesh(grid[..., 0], grid[..., 1], state, cmap=shade, alpha=0.12, shading="nearest",
                      vmin=-0.5, vmax=K - 0.5)
    speed = np.linalg.norm(drift, axis=-1).ravel()
    scale = np.percentile(speed, 95) + 1e-12
    step = np.abs(grid[0, 1, 0] - grid[0, 0, 0])
    u, v = (drift / scale * step).reshape(-1, 2).T
    ax.quiver(grid[..., 0].ravel(), grid[..., 1].ravel(), u, v, color=colors, angles="xy",
              scale_units="xy", scale=1, width=0.003)
    if trajectory is not None:
        ax.plot(*np.asarray(trajectory).T, color="k", lw=0.6, alpha=0.5)
    if fixed_points is not None:
        for fp in fixed_points:
            if fp.get("projected") is None:
                continue
            x, y = fp["projected"]
            k = fp.get("state", 0)
            inside = (grid[..., 0].min() <= x <= grid[..., 0].max()) and (grid[..., 1].min() <= y <= grid[..., 1].max())
            if inside:
                ax.plot(x, y, "o", ms=9, mec="k", mew=1.5,
                        mfc=STATE_COLORS[k % len(STATE_COLORS)] if fp.get("stable", True) else "white")
    ax.set(xlabel="latent PC 1", ylabel="latent PC 2")
    ax.set_xlim(grid[..., 0].min(), grid[..., 0].max())
    ax.set_ylim(grid[..., 1].min(), grid[..., 1].max())
    return ax


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _fmt(x, digits=3):
    return "n/a" if x is None else f"{x:.{digits}g}"


def main_report_figures(summary: dict, elbos, best_iteration, states, labels, dt: float, label_names,
                        num_states: int, flow: dict | None, attractor: dict | None) -> list[Figure]:
    """The report's panels from the job's numbers and arrays (first trial for the raster)."""
    figs = []
    ax = plot_elbo(elbos, best_iteration=best_iteration)
    figs.append(Figure("Fit: ELBO per iteration", "The evidence lower bound should rise and level off; the "
                       "dot marks the iteration whose parameters were kept. A curve still rising means "
                       "more iterations (--iters) may help.", ax.figure))
    behaviour = summary.get("states_vs_behaviour")
    ax = plot_state_raster(states, dt, labels=labels, label_names=label_names, num_states=num_states)
    caption = "Most likely discrete state in each frame (top)"
    if behaviour:
        caption += (f" against the behaviour labels (bottom, dark = {label_names[-1]}). Balanced accuracy of "
                    f"states read out as behaviour: {behaviour['balanced_accuracy']:.2f} (chance 0.5; "
                    f"{behaviour['balanced_accuracy_held_out_half']:.2f} when the state-to-label map is learned "
                    "on the first half and scored on the second).")
    else:
        caption += ". No behaviour labels were given."
    figs.append(Figure("Discrete states over time", caption, ax.figure))
    if flow is not None:
        ax = plot_flow_field(flow["grid"], flow["drift"], flow["state"], flow["trajectory"],
                             summary.get("fixed_points"))
        figs.append(Figure("Flow field and fixed points", "Arrows: where the latent state moves in one step "
                           "(E[x_{t+1}] - x_t), drawn in the plane of the two leading principal components of "
                           "the inferred latents, coloured by the state the model would use there. Thin line: "
                           "the inferred trajectory. Circles: each state's fixed point (filled = stable, open = "
                           "unstable), shown when it falls inside the plotted area. Short arrows along a line "
                           "with long arrows towards it are the signature of a line attractor.", ax.figure))
    la = summary.get("line_attractor")
    if la is not None:
        ax = plot_time_constants(la["time_constants_s"])
        figs.append(Figure("Time constants of each state's dynamics", "Time constant of every eigen-mode of "
                           "each state's dynamics matrix, tau = dt / |ln|lambda||, in seconds (log scale). One "
                           "mode far slower than the others is what a line attractor looks like.", ax.figure))
        if attractor is not None and len(attractor.get("samples", [])):
            ax = plot_score_samples(attractor["samples"], la["score"], la["interval"])
            figs.append(Figure("Line-attractor score and its uncertainty", "score = log2(tau_1 / tau_2), the "
                               "ratio of the two slowest time constants in doublings; samples reflect posterior "
                               f"uncertainty. P(score > 1) = {la['prob_above_1']:.2f}: the probability that the "
                               "slowest mode is more than twice as slow as the next.", ax.figure))
    ve = summary.get("variance_explained")
    if ve is not None:
        ax = plot_variance_explained(ve["per_neuron"], total=ve["overall"])
        figs.append(Figure("Variance explained", "Fraction of each neuron's variance captured by the model's "
                           "prediction from the inferred latents, E[y | E[x]] (in-sample).", ax.figure))
    return figs


def summary_table(summary: dict) -> dict:
    """Flat label -> text rows for the report's key-numbers table."""
    rec, model, fit = summary["recording"], summary["model"], summary["fit"]
    dropped = f" ({rec['neurons_dropped']} silent ones dropped)" if rec["neurons_dropped"] else ""
    rows = {"recording": f"{rec['name']}: {rec['trials']} trial(s), {rec['frames']} frames, {rec['neurons']} "
                         f"neurons{dropped}, dt = {rec['dt_s']:.3g} s",
            "model": f"{model['model']}: K = {model['num_states']} states, D = {model['latent_dim']} latents, "
                     f"{model['emissions']} emissions, {fit['num_iters']} iterations, seed {model['seed']}",
            "final ELBO": _fmt(fit["final_elbo"], 6)}
    behaviour = summary.get("states_vs_behaviour")
    if behaviour:
        rows["states vs behaviour"] = (f"balanced accuracy {behaviour['balanced_accuracy']:.3f} (held-out half "
                                       f"{behaviour['balanced_accuracy_held_out_half']:.3f}; chance 0.5); "
                                       f"states map to {behaviour['state_to_label']}")
    la = summary.get("line_attractor")
    if la:
        level = int(round(100 * la.get("level", 0.9)))
        which = (f" (state {la['state']}, the most line-like)"
                 if "state" in la and len(la["time_constants_s"]) > 1 else "")
        rows["line-attractor score"] = (f"{la['score']:.2f}{which}, {level}% interval {la['interval'][0]:.2f} to "
                                        f"{la['interval'][1]:.2f}; P(score > 1) = {la['prob_above_1']:.2f}")
        slow = [max(t) for t in la["time_constants_s"]]
        rows["slowest time constant per state"] = ", ".join(f"{_fmt(t)} s" for t in slow)
    ve = summary.get("variance_explained")
    if ve:
        rows["variance explained"] = f"{ve['overall']:.3f}"
    fps = summary.get("fixed_points")
    if fps:
        rows["fixed points"] = ", ".join(f"state {f['state']}: {f.get('kind', 'stable' if f['stable'] else 'unstable')} "
                                         f"(max |lambda| {f['max_abs_eigenvalue']:.3f})" for f in fps)
    t = summary.get("timings_s", {})
    rows["time"] = ", ".join(f"{k[:-2]} {v:.1f} s" for k, v in t.items() if v)
    return rows


def write_main_report(path, summary: dict, elbos, best_iteration, states, labels, dt, label_names,
                      num_states, flow=None, attractor=None, context=()) -> Path:
    """The main job's report: headline cards, key-numbers table and the panels of
    :func:`main_report_figures`; ``context`` lines are shown under the title."""
    cards = []
    behaviour = summary.get("states_vs_behaviour")
    if behaviour:
        cards.append((f"{behaviour['balanced_accuracy']:.2f}", "balanced accuracy, states vs behaviour",
                      "chance is 0.5"))
    la = summary.get("line_attractor")
    if la:
        cards.append((f"{la['score']:.2f}", f"line-attractor score [{la['interval'][0]:.1f}, "
                      f"{la['interval'][1]:.1f}]", "log2 of tau_1 / tau_2"))
        cards.append((f"{la['prob_above_1']:.2f}", "P(score > 1)", "posterior probability"))
    ve = summary.get("variance_explained")
    if ve:
        cards.append((f"{ve['overall']:.2f}", "variance explained", "in-sample R^2"))
    notes = []
    if summary["fit"].get("rejected_iterations"):
        notes.append(f"{len(summary['fit']['rejected_iterations'])} iteration(s) were rejected (NaN or a large "
                     "ELBO drop) and rolled back; the kept parameters are the best seen.")
    rec, model = summary["recording"], summary["model"]
    page = dict(summary, title=f"ssmneuro report: {rec['name']}",
                subtitle=f"{model['model'].upper()} with {_count(model['num_states'], 'discrete state')} and "
                         f"{_count(model['latent_dim'], 'latent dimension')}, {model['emissions']} emissions",
                table=summary_table(summary))
    figs = main_report_figures(summary, elbos, best_iteration, states, labels, dt, label_names, num_states,
                               flow, attractor)
    return write_report(path, page, figs, cards=cards, notes=notes, context=context)
