"""Linear dynamics per discrete state, from plain arrays: fixed points, time constants, the
line-attractor score and the slowest mode.

Conventions (the same everywhere in ssmneuro.analysis):

* discrete time, bin width dt seconds, eigenvalue lambda of A:   tau = dt / |ln|lambda||   (seconds)
* continuous time, eigenvalue mu of the drift Jacobian (1/s):      tau = 1 / |Re(mu)|       (seconds)

For decaying modes (|lambda| < 1, Re mu < 0) these are the usual tau = -dt / ln|lambda| and
tau = -1 / Re(mu). A growing mode gets its growth time constant (same formula with the absolute value),
so that a mode jittering around |lambda| = 1 in a posterior sample reads as "slow" either way; an
exactly marginal mode has tau = inf. Time constants are sorted longest first.

Line-attractor score (Nair et al. 2023): score = log2(tau_1 / tau_2), the two longest time constants,
in bits (doublings). A line attractor has one mode much slower than the rest (score >> 1); a point
attractor with similar decay in every direction scores ~ 0. Example: eigenvalues 0.999 and 0.9 at
dt = 0.1 s give tau = 99.95 s and 0.949 s, score = 6.72.
"""

from typing import NamedTuple

import numpy as np

from ssmneuro.analysis.fixed_points import classify, sort_eigenvalues


def time_constants(eigenvalues, dt: float | None = None, time: str = "discrete") -> np.ndarray:
    """Time constants in seconds, (..., D) -> (..., D), longest first.

    discrete:   tau = dt / |ln|lambda||  (dt = bin width in seconds, required)
    continuous: tau = 1 / |Re(mu)|       (dt ignored; mu in 1/s)
    """
    eigenvalues = np.asarray(eigenvalues)
    with np.errstate(divide="ignore"):
        if time == "discrete":
            if dt is None or not dt > 0:
                raise ValueError(f"discrete time needs the bin width dt > 0 in seconds, got {dt!r}")
            tau = dt / np.abs(np.log(np.abs(eigenvalues)))
        elif time == "continuous":
            tau = 1.0 / np.abs(eigenvalues.real)
        else:
            raise ValueError(f"time must be 'discrete' or 'continuous', got {time!r}")
    return -np.sort(-tau, axis=-1)


def score_from_time_constants(tau) -> np.ndarray:
    """Line-attractor score log2(tau_1 / tau_2) from time constants (..., D) sorted longest first -> (...)."""
    tau = np.asarray(tau)
    if tau.shape[-1] < 2:
        raise ValueError("the line-attractor score needs at least 2 latent dimensions")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log2(tau[..., 0] / tau[..., 1])


def line_attractor_score_from_eigenvalues(eigenvalues, dt: float | None = None, time: str = "discrete"):
    """score = log2(tau_1 / tau_2) (bits) from eigenvalues (..., D) -> (...)."""
    return score_from_time_constants(time_constants(eigenvalues, dt, time))


def affine_fixed_point(A, b, time: str = "discrete", rcond: float = 1e-8):
    """Fixed point of x -> A x + b (discrete: solve (I - A) x = b) or of dx/dt = A x + b (continuous:
    solve A x = -b). A (..., D, D), b (..., D) -> (x (..., D), exists (...) bool).

    exists is False (and x is NaN) when the system matrix is singular to relative precision rcond
    (e.g. NASCAR's straight-drive states with A = I): there is no isolated fixed point.
    """
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    M = np.eye(A.shape[-1]) - A if time == "discrete" else A
    rhs = b if time == "discrete" else -b
    s = np.linalg.svd(M, compute_uv=False)
    exists = s[..., -1] > rcond * np.maximum(s[..., 0], 1.0)
    safe = np.where(exists[..., None, None], M, np.eye(A.shape[-1]))
    x = np.linalg.solve(safe, rhs[..., None])[..., 0]
    return np.where(exists[..., None], x, np.nan), exists


class SlowMode(NamedTuple):
    """The slowest mode of one linear system (the integration direction of a line attractor).

    eigenvalue:   complex, the eigenvalue with the longest time constant
    direction:    (D,) right eigenvector v (real part, unit norm, sign: largest entry positive)
    left:         (D,) left eigenvector w with w^T v = 1: w^T x is the coordinate of x along v
    time_constant: seconds
    """

    eigenvalue: complex
    direction: np.ndarray
    left: np.ndarray
    time_constant: float


def slowest_mode(A, dt: float | None = None, time: str = "discrete") -> SlowMode:
    """Slowest mode of A (D, D): right/left eigenvectors of the eigenvalue with the longest tau."""
    A = np.asarray(A, dtype=float)
    lam, V = np.linalg.eig(A)
    tau = time_constants(lam[:, None], dt, time)[:, 0]
    i = int(np.argmax(tau))
    v = np.real(V[:, i])
    v = v / np.linalg.norm(v)
    v = v * np.sign(v[np.argmax(np.abs(v))])
    W = np.linalg.inv(V)
    w = np.real(W[i])
    w = w / (w @ v)
    return SlowMode(eigenvalue=complex(lam[i]), direction=v, left=w, time_constant=float(tau[i]))


class StateDynamics(NamedTuple):
    """Linear summary of each discrete state's dynamics.

    fixed_points:    (K, D) x*_k (NaN where none exists)
    has_fixed_point: (K,) bool
    eigenvalues:     (K, D) complex, slowest first
    time_constants:  (K, D) seconds, longest first
    scores:          (K,) log2(tau_1 / tau_2) per state, bits
    kind:            (K,) "stable" | "unstable" | "saddle" | "marginal"
    time:            "discrete" | "continuous"
    """

    fixed_points: np.ndarray
    has_fixed_point: np.ndarray
    eigenvalues: np.ndarray
    time_constants: np.ndarray
    scores: np.ndarray
    kind: np.ndarray
    time: str


def state_dynamics(A, b, dt: float | None = None, time: str = "discrete", marginal_tol: float = 1e-3) -> StateDynamics:
    """Per-state fixed points, eigenvalues, time constants, scores and stability.

    A: (K, D, D) or (D, D); b: (K, D) or (D,). Discrete: x_{t+1} = A_k x_t + b_k with bin width dt (s);
    continuous: dx/dt = A_k x + b_k.
    """
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    if A.ndim == 2:
        A, b = A[None], b[None]
    if A.ndim != 3 or A.shape[1] != A.shape[2] or b.shape != A.shape[:2]:
        raise ValueError(f"A must be (K, D, D) and b (K, D); got {A.shape} and {b.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise ValueError("dynamics weights or biases contain NaN or inf")
    x, exists = affine_fixed_point(A, b, time)
    eig = sort_eigenvalues(np.linalg.eigvals(A), time)
    tau = time_constants(eig, dt, time)
    return StateDynamics(fixed_points=x, has_fixed_point=exists, eigenvalues=eig, time_constants=tau,
                         scores=score_from_time_constants(tau), kind=classify(eig, time, marginal_tol), time=time)
