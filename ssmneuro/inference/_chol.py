"""Small batched Cholesky helpers shared by the Gaussian-chain solvers (no explicit inverses, no general solves).

``cholesky`` and ``solve_triangular`` are written in plain jnp (unrolled over the matrix size) for
matrices up to ``SMALL`` rows. jaxlib 0.10's LAPACK kernels split a batch over XLA:CPU's thread pool and
block that pool's thread while they wait; when the runtime runs as many such calls side by side as the
pool has threads, the process deadlocks (seen here: 16 trials of 800 steps, or 12 batched fits). Our
batches of small blocks (D x D per time step) are exactly that case, and the unrolled code is as fast.
Larger matrices go to LAPACK.

Inside a ``lax.scan`` every XLA:CPU kernel launch costs about as much as the arithmetic of a small block,
so the unrolled code is written to fuse into few kernels: ``cholesky`` takes two per column (no
``.at[].set`` copies, no dot), ``cholesky_and_solve`` gets a triangular solve in the same kernels, and
``matmul`` spells matrix-vector products and products up to ``SMALL_MATMUL`` wide as a fused
multiply-sum, since XLA:CPU sends each ``dot`` to a library call costing ~1 us, ten times the
multiply-sum of an 8 x 8 product (wider, the dot wins).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg

SMALL = 16
SMALL_MATMUL = 8


def cholesky(a):
    """Lower Cholesky factor of (..., D, D) symmetric positive definite ``a`` (NaN where not PD)."""
    if a.shape[-1] > SMALL:
        return jnp.linalg.cholesky(a)
    return _cholesky_columns(a)


def cholesky_and_solve(a, bt):
    """(L, X^T) with a = L L^T for symmetric positive definite a (..., n, n) and L X = B, given B^T (..., m, n).

    Up to ``SMALL`` in one pass (a and bt of the same batch shape): the first n columns of the Cholesky factor
    of [[a, B], [B^T, *]] are [L; X^T], so the forward substitution costs no extra kernels. Both sides are
    transposed so that products with X^T stay dots of the form A @ B or A @ B^T: XLA:CPU runs A^T @ B
    several times slower.
    """
    n = a.shape[-1]
    if n > SMALL:
        L = jnp.linalg.cholesky(a)
        return L, jax.lax.linalg.triangular_solve(L, bt, left_side=False, lower=True, transpose_a=True)
    cols = _cholesky_columns(jnp.concatenate([a, bt], -2))
    return cols[..., :n, :], cols[..., n:, :]


def psd_factor(a):
    """A factor U with U U^T = a for symmetric positive semidefinite a (..., D, D), finite when a is singular.

    Up to ``SMALL``: the Cholesky factor, where a pivot at or below f = D * eps * max_i a_ii (zero, or rounding
    error) gives a zero column, which drops a direction of variance at most that size. Larger: LAPACK's Cholesky
    factor of a + (f + tiny) I, off by a variance of that size (``eigh`` would be exact but costs ~10x).
    """
    D = a.shape[-1]
    floor = D * jnp.finfo(a.dtype).eps * jnp.max(jnp.diagonal(a, axis1=-2, axis2=-1), -1)
    if D > SMALL:
        jitter = (floor + jnp.finfo(a.dtype).tiny)[..., None, None] * jnp.eye(D, dtype=a.dtype)
        return jnp.linalg.cholesky(a + jitter)
    return _cholesky_columns(a, floor)


def _cholesky_columns(a, floor=None):
    """The n columns of the Cholesky factor of a symmetric PD matrix whose first n columns are a (..., n + m, n):
    right-looking, L[:, j] = a[:, j] / sqrt(a[j, j]) (rows >= j), then a -= L[:, j] L[:n, j]^T. With ``floor``
    (...,), a pivot a[j, j] <= floor gives a zero column (``psd_factor``) instead of NaN."""
    n = a.shape[-1]
    rows, cols = jnp.arange(a.shape[-2]), []
    for j in range(n):
        pivot = a[..., j, j]
        if floor is None:
            scale = jax.lax.rsqrt(pivot)
        else:
            positive = pivot > floor
            scale = jnp.where(positive, jax.lax.rsqrt(jnp.where(positive, pivot, 1.0)), 0.0)
        col = jnp.where(rows >= j, a[..., :, j] * scale[..., None], 0.0)
        a = a - col[..., :, None] * col[..., None, :n]
        cols.append(col)
    return jnp.stack(cols, -1)


def matmul(a, b):
    """a @ b for a (..., n, k) and b (..., k, m) or a vector (k,): a fused multiply-sum for vectors and when
    k <= SMALL_MATMUL (see the module docstring), else ``jnp.matmul``."""
    if b.ndim == 1:
        return jnp.sum(a * b, -1)
    if a.shape[-1] > SMALL_MATMUL:
        return a @ b
    return jnp.sum(a[..., :, :, None] * b[..., None, :, :], -2)


def solve_triangular(a, b, lower=False, trans=0):
    """x with op(a) x = b, op = identity (trans=0) or transpose (trans=1); a (..., D, D) triangular,
    b (..., D) or (..., D, M) (as ``jax.scipy.linalg.solve_triangular``)."""
    D = a.shape[-1]
    vec = b.ndim == a.ndim - 1
    B = b[..., None] if vec else b  # batched vectors as one-column matrices (jax deprecates batched 1-D b)
    if D > SMALL:
        x = jax.scipy.linalg.solve_triangular(a, B, lower=lower, trans=trans)
        return x[..., 0] if vec else x
    A = jnp.swapaxes(a, -1, -2) if trans else a
    forward = lower != bool(trans)  # op(a) is lower triangular
    order = range(D) if forward else range(D - 1, -1, -1)
    rows = [None] * D
    done = []
    for i in order:
        r = B[..., i, :]
        for k in done:
            r = r - A[..., i, k, None] * rows[k]
        rows[i] = r / A[..., i, i, None]
        done.append(i)
    x = jnp.stack(rows, axis=-2)
    return x[..., 0] if vec else x


def cho_solve_spd(a, b):
    """a^{-1} b for symmetric positive definite a (..., D, D); b (..., D) or (..., D, M)."""
    return cho_solve(cholesky(a), b)


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
    return matmul(mT(inv_chol), inv_chol)
