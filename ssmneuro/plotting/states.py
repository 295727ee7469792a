"""Discrete-state rasters aligned with behaviour labels."""

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from ssmneuro.plotting.palette import get_ax, state_colors

_BEHAVIOUR_GREYS = ["#E4E4E4", "#BBBBBB", "#777777", "#333333", "#DDDDDD", "#999999", "#555555"]


def plot_state_raster(states, ax=None, *, dt: float = 1.0, behaviour=None, behaviour_names=None,
                      num_states: int | None = None, time_unit: str = "s"):
    """Most likely discrete state per bin, one row per trial, with behaviour labels as a grey band above
    each trial row.

    states: (T,) int or list of (T_i,) int; behaviour: same layout, int labels (or None);
    behaviour_names: names of the behaviour labels; dt: bin width (x axis in time_unit).
    """
    ax = get_ax(ax)
    trials = [np.asarray(states, int)] if np.ndim(states[0]) == 0 else [np.asarray(s, int) for s in states]
    K = max(int(s.max()) for s in trials) + 1 if num_states is None else num_states
    Tmax = max(len(s) for s in trials)
    grid = np.full((len(trials), Tmax), np.nan)
    for i, s in enumerate(trials):
        grid[i, : len(s)] = s
    rows_per_trial = 1.0 if behaviour is None else 1.3
    cmap = ListedColormap(state_colors(K))
    for i in range(len(trials)):
        y0 = i * rows_per_trial
        ax.imshow(grid[i:i + 1], aspect="auto", cmap=cmap, vmin=-0.5, vmax=K - 0.5, interpolation="nearest",
                  extent=(0, Tmax * dt, y0 + 1, y0))
    handles = [Patch(color=c, label=f"state {k}") for k, c in enumerate(state_colors(K))]
    if behaviour is not None:
        beh = [np.asarray(behaviour, int)] if np.ndim(behaviour[0]) == 0 else [np.asarray(b, int) for b in behaviour]
        B = max(int(b.max()) for b in beh) + 1
        greys = ListedColormap([_BEHAVIOUR_GREYS[j % len(_BEHAVIOUR_GREYS)] for j in range(B)])
        for i, b in enumerate(beh):
            y0 = i * rows_per_trial + 1.02
            ax.imshow(b[None], aspect="auto", cmap=greys, vmin=-0.5, vmax=B - 0.5, interpolation="nearest",
                      extent=(0, len(b) * dt, y0 + 0.25, y0))
        names = behaviour_names or [f"behaviour {j}" for j in range(B)]
        handles += [Patch(facecolor=_BEHAVIOUR_GREYS[j % len(_BEHAVIOUR_GREYS)], edgecolor="0.3", label=names[j])
                    for j in range(B)]
    ax.set_xlim(0, Tmax * dt)
    ax.set_ylim(len(trials) * rows_per_trial, 0)
    ax.set_yticks((np.arange(len(trials)) + 0.5) * rows_per_trial, [str(i) for i in range(len(trials))])
    ax.set(xlabel=f"time ({time_unit})", ylabel="trial")
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax
