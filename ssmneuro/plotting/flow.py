"""Flow fields, nullclines and fixed points in a 2-D plane of the latent space."""

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.lines import Line2D

from ssmneuro.plotting.palette import as_projection, get_ax, state_colors


def flow_on_grid(f: Callable, xlim, ylim, num_points: int = 25, time: str = "discrete", projection=None,
                 dim: int = 2, state_fn: Callable | None = None):
    """Velocity of f on a grid in a plane. Returns (X, Y (n, n) plane coordinates, U, V (n, n) projected
    velocity (f(x) - x for a map, f(x) for a drift), states (n, n) int or None)."""
    centre, basis = as_projection(projection, dim)
    gx, gy = np.meshgrid(np.linspace(*xlim, num_points), np.linspace(*ylim, num_points))
    pts = centre + np.stack([gx.ravel(), gy.ravel()], 1) @ basis.T
    pts = jnp.asarray(pts, dtype=jnp.result_type(float))
    vel = jax.vmap(f)(pts) - (pts if time == "discrete" else 0.0)
    uv = np.asarray(vel) @ basis
    states = None
    if state_fn is not None:
        states = np.asarray(jax.vmap(lambda x: jnp.argmax(state_fn(x)))(pts)).reshape(gx.shape)
    return gx, gy, uv[:, 0].reshape(gx.shape), uv[:, 1].reshape(gx.shape), states


def plot_flow_field(f: Callable, xlim=(-3, 3), ylim=(-3, 3), ax=None, *, time: str = "discrete",
                    state_fn: Callable | None = None, num_states: int | None = None, projection=None,
                    dim: int = 2, num_points: int = 25, style: str = "quiver", nullclines: bool = True,
                    xlabel: str = "latent 1", ylabel: str = "latent 2"):
    """Flow field of a map (time="discrete": arrows f(x) - x) or drift (f(x)) in a plane.

    state_fn: x (D,) -> (K,) logits; arrows coloured by the most likely state. projection: (centre (D,),
    basis (D, 2)) for D > 2 (default: the first two axes); dim: D. style: "quiver" or "stream".
    Nullclines (zero contours of each projected velocity component) as dashed / dotted grey lines.
    """
    ax = get_ax(ax)
    X, Y, U, V, states = flow_on_grid(f, xlim, ylim, num_points, time, projection, dim, state_fn)
    K = (int(states.max()) + 1 if num_states is None else num_states) if states is not None else 1
    colors = np.array(state_colors(K))
    c = colors[states] if states is not None else np.full(X.shape, "#555555")
    if style == "stream":
        ax.streamplot(X, Y, U, V, color="#555555", density=1.0, linewidth=0.8, arrowsize=0.8)
        if states is not None:
            ax.pcolormesh(X, Y, states, cmap=ListedColormap(list(colors)), vmin=-0.5, vmax=K - 0.5, alpha=0.15,
                          shading="auto")
    elif style == "quiver":
        # arrow length = 0.9 grid spacing x sqrt(speed / 95th-percentile speed), clipped at 1: the direction
        # everywhere, the speed as a compressed length cue
        norm = np.hypot(U, V)
        spacing = min(np.ptp(X[0]), np.ptp(Y[:, 0])) / max(num_points - 1, 1)
        ref = max(float(np.percentile(norm, 95)), 1e-300)
        length = 0.9 * spacing * np.clip(np.sqrt(norm / ref), 0.0, 1.0)
        scale = np.where(norm > 0, length / np.maximum(norm, 1e-300), 0.0)
        ax.quiver(X, Y, U * scale, V * scale, color=c.reshape(-1), angles="xy", scale_units="xy", scale=1.0,
                  pivot="mid", width=0.004)
    else:
        raise ValueError(f"style must be 'quiver' or 'stream', got {style!r}")
    if nullclines:
        ax.contour(X, Y, U, levels=[0.0], colors="0.35", linestyles="--", linewidths=1.0)
        ax.contour(X, Y, V, levels=[0.0], colors="0.35", linestyles=":", linewidths=1.2)
    if states is not None:
        handles = [Line2D([], [], color=colors[k], marker=">", ls="", label=f"state {k}") for k in range(K)]
        if nullclines:
            handles += [Line2D([], [], color="0.35", ls="--", label="nullcline 1"),
                        Line2D([], [], color="0.35", ls=":", label="nullcline 2")]
        ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14),
                  ncol=min(len(handles), 6), frameon=False)
    ax.set(xlim=xlim, ylim=ylim, xlabel=xlabel, ylabel=ylabel)
    ax.set_aspect("equal", adjustable="box")
    return ax


_MARKERS = {"stable": ("o", True), "unstable": ("o", False), "saddle": ("s", False), "marginal": ("D", True)}


def plot_fixed_points(points, kind, ax=None, *, projection=None, color="black", size=60, label=True):
    """Fixed points: filled circles = stable, open circles = unstable, open squares = saddles, filled
    diamonds = marginal (e.g. on a line or ring attractor). points (P, D), kind (P,) str (FixedPoints.kind)."""
    ax = get_ax(ax)
    points = np.atleast_2d(np.asarray(points, dtype=float))
    if points.size == 0:
        return ax
    centre, basis = as_projection(projection, points.shape[1])
    xy = (points - centre) @ basis
    kind = np.asarray(kind)
    for name, (marker, filled) in _MARKERS.items():
        sel = kind == name
        if np.any(sel):
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, marker=marker, zorder=5, linewidths=1.5,
                       facecolors=color if filled else "white", edgecolors=color,
                       label=f"{name} fixed point" if label else None)
    return ax


def plot_model_flow(model, params, xlim=(-3, 3), ylim=(-3, 3), ax=None, *, projection=None, u=None, **kwargs):
    """Flow field of a fitted switching model's state-averaged map, arrows coloured by the most likely
    next state (model.transition_logits)."""
    from ssmneuro.analysis.states import model_map

    D = np.shape(params.dynamics.weights)[-1]
    return plot_flow_field(model_map(model, params, u), xlim, ylim, ax, time="discrete", projection=projection,
                           dim=D, state_fn=lambda x: model.transition_logits(params, x, u),
                           num_states=np.shape(params.dynamics.weights)[0], **kwargs)
