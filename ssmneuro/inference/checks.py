"""Small input-validation helpers for the public boundary (ValueError naming the problem and the fix).

Every helper is a no-op on JAX tracers (inside ``jit``/``vmap``/``grad`` values are not known), so the
public functions can call them unconditionally; validation happens when called on concrete arrays.
"""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(*arrays) -> bool:
    """True when none of ``arrays`` is a JAX tracer (so their values can be inspected)."""
    return not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


def check_ndim(name: str, x, allowed: tuple[int, ...]) -> None:
    """Raise unless ``x.ndim`` is one of ``allowed``."""
    if np.ndim(x) not in allowed:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimensions, "
                         f"got shape {tuple(np.shape(x))}.")


def check_shape(name: str, x, *allowed: tuple[int, ...], hint: str = "") -> None:
    """Raise unless ``x.shape`` is one of the ``allowed`` shapes (listed in the message)."""
    shape = tuple(np.shape(x))
    if shape not in [tuple(a) for a in allowed]:
        options = " or ".join(str(tuple(a)) for a in allowed)
        raise ValueError(f"{name} has shape {shape}, expected {options}.{(' ' + hint) if hint else ''}")


def check_finite(name: str, x, mask=None, hint: str = "") -> None:
    """Raise if ``x`` holds NaN or inf (where ``mask`` is True, if given)."""
    if not is_concrete(x, mask):
        return
    bad = ~np.isfinite(np.asarray(x))
    if mask is not None:
        bad &= np.broadcast_to(np.asarray(mask, bool), bad.shape)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains {int(bad.sum())} NaN/inf value(s) (first at index {where})."
                         f"{(' ' + hint) if hint else ''}")


def check_psd(name: str, cov, rtol: float = 1e-6, strict: bool = False) -> None:
    """Raise unless ``cov`` (..., D, D) is symmetric positive semi-definite (up to ``rtol``).

    ``strict=True`` demands positive definite (smallest eigenvalue > 0).
    """
    if not is_concrete(cov):
        return
    cov = np.asarray(cov, dtype=np.float64)
    check_finite(name, cov)
    scale = np.maximum(np.abs(cov).max(axis=(-2, -1), keepdims=True), np.finfo(np.float64).tiny)
    if np.any(np.abs(cov - np.swapaxes(cov, -1, -2)) > rtol * scale + 1e-300):
        raise ValueError(f"{name} is not symmetric; pass (C + C.T) / 2 if the asymmetry is round-off.")
    eigs = np.linalg.eigvalsh(cov)
    worst = eigs.min(axis=-1) / scale[..., 0, 0]
    if np.any(worst <= 0) if strict else np.any(worst < -rtol):
        idx = np.unravel_index(np.argmin(worst), worst.shape) if worst.ndim else ()
        kind = "positive definite" if strict else "positive semi-definite"
        raise ValueError(f"{name} is not {kind} (smallest eigenvalue "
                         f"{eigs.min():.3g}{' at index ' + str(tuple(map(int, idx))) if idx else ''}).")


def check_positive(name: str, x) -> None:
    """Raise unless every entry of ``x`` is finite and > 0 (e.g. diagonal variances)."""
    if not is_concrete(x):
        return
    check_finite(name, x)
    if np.any(np.asarray(x) <= 0):
        raise ValueError(f"{name} must be strictly positive (diagonal variances); min is {np.min(x):.3g}.")
