"""Time constants, line-attractor score distributions, pulse responses and variance explained."""

import numpy as np

from ssmneuro.plotting.palette import OKABE_ITO, get_ax, state_colors


def plot_time_constants(time_constants, ax=None, *, state_names=None, units: str = "s"):
    """Time constants (K, D) (seconds, longest first) per state on a log axis, one marker per mode."""
    ax = get_ax(ax)
    tau = np.atleast_2d(np.asarray(time_constants, dtype=float))
    K, D = tau.shape
    names = state_names or [f"state {k}" for k in range(K)]
    for k, c in enumerate(state_colors(K)):
        finite = np.isfinite(tau[k])
        ax.plot(np.arange(1, D + 1)[finite], tau[k][finite], marker="o", color=c, label=names[k])
    ax.set_yscale("log")
    ax.set_xticks(np.arange(1, D + 1))
    ax.set(xlabel="mode (slowest first)", ylabel=f"time constant ({units})")
    ax.legend(fontsize=7)
    return ax


def plot_score_distribution(result, ax=None, *, bins: int = 40, color: str = OKABE_ITO[0]):
    """Histogram of line-attractor score samples (a LineAttractorScore) with its point estimate, 90%
    interval and P(score > 1); the score = 1 threshold dashed."""
    ax = get_ax(ax)
    samples = np.asarray(result.samples)
    finite = samples[np.isfinite(samples)]
    if finite.size:
        ax.hist(finite, bins=bins, color=color, alpha=0.6, density=True, label="samples")
        ax.axvspan(*result.interval, color=color, alpha=0.12,
                   label=f"{int(round(100 * result.level))}% interval [{result.interval[0]:.2f}, {result.interval[1]:.2f}]")
    ax.axvline(result.score, color="black", lw=1.5, label=f"estimate {result.score:.2f}")
    ax.axvline(1.0, color="0.4", lw=1.0, ls="--", label="score = 1")
    title = f"state {result.state}"
    if np.isfinite(result.prob_above_1):
        title += f": P(score > 1) = {result.prob_above_1:.3f}"
    ax.set(xlabel="line-attractor score log2(tau1 / tau2) (bits)", ylabel="density", title=title)
    ax.legend(fontsize=7)
    return ax


def plot_pulse_responses(responses: dict, ax=None, *, normalise: bool = True, max_time: float | None = None):
    """Predicted responses to stimulation pulses: {label: PulseResponse}; ||C delta_t|| over time (divided
    by its initial value when normalise), decay times (1/e) marked, with their intervals in the legend."""
    ax = get_ax(ax)
    for (label, r), c in zip(responses.items(), OKABE_ITO):
        y = r.response / r.response[0] if normalise else r.response
        text = f"{label}: decay {r.decay_time:.3g} s"
        if not np.any(np.isnan(r.interval)):
            hi = f"{r.interval[1]:.3g}" if np.isfinite(r.interval[1]) else f"> {r.times[-1]:.3g}"
            text += f" [{r.interval[0]:.3g}, {hi}]"
        ax.plot(r.times, y, color=c, label=text)
        if np.isfinite(r.decay_time):
            ax.axvline(r.decay_time, color=c, lw=0.8, ls=":")
    if normalise:
        ax.axhline(1 / np.e, color="0.5", lw=0.8, ls="--")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(0, max_time)
    ax.set(xlabel="time after pulse (s)", ylabel="response / initial" if normalise else "response norm")
    ax.legend(fontsize=7)
    return ax


def plot_variance_explained(ve, ax=None):
    """Bars: variance explained by each latent dimension alone, and per discrete state (VarianceExplained)."""
    ax = get_ax(ax)
    D, K = len(ve.per_dimension), len(ve.per_state)
    ax.bar(np.arange(D), ve.per_dimension, color=OKABE_ITO[4], label="per latent dimension")
    ax.bar(D + 1 + np.arange(K), ve.per_state, color=state_colors(K))
    ax.axhline(ve.total, color="black", lw=1, ls="--", label=f"total {ve.total:.2f}")
    ax.set_xticks(list(range(D)) + list(D + 1 + np.arange(K)),
                  [f"x{d + 1}" for d in range(D)] + [f"z={k}" for k in range(K)])
    ax.set(ylabel="variance explained", ylim=(min(0, float(np.nanmin(ve.per_dimension))), 1))
    ax.legend(fontsize=7)
    return ax


def plot_neuron_loadings(ranking, ax=None, *, on_set=None, off_set=None):
    """Each neuron's kick split into its slow (on-manifold) coordinate |a_n| and fast (off-manifold) part
    f_n (a NeuronRanking), with chosen stimulation sets highlighted."""
    ax = get_ax(ax)
    a, f = np.abs(ranking.slow_coordinate), ranking.fast_part
    ax.scatter(f, a, s=18, color="0.6", label="neurons")
    for idx, name, c, m in ((on_set, "on-manifold set", OKABE_ITO[0], "o"), (off_set, "off-manifold set", OKABE_ITO[1], "s")):
        if idx is not None:
            ax.scatter(f[idx], a[idx], s=40, color=c, marker=m, label=name, zorder=3)
    top = max(a.max(), f.max()) * 1.05
    ax.plot([0, top], [0, top], color="0.7", lw=0.8, ls="--")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="fast (off-manifold) part of the kick",
           ylabel="|slow (on-manifold) coordinate|")
    ax.legend(fontsize=7)
    return ax
