"""Slow points and continuous (line and ring) attractors of a map or drift.

A continuous attractor is a connected set of slow points along which one mode is marginal: one
eigenvalue |lambda| ~ 1 (discrete) or Re(mu) ~ 0 (continuous) whose eigenvector runs along the set,
with the other modes decaying. ``find_slow_points`` descends q(x) = 1/2||r(x)||^2 (optax Adam) from
many starts and stops each start once q < q_threshold, so the points spread along slow manifolds
instead of collapsing onto one fixed point; ``find_continuous_attractors`` groups them and tells a
line from a ring.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from ssmneuro.analysis.fixed_points import (FixedPoints, _check_inputs, classify, growth,
                                            jacobians_and_eigenvalues, speed)


def find_slow_points(f: Callable, initial_points, *, time: str = "discrete", q_threshold: float | None = None,
                     num_steps: int = 2000, learning_rate: float | None = None,
                     marginal_tol: float = 1e-2) -> FixedPoints:
    """Slow points: points with q(x) = 1/2||r(x)||^2 < q_threshold, reached by Adam from each start.

    f: (D,) -> (D,); initial_points: (S, D). Each start runs Adam on q and freezes as soon as
    q < q_threshold (default: 1e-4 x the median q over the starts). learning_rate defaults to 1e-2 x the
    spread of the starts. Starts that never get below q_threshold are dropped. No deduplication: the
    point cloud is what ``find_continuous_attractors`` reads. Returns FixedPoints (kind uses marginal_tol).
    """
    x0 = _check_inputs(f, initial_points, time)
    q_fn = jax.vmap(lambda x: speed(f, x, time))
    q0 = np.asarray(q_fn(x0))
    q_threshold = 1e-4 * float(np.median(q0)) if q_threshold is None else float(q_threshold)
    if learning_rate is None:
        learning_rate = 1e-2 * float(jnp.mean(jnp.std(x0, axis=0)) + 1e-3)
    optimiser = optax.adam(learning_rate)
    grad_q = jax.vmap(jax.value_and_grad(lambda x: speed(f, x, time)))

    def step(carry, _):
        x, state = carry
        q, g = grad_q(x)
        moving = (q >= q_threshold)[:, None]
        updates, new_state = optimiser.update(g, state, x)
        x = jnp.where(moving, optax.apply_updates(x, updates), x)
        return (x, new_state), None

    @jax.jit
    def run(x):
        (x, _), _ = jax.lax.scan(step, (x, optimiser.init(x)), None, length=num_steps)
        return x, q_fn(x)

    points, q = (np.asarray(a) for a in run(x0))
    keep = np.isfinite(q) & (q < q_threshold)
    points, q = points[keep], q[keep]
    order = np.argsort(q, kind="stable")
    points, q = points[order], q[order]
    J, eig = jacobians_and_eigenvalues(f, points, time)
    return FixedPoints(points=points, jacobians=J, eigenvalues=eig, kind=classify(eig, time, marginal_tol),
                       q=q, time=time)


class ContinuousAttractor(NamedTuple):
    """A connected set of slow points with one marginal mode along it.

    kind:       "line" or "ring"
    points:     (M, D) the slow points of the set
    direction:  (D,) principal direction of the set (unit; for a line, the line's direction)
    centre:     (D,) centre of the fitted circle (rings) or mean of the points (lines)
    radius:     mean distance from the centre in the set's plane (rings; NaN for lines)
    extent:     length of the set along ``direction`` (max - min projection)
    marginal_growth: (M,) growth rate of the marginal mode at each point (ln|lambda| or Re mu)
    alignment:  (M,) |cos| between the marginal eigenvector and the set's local tangent
    """

    kind: str
    points: np.ndarray
    direction: np.ndarray
    centre: np.ndarray
    radius: float
    extent: float
    marginal_growth: np.ndarray
    alignment: np.ndarray


def _local_tangents(points, neighbours):
    """Top principal direction of each point's neighbourhood. points (M, D), neighbours (M, M) bool."""
    tangents = []
    for i in range(points.shape[0]):
        nb = points[neighbours[i]] - points[neighbours[i]].mean(0)
        tangents.append(np.linalg.svd(nb, full_matrices=False)[2][0])
    return np.stack(tangents)


def _marginal_modes(jacobians, eigenvalues, time, marginal_tol):
    """For each point: number of marginal modes, the growth and the (real) eigenvector of the slowest one."""
    g = np.abs(growth(eigenvalues, time))
    n_marginal = np.sum(g <= marginal_tol, axis=1)
    vectors = []
    for J, lam in zip(jacobians, eigenvalues):
        w, V = np.linalg.eig(J)
        v = np.real(V[:, np.argmin(np.abs(w - lam[0]))])
        vectors.append(v / np.linalg.norm(v))
    return n_marginal, growth(eigenvalues[:, 0], time), np.stack(vectors)


def _is_ring(points, max_gap: float = np.pi / 3, max_radius_cv: float = 0.25):
    """A ring when the points, seen in their top-2 principal plane, surround the centre of the circle
    fitted to them (algebraic least squares, |p - c|^2 = r^2) with largest angular gap < max_gap, at a
    near-constant distance (std/mean of the distance < max_radius_cv). -> (is_ring, centre (D,), radius)."""
    mean = points.mean(0)
    X = points - mean
    _, s, Vt = np.linalg.svd(X, full_matrices=False)
    if points.shape[1] < 2 or s.size < 2 or s[1] < 0.2 * s[0]:
        return False, mean, np.nan
    P = X @ Vt[:2].T
    design = np.concatenate([2 * P, np.ones((len(P), 1))], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, np.sum(P**2, axis=1), rcond=None)
    P = P - np.array([a, b])
    r = np.linalg.norm(P, axis=1)
    angles = np.sort(np.arctan2(P[:, 1], P[:, 0]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
    ring = gaps.max() < max_gap and r.std() / r.mean() < max_radius_cv
    return bool(ring), mean + np.array([a, b]) @ Vt[:2], float(r.mean())


def find_continuous_attractors(slow_points: FixedPoints, *, radius: float | None = None, marginal_tol: float = 1e-2,
                               min_points: int = 8, min_alignment: float = 0.8,
                               min_fraction: float = 0.8) -> list[ContinuousAttractor]:
    """Line and ring attractors among slow points (from ``find_slow_points``).

    Points closer than ``radius`` (default: the larger of 3 x the median nearest-neighbour distance and
    0.3 x the RMS distance of the points from their mean) are linked; each
    connected set of at least ``min_points`` points is an attractor when, at >= min_fraction of its
    points, exactly one mode is marginal (|ln|lambda|| or |Re mu| <= marginal_tol, the others
    decaying faster) and that mode's eigenvector is aligned with the set's local tangent
    (|cos| >= min_alignment). It is a ring when it surrounds its centre in its principal plane, else a line.
    """
    P = np.asarray(slow_points.points)
    if P.shape[0] < min_points:
        return []
    dist = cdist(P, P)
    if radius is None:
        nn = np.sort(dist, axis=1)[:, 1]
        spread = float(np.sqrt(np.mean(np.sum((P - P.mean(0)) ** 2, axis=1))))
        radius = max(3.0 * float(np.median(nn)), 0.3 * spread)
    adjacency = dist <= radius
    n_sets, labels = connected_components(adjacency, directed=False)
    time = slow_points.time
    n_marginal, g_slow, v_slow = _marginal_modes(slow_points.jacobians, slow_points.eigenvalues, time, marginal_tol)
    attractors = []
    for label in range(n_sets):
        idx = np.flatnonzero(labels == label)
        if idx.size < min_points:
            continue
        pts = P[idx]
        tangents = _local_tangents(pts, adjacency[np.ix_(idx, idx)])
        alignment = np.abs(np.sum(tangents * v_slow[idx], axis=1))
        good = (n_marginal[idx] == 1) & (alignment >= min_alignment)
        if good.mean() < min_fraction:
            continue
        direction = np.linalg.svd(pts - pts.mean(0), full_matrices=False)[2][0]
        proj = (pts - pts.mean(0)) @ direction
        ring, centre, r = _is_ring(pts)
        attractors.append(ContinuousAttractor(kind="ring" if ring else "line", points=pts, direction=direction,
                                              centre=centre, radius=r if ring else np.nan,
                                              extent=float(proj.max() - proj.min()),
                                              marginal_growth=g_slow[idx], alignment=alignment))
    return attractors
