"""Figures of the copy-task study.

    python benchmarks/copy_figures.py [--runs benchmarks/results/copy] [--out docs/figures] [--curves-name NAME]

(the GPU runs: --runs benchmarks/results/gpu/copy --curves-name seq_copy_curves_gpu.png)

Figure 1 (seq_waves.png): hidden state of the shift SSM (nu = 1) and of nu-Wave SSMs (nu < 1) on 24 cells
driven by a few input pulses: each pulse travels down the cells at velocity nu (dashed lines t -> nu t),
spreading binomially when nu < 1.
Figure 2 (seq_copy_curves.png): answer loss and string accuracy (teacher forcing, 512 fixed strings of
length L) against training step for every run JSON written by ``python -m ssmneuro.seq.copy``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ssmneuro.seq.wave import WaveSSM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COLOURS = {"transformer-rope": "k", "transformer-alibi": "0.5", "mamba": "tab:red", "nuwave-mamba": "tab:blue",
           "nuwave-fixed1": "tab:orange", "s5": "tab:green"}


def wave_states(nu, num_cells=24, length=40, pulse_times=(0, 12, 24)):
    """Hidden states (length, num_cells) of a one-channel wave SSM with fixed nu driven by unit pulses."""
    layer = WaveSSM(1, num_cells, 1, mode="fixed", fixed_nu=nu, key=jax.random.PRNGKey(0))
    u = jnp.zeros((length, 1)).at[jnp.array(pulse_times), 0].set(1.0)
    return layer.hidden_states(u)[:, 0, 0, :], pulse_times


def plot_wave(nu, ax=None, **kwargs):
    """Image of h[t, cell] with the characteristic lines cell = nu (t - t_pulse). Returns the Axes."""
    ax = ax or plt.gca()
    h, pulses = wave_states(nu, **kwargs)
    ax.imshow(h.T, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
              extent=(-0.5, h.shape[0] - 0.5, 0.5, h.shape[1] + 0.5))
    for t0 in pulses:
        t = jnp.arange(t0, h.shape[0])
        ax.plot(t, 1 + nu * (t - t0), "w--", lw=0.8)
    ax.set(xlabel="time step t", ylabel="cell", title=f"nu = {nu:g}" + (" (shift SSM)" if nu == 1 else ""),
           ylim=(0.5, h.shape[1] + 0.5))
    return ax


def load_runs(folder):
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        with open(path) as f:
            run = json.load(f)
        if run.get("curve"):
            run["name"] = path.stem
            runs.append(run)
    return runs


def run_label(run):
    return f"{run['name']} ({run['num_params'] / 1e3:.0f}k)"


def plot_curves(runs, key, ax=None, ylabel=None, log=False):
    """One line per run of ``key`` against step; variants of an arm share its colour. Returns the Axes."""
    ax = ax or plt.gca()
    for run in runs:
        steps = [row["step"] for row in run["curve"]]
        vals = [row[key] for row in run["curve"]]
        variant = run["name"].split("_")[0].removeprefix("micro-") != run["model"]
        ax.plot(steps, vals, color=COLOURS.get(run["model"], "tab:purple"), ls=":" if variant else "-",
                label=run_label(run))
    ax.set(xlabel="training step", ylabel=ylabel or key)
    if log:
        ax.set_yscale("log")
    return ax


def figure_waves(out):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, nu in zip(axes, (1.0, 0.6, 0.3)):
        plot_wave(nu, ax=ax)
    fig.suptitle("Figure 1: hidden state of the shift SSM and nu-Wave SSMs (pulses in at cell 1)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def figure_curves(runs, out):
    """One row per string length L: answer loss and string accuracy against step."""
    lengths = sorted({r["max_len"] for r in runs})
    fig, axes = plt.subplots(len(lengths), 2, figsize=(13, 4.2 * len(lengths)), squeeze=False)
    for row, L in zip(axes, lengths):
        group = [r for r in runs if r["max_len"] == L]
        params = sorted({f"{r['num_params'] / 1e3:.0f}k" for r in group})
        plot_curves(group, "eval_loss", ax=row[0], ylabel="answer loss (eval, teacher forcing)", log=True)
        plot_curves(group, "string_acc", ax=row[1], ylabel="string accuracy (512 eval strings)")
        row[1].axhline(0.9, color="0.7", lw=0.8)
        row[1].legend(fontsize=7, loc="lower right")
        row[0].set_title(f"L = {L} (models {', '.join(params)} parameters)")
    fig.suptitle("Figure 2: copy task, every run (solid: default arm settings; dotted: variants, --scan sequential or other seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--runs", default=str(ROOT / "benchmarks" / "results" / "copy"))
    p.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    p.add_argument("--curves-name", default="seq_copy_curves.png", help="file name of Figure 2")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    figure_waves(out / "seq_waves.png")
    runs = load_runs(a.runs)
    if runs:
        figure_curves(runs, out / a.curves_name)
    print(f"wrote {out / 'seq_waves.png'}" + (f" and {out / a.curves_name} ({len(runs)} runs)" if runs else ""))


if __name__ == "__main__":
    main()
