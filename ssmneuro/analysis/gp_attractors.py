"""Posterior dynamics analysis for GP-SDE / GP-SLDS fits: slow points, fixed points, line-attractor score.

With q(v) the drift posterior (see ``ssmneuro.models.gp``), each output f_d(x) is Gaussian with its own
mean mu_d(x) and variance s_d(x)^2, independent across d, so

    P(||f(x)||_inf < eps) = prod_d [Phi((eps - mu_d) / s_d) - Phi((-eps - mu_d) / s_d)].

Posteriors over fixed points and over the line-attractor score come from sampling drift functions
f_s(x) = a(x)^T v_s, v_s ~ q(v), and solving f_s(x) = 0 by batched Newton from many starts (vmapped over
samples and starts); stability and the score use ``ssmneuro.analysis.fixed_points.classify`` and
``ssmneuro.analysis.linear`` (continuous time: tau = 1 / |Re mu|, score = log2(tau_1 / tau_2)).
``limit_cycle`` follows a drift function (e.g. the posterior mean) to its attracting cycle.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import norm

from ssmneuro.analysis.fixed_points import classify
from ssmneuro.analysis.linear import line_attractor_score_from_eigenvalues


def slow_point_probability(model, params, x, eps):
    """P(||f(x)||_inf < eps) at points x (P, D) -> (P,), from each dimension's own posterior variance."""
    mean, var = model.drift(params, x)
    sd = jnp.sqrt(jnp.maximum(var, 1e-30))
    per_dim = norm.cdf((eps - mean) / sd) - norm.cdf((-eps - mean) / sd)
    return jnp.prod(per_dim, axis=-1)


def _newton_roots(model, params, weights, starts, num_steps, max_step):
    """Solve a(x)^T w = 0 from each start: weights (S, M, D), starts (P, D) -> roots (S, P, D), residual (S, P)."""

    def solve_one(w, x0):
        f = model.drift_function(params, w)

        def step(x, _):
            J = jax.jacfwd(f)(x)
            dx = jnp.linalg.lstsq(J, -f(x))[0]
            scale = jnp.minimum(1.0, max_step / (jnp.linalg.norm(dx) + 1e-12))
            return x + scale * dx, None

        x, _ = jax.lax.scan(step, x0, None, length=num_steps)
        return x, jnp.max(jnp.abs(f(x)))

    return jax.vmap(lambda w: jax.vmap(lambda x0: solve_one(w, x0))(starts))(weights)


class FixedPointSamples(NamedTuple):
    """Fixed points of S sampled drift functions (ragged: one list entry per sample).

    points: list of (P_s, D); eigenvalues: list of (P_s, D) complex (slowest mode first);
    kind: list of (P_s,) str; weights: (S, M, D) the drift samples.
    """

    points: list
    eigenvalues: list
    kind: list
    weights: np.ndarray


def sample_fixed_points(model, params, key, initial_points, num_samples=100, num_steps=50, max_step=1.0,
                        tol=1e-3, unique_tol=1e-2, marginal_tol=1e-3, use_mean=False):
    """Fixed points of num_samples drift functions from q(f) (or of the posterior mean, use_mean=True).

    initial_points: (P, D) Newton starts (e.g. a grid or the posterior latents). Points with
    max_d |f_d(x)| < tol are kept and merged within unique_tol.
    """
    starts = jnp.asarray(initial_points, params.initial_mean.dtype)
    weights = params.drift.means[None] if use_mean else model.sample_drift_weights(params, key, num_samples)
    roots, resid = jax.jit(lambda w, s: _newton_roots(model, params, w, s, num_steps, max_step))(weights, starts)
    roots, resid = np.asarray(roots), np.asarray(resid)
    jac = jax.jit(jax.vmap(lambda w, x: jax.vmap(jax.jacfwd(model.drift_function(params, w)))(x)))
    points, eigs, kinds = [], [], []
    for s in range(roots.shape[0]):
        ok = np.isfinite(resid[s]) & (resid[s] < tol)
        pts = _deduplicate(roots[s][ok], unique_tol)
        if len(pts):
            J = np.asarray(jac(weights[s : s + 1], jnp.asarray(pts)[None]))[0]
            ev = np.linalg.eigvals(J)
            ev = np.take_along_axis(ev, np.argsort(-ev.real, axis=-1), axis=-1)
            kinds.append(classify(ev, "continuous", marginal_tol))
        else:
            ev = np.zeros((0, starts.shape[1]), complex)
            kinds.append(np.array([], str))
        points.append(pts)
        eigs.append(ev)
    return FixedPointSamples(points, eigs, kinds, np.asarray(weights))


def _deduplicate(points, tol):
    kept = []
    for p in points:
        if all(np.linalg.norm(p - q) > tol for q in kept):
            kept.append(p)
    return np.array(kept).reshape(-1, points.shape[-1] if points.ndim == 2 else 0)


def limit_cycle(f, x0, dt, duration):
    """Follow dx = f(x) dt (Euler steps of dt) from x0 for `duration` and read a cycle off the second half.

    Args:
        f: x (D,) -> f(x) (D,), e.g. ``model.drift_function(params)``.  x0: (D,) start.
    Returns:
        (points (K, D): the second half of the path, period (s): mean time between upward crossings of
        x_1 through its mean over those points; NaN with fewer than two crossings, e.g. at a stable point).
    """
    num_steps = int(round(duration / dt))

    def step(x, _):
        x = x + dt * f(x)
        return x, x

    _, path = jax.jit(lambda x: jax.lax.scan(step, x, None, length=num_steps))(jnp.asarray(x0))
    points = np.asarray(path[num_steps // 2 :])
    centred = points[:, 0] - points[:, 0].mean()
    ups = np.flatnonzero((centred[:-1] < 0) & (centred[1:] >= 0))
    period = float(np.mean(np.diff(ups)) * dt) if len(ups) > 1 else np.nan
    return points, period


class ScorePosterior(NamedTuple):
    """Line-attractor score log2(tau_1 / tau_2) per drift sample at its slowest stable-ish fixed point.

    samples: (S,) (NaN where a sample has no fixed point); mean, interval (2,) (central 90%),
    prob_above_1: P(score > 1).
    """

    samples: np.ndarray
    mean: float
    interval: np.ndarray
    prob_above_1: float


def line_attractor_score_posterior(fixed_points: FixedPointSamples):
    """Posterior of the line-attractor score from sampled fixed points: per sample, the fixed point whose
    slowest mode has the longest time constant."""
    scores = []
    for ev in fixed_points.eigenvalues:
        if len(ev) == 0:
            scores.append(np.nan)
            continue
        s = line_attractor_score_from_eigenvalues(ev, time="continuous")
        scores.append(float(s[np.argmin(np.abs(ev[:, 0].real))]))
    scores = np.asarray(scores)
    ok = scores[np.isfinite(scores)]
    if ok.size == 0:
        return ScorePosterior(scores, np.nan, np.array([np.nan, np.nan]), np.nan)
    return ScorePosterior(scores, float(ok.mean()), np.quantile(ok, [0.05, 0.95]), float(np.mean(ok > 1)))


def flow_grid(xlim, ylim, num=25):
    """(num*num, 2) grid points and the two axes."""
    xs, ys = np.linspace(*xlim, num), np.linspace(*ylim, num)
    X, Y = np.meshgrid(xs, ys)
    return np.stack([X.ravel(), Y.ravel()], -1), xs, ys


def plot_flow_field(model, params, xlim, ylim, ax=None, num=25, shade="slow_point", eps=None, dims=(0, 1),
                    cmap="Greys", quiver_kw=None):
    """Posterior mean flow f(x) (arrows) over a 2-D slice with uncertainty shading.

    shade: "slow_point" -> P(||f(x)||_inf < eps) (eps default: 5% of the median speed), or "std" -> the
    posterior standard deviation of f summed over dimensions. Other latent dims are held at 0.
    Returns the Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    pts2, xs, ys = flow_grid(xlim, ylim, num)
    pts = np.zeros((len(pts2), model.latent_dim))
    pts[:, list(dims)] = pts2
    mean, var = model.drift(params, pts)
    mean, var = np.asarray(mean), np.asarray(var)
    if shade == "slow_point":
        if eps is None:
            eps = 0.05 * float(np.median(np.linalg.norm(mean, axis=1)))
        values = np.asarray(slow_point_probability(model, params, pts, eps))
        label = f"P(|f|_inf < {eps:.2g})"
    elif shade == "std":
        values = np.sqrt(var).sum(1)
        label = "posterior sd of f"
    else:
        raise ValueError(f"shade must be 'slow_point' or 'std', got {shade!r}")
    im = ax.pcolormesh(xs, ys, values.reshape(num, num), cmap=cmap, shading="auto")
    ax.figure.colorbar(im, ax=ax, label=label)
    ax.quiver(pts2[:, 0], pts2[:, 1], mean[:, dims[0]], mean[:, dims[1]], color="C0", **(quiver_kw or {}))
    ax.set_xlabel(f"x{dims[0] + 1}")
    ax.set_ylabel(f"x{dims[1] + 1}")
    return ax
