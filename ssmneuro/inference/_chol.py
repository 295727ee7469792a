"""Small batched Cholesky helpers shared by the Gaussian-chain solvers (no explicit inverses)."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular


def mT(x):
    """Swap the last two axes."""
    return x.swapaxes(-1, -2)


def symmetrize(x):
    """(X + X^T) / 2."""
    return 0.5 * (x + mT(x))


def tri_solve(chol, rhs):
    """U^{-1} rhs for lower-triangular U; chol (..., D, D), rhs (..., D, M)."""
    return solve_triangular(chol, rhs, lower=True)


def tri_solve_vec(chol, vec):
    """U^{-1} v for lower-triangular U; vec (..., D)."""
    return tri_solve(chol, vec[..., None])[..., 0]


def tri_solve_transpose_vec(chol, vec):
    """U^{-T} v for lower-triangular U; vec (..., D)."""
    return solve_triangular(chol, vec[..., None], lower=True, trans=1)[..., 0]


def cho_solve(chol, rhs):
    """P^{-1} rhs = U^{-T} U^{-1} rhs for P = U U^T; rhs (..., D, M)."""
    return solve_triangular(chol, tri_solve(chol, rhs), lower=True, trans=1)


def chol_inverse(chol):
    """P^{-1} = (U^{-1})^T U^{-1} for P = U U^T, symmetric by construction; chol (..., D, D)."""
    eye = jnp.broadcast_to(jnp.eye(chol.shape[-1], dtype=chol.dtype), chol.shape)
    inv_chol = tri_solve(chol, eye)
    return mT(inv_chol) @ inv_chol
