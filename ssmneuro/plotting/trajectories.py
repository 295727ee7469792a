"""Latent trajectories coloured by discrete state, and projections of D > 2 latents onto slow modes."""

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from ssmneuro.plotting.palette import as_projection, get_ax, state_colors


def slow_mode_projection(dynamics_weights, centre=None):
    """(centre (D,), basis (D, 2)): the plane of the two slowest modes of A (D, D) (largest |lambda|),
    orthonormalised; a complex pair contributes its real and imaginary parts."""
    A = np.asarray(dynamics_weights, dtype=float)
    lam, V = np.linalg.eig(A)
    order = np.argsort(-np.abs(lam), kind="stable")
    v1 = V[:, order[0]]
    if abs(lam[order[0]].imag) > 1e-12:
        cols = [v1.real, v1.imag]
    else:
        cols = [v1.real, V[:, order[1]].real]
    basis, _ = np.linalg.qr(np.stack(cols, 1))
    basis = basis * np.sign(np.sum(basis * np.stack(cols, 1), axis=0))
    return (np.zeros(A.shape[0]) if centre is None else np.asarray(centre, float)), basis


def plot_latent_trajectory(latents, states=None, ax=None, *, projection=None, num_states: int | None = None,
                           linewidth: float = 1.5, xlabel: str = "latent 1", ylabel: str = "latent 2",
                           mark_start: bool = True):
    """A latent trajectory x (T, D) in a plane (projection = (centre, basis (D, 2)); default the first two
    axes), each segment x_t -> x_{t+1} coloured by states[t+1] (T,) int (the state driving that step)."""
    ax = get_ax(ax)
    x = np.asarray(latents, dtype=float)
    centre, basis = as_projection(projection, x.shape[1])
    xy = (x - centre) @ basis
    segments = np.stack([xy[:-1], xy[1:]], axis=1)
    if states is None:
        colors, K = ["#0072B2"] * len(segments), 0
    else:
        states = np.asarray(states, dtype=int)
        K = int(states.max()) + 1 if num_states is None else num_states
        colors = np.array(state_colors(K))[states[1:]]
    ax.add_collection(LineCollection(segments, colors=colors, linewidths=linewidth))
    if mark_start:
        ax.plot(*xy[0], marker="o", color="black", ms=4, ls="")
    ax.autoscale_view()
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if K:
        ax.legend(handles=[Line2D([], [], color=c, label=f"state {k}") for k, c in enumerate(state_colors(K))],
                  fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=min(K, 6), frameon=False)
    return ax
