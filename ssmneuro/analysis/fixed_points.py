"""Fixed points of any map or drift, found from many starts at once.

Two conventions, chosen by ``time``:

* ``"discrete"``: a map x -> f(x) (an (r)SLDS's mean dynamics, an RNN cell). A fixed point solves
  f(x) = x; its stability comes from the eigenvalues lambda of the Jacobian df/dx: stable when every
  |lambda| < 1.
* ``"continuous"``: a drift dx/dt = f(x) (a GP-SDE posterior mean, an ODE). A fixed point solves
  f(x) = 0; stable when every Re(mu) < 0.

The finder minimises the speed q(x) = 1/2 ||r(x)||^2 with the residual r(x) = f(x) - x (discrete) or
r(x) = f(x) (continuous) by Levenberg-Marquardt (optimistix), vmapped over the starts, keeps the
points with q below ``q_tol``, and merges points closer than ``unique_tol``.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

TIMES = ("discrete", "continuous")


class FixedPoints(NamedTuple):
    """Fixed points of f, sorted by speed q (slowest first).

    points:      (P, D) the fixed points x*
    jacobians:   (P, D, D) df/dx at x* (of f itself, not of the residual)
    eigenvalues: (P, D) complex, eigenvalues of the jacobians, sorted by decreasing |lambda| (discrete)
                 or decreasing Re(mu) (continuous): the slowest mode first
    kind:        (P,) str: "stable", "unstable", "saddle" or "marginal" (see ``classify``)
    q:           (P,) the speed 1/2 ||r(x*)||^2 at each point
    time:        "discrete" or "continuous", the convention used
    """

    points: np.ndarray
    jacobians: np.ndarray
    eigenvalues: np.ndarray
    kind: np.ndarray
    q: np.ndarray
    time: str


def residual(f: Callable, x, time: str):
    """r(x) = f(x) - x for a map (discrete), r(x) = f(x) for a drift (continuous). x: (D,) -> (D,)."""
    return f(x) - x if time == "discrete" else f(x)


def speed(f: Callable, x, time: str):
    """q(x) = 1/2 ||r(x)||^2, the quantity minimised by the finder. x: (D,) -> ()."""
    r = residual(f, x, time)
    return 0.5 * jnp.sum(r**2)


def sort_eigenvalues(eigenvalues, time: str):
    """Sort eigenvalues (..., D) slowest first: by decreasing |lambda| (discrete) or Re(mu) (continuous)."""
    eigenvalues = np.asarray(eigenvalues)
    key = np.abs(eigenvalues) if time == "discrete" else eigenvalues.real
    order = np.argsort(-key, axis=-1, kind="stable")
    return np.take_along_axis(eigenvalues, order, axis=-1)


def growth(eigenvalues, time: str):
    """Signed growth rate of each mode: ln|lambda| (discrete, per step) or Re(mu) (continuous).

    Negative means the mode decays, positive that it grows, ~0 that it is marginal (an attractor
    direction of a line or ring attractor).
    """
    eigenvalues = np.asarray(eigenvalues)
    if time == "discrete":
        with np.errstate(divide="ignore"):
            return np.log(np.abs(eigenvalues))
    return eigenvalues.real


def classify(eigenvalues, time: str, marginal_tol: float = 1e-3) -> np.ndarray:
    """Stability of fixed points from their eigenvalues (..., D) -> (...,) str.

    A mode is marginal when |growth| <= marginal_tol (growth = ln|lambda| or Re(mu)), stable when the
    growth is below -marginal_tol, unstable when above. A point is
    "stable" (all modes stable), "unstable" (no stable mode, at least one unstable), "saddle" (both
    stable and unstable modes) or "marginal" (some marginal modes, the others stable: what a point of a
    line or ring attractor looks like).
    """
    g = growth(eigenvalues, time)
    n_up = np.sum(g > marginal_tol, axis=-1)
    n_down = np.sum(g < -marginal_tol, axis=-1)
    n_flat = g.shape[-1] - n_up - n_down
    kind = np.where(n_up == 0, np.where(n_flat == 0, "stable", "marginal"),
                    np.where(n_down > 0, "saddle", "unstable"))
    return kind.astype("<U8")


def _check_inputs(f, initial_points, time):
    if time not in TIMES:
        raise ValueError(f"time must be one of {TIMES}, got {time!r}")
    if not callable(f):
        raise ValueError("f must be a callable mapping a (D,) point to a (D,) point")
    x0 = jnp.asarray(initial_points)
    if x0.ndim != 2:
        raise ValueError(f"initial_points must have shape (S, D), got {x0.shape}")
    if not bool(jnp.all(jnp.isfinite(x0))):
        raise ValueError("initial_points contain NaN or inf")
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    out = jax.eval_shape(f, x0[0])
    if out.shape != x0.shape[1:]:
        raise ValueError(f"f must map a (D,) = {x0.shape[1:]} point to the same shape, got {out.shape}")
    return x0


def default_q_tol(x0) -> float:
    """q below which a point counts as fixed: 1/2 (sqrt(eps) * (1 + max|x0|))^2 for the dtype of x0."""
    eps = float(jnp.finfo(x0.dtype).eps)
    return 0.5 * eps * (1.0 + float(jnp.max(jnp.abs(x0)))) ** 2


def deduplicate(points, q, unique_tol: float) -> np.ndarray:
    """Indices of points kept after merging: walk by increasing q, keep a point when it is farther
    than unique_tol (Euclidean) from every point kept so far. points (P, D), q (P,) -> (M,) int."""
    points, q = np.asarray(points), np.asarray(q)
    kept = []
    for i in np.argsort(q, kind="stable"):
        if all(np.linalg.norm(points[i] - points[j]) > unique_tol for j in kept):
            kept.append(i)
    return np.asarray(kept, dtype=int)


def jacobians_and_eigenvalues(f: Callable, points, time: str):
    """Jacobians df/dx (P, D, D) at points (P, D) by jax.jacobian, and their eigenvalues (P, D) sorted
    slowest first (see ``sort_eigenvalues``)."""
    points = jnp.asarray(points)
    if points.shape[0] == 0:
        D = points.shape[1]
        return np.zeros((0, D, D)), np.zeros((0, D), complex)
    J = np.asarray(jax.vmap(jax.jacobian(f))(points))
    return J, sort_eigenvalues(np.linalg.eigvals(J), time)


def minimise_speed(f: Callable, initial_points, time: str, max_steps: int = 256,
                   rtol: float | None = None, atol: float | None = None):
    """Levenberg-Marquardt on q(x) = 1/2||r(x)||^2 from every start at once.

    initial_points: (S, D). Returns (points (S, D), q (S,)). Starts that do not converge within
    max_steps return where they stopped (their q tells).
    """
    x0 = jnp.asarray(initial_points)
    eps = float(jnp.finfo(x0.dtype).eps)
    tol = eps ** 0.75
    solver = optx.LevenbergMarquardt(rtol=tol if rtol is None else rtol, atol=tol if atol is None else atol)

    def solve(x):
        sol = optx.least_squares(lambda y, _: residual(f, y, time), solver, x, max_steps=max_steps,
                                 throw=False)
        return sol.value

    points = jax.jit(jax.vmap(solve))(x0)
    q = jax.vmap(lambda x: speed(f, x, time))(points)
    return points, q


def find_fixed_points(f: Callable, initial_points, *, time: str = "discrete", q_tol: float | None = None,
                      unique_tol: float = 1e-3, marginal_tol: float = 1e-3, max_steps: int = 256) -> FixedPoints:
    """Fixed points of a map (time="discrete": f(x) = x) or a drift (time="continuous": f(x) = 0).

    f:              callable (D,) -> (D,), jax-traceable.
    initial_points: (S, D) starts (e.g. samples of the posterior latents, or a grid).
    q_tol:          keep points with q(x) = 1/2||r(x)||^2 <= q_tol; default ``default_q_tol`` (about
                    1/2 (sqrt(eps)(1 + max|x0|))^2 for the dtype: loose in float32, tight in float64).
    unique_tol:     points closer than this (Euclidean) are merged, keeping the slower one.
    marginal_tol:   growth rates |ln|lambda|| (discrete) or |Re mu| (continuous) below this count as
                    marginal in ``kind``.
    Returns FixedPoints sorted by q. For slow points (q > 0, e.g. along an approximate line attractor)
    see ``ssmneuro.analysis.attractors.find_slow_points``.
    """
    x0 = _check_inputs(f, initial_points, time)
    q_tol = default_q_tol(x0) if q_tol is None else float(q_tol)
    points, q = minimise_speed(f, x0, time, max_steps=max_steps)
    points, q = np.asarray(points), np.asarray(q)
    ok = np.isfinite(q) & (q <= q_tol) & np.all(np.isfinite(points), axis=1)
    idx = np.flatnonzero(ok)[deduplicate(points[ok], q[ok], unique_tol)]
    points, q = points[idx], q[idx]
    J, eig = jacobians_and_eigenvalues(f, points, time)
    return FixedPoints(points=points, jacobians=J, eigenvalues=eig, kind=classify(eig, time, marginal_tol),
                       q=q, time=time)
