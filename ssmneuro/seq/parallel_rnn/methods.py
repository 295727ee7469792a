"""Method configs for ``evaluate``: small frozen dataclasses (hashable, passed as static to jit).

Every iterative method solves the nonlinear recurrence x_t = f(x_{t-1}, u_t), t = 1..T, by repeating:
linearise f around the current guess of all states, solve the resulting *linear* recurrence in
parallel, keep the exact prefix (see ``solver.py``). They differ in the linear solve:

=============  =================  ==========================================================
method         Jacobian           linear solve per iteration
=============  =================  ==========================================================
DEER           dense (jacfwd)     Newton: dense associative scan, O(T D^3) work, O(log T) depth
QuasiDEER      diagonal           quasi-Newton: elementwise associative scan, O(T D)
ELK            dense              Levenberg-Marquardt: parallel Kalman smoother, observations =
                                  current guess with noise variance ``trust`` (= 1/lambda)
QuasiELK       diagonal           the same with D independent scalar smoothers
=============  =================  ==========================================================

Shared fields:
    max_iters: iteration cap; None means T, the number that guarantees exactness.
    tol: converged when max_t ||x_t - f(x_{t-1}, u_t)||_inf <= tol; None means 1e-5 in float32,
        1e-10 in float64.
    on_divergence: what to do when the iterates blow up (non-finite, or the residual grows by more
        than ``divergence_growth`` over the first one) or fail to converge in ``max_iters``:
        "fallback" returns the sequential loop's states (flagged ``fell_back``), "stop" returns the
        last finite iterate. Both set ``diverged`` / ``converged`` on the solution and warn.
    divergence_growth: the residual-growth factor that counts as divergence.
    adjoint: "parallel" solves the gradient's adjoint recurrence by a dense reverse associative scan
        (O(T D^2) memory), "sequential" by a reverse ``lax.scan`` of vector-Jacobian products (O(T D)).
    parallel: associative scans / parallel Kalman smoother (True) or their sequential forms (False,
        same numbers; sometimes faster on a CPU).
Quasi methods also take ``diagonal_jacobian``: a function with f's signature returning diag(df/dx)
(D,); None uses the analytic rule of a provided cell (``cells.DIAGONAL_JACOBIANS``) or else probes
the diagonal exactly with D forward-mode products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class Sequential:
    """The reference: one step after another with ``lax.scan`` (gradients by ordinary backprop)."""


@dataclass(frozen=True)
class _Iterative:
    max_iters: Optional[int] = None
    tol: Optional[float] = None
    on_divergence: str = "fallback"
    divergence_growth: float = 1e6
    adjoint: str = "parallel"
    parallel: bool = True


@dataclass(frozen=True)
class DEER(_Iterative):
    """Newton's method on the whole trajectory (Lim et al. 2024): dense Jacobians, dense scan."""


@dataclass(frozen=True)
class QuasiDEER(_Iterative):
    """Quasi-Newton with the diagonal of the Jacobian (Gonzalez et al. 2024): elementwise scan."""

    diagonal_jacobian: Optional[Callable] = None


@dataclass(frozen=True)
class ELK(_Iterative):
    """Levenberg-Marquardt with dense Jacobians, each step a Kalman smoother (Gonzalez et al. 2024).

    trust: variance of the pseudo-observations x̄_t (the current guess), i.e. 1/lambda. Large trust
    approaches DEER; small trust takes short, stable steps.
    adaptive: adapt the trust as Levenberg-Marquardt does (x ``grow`` after a step that lowers the
        merit sum_t ||x_t - f(x_{t-1})||^2, x ``shrink`` and the step rejected otherwise); False keeps
        it fixed, as in the ELK paper.
    """

    trust: float = 1.0
    adaptive: bool = True
    grow: float = 2.0
    shrink: float = 0.25


@dataclass(frozen=True)
class QuasiELK(_Iterative):
    """Levenberg-Marquardt with diagonal Jacobians: D independent scalar Kalman smoothers."""

    trust: float = 1.0
    adaptive: bool = True
    grow: float = 2.0
    shrink: float = 0.25
    diagonal_jacobian: Optional[Callable] = None


METHODS = (Sequential, DEER, QuasiDEER, ELK, QuasiELK)
