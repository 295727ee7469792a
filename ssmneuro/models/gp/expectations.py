"""Expectations of the GP drift under Gaussian marginals q(x_t) = N(m, S), by Gauss-Hermite quadrature.

With whitened features a(x), residual c(x) (see ``kernels``) and q(v_d) = N(mu_d, Sigma_d):

    E_q(f)[f_d(x)] = a(x)^T mu_d,     Var_q(f)[f_d(x)] = a(x)^T Sigma_d a(x) + c(x).

Under x ~ N(m, S) the E-step needs, per time step,
    F   = E[f(x)]                  (D,)
    P   = E[(x - m) f(x)^T]        (D, D)     (= S E[df/dx]^T by Stein's lemma)
    Eff = E[f_d(x)^2]              (D,)       (mean^2 plus the GP variance)
and the q(v) update needs the feature moments
    A1 = E[a(x)] (M,),  Ax = E[(x - m) a(x)^T] (D, M),  A2 = E[a(x) a(x)^T] (M, M),  C0 = E[c(x)].
Quadrature: a tensor-product Gauss-Hermite rule with n nodes per dimension (exact for polynomials of
degree <= 2n - 1 in each coordinate: the linear kernel's moments are exact with n >= 2).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Quadrature(NamedTuple):
    """A rule for E[g(xi)], xi ~ N(0, I_D):  sum_q weights[q] g(nodes[q])."""

    nodes: jax.Array  # (Q, D)
    weights: jax.Array  # (Q,)


def gauss_hermite(dim, num_points=5):
    """Tensor-product probabilists' Gauss-Hermite rule for N(0, I_dim): Q = num_points ** dim nodes."""
    x, w = np.polynomial.hermite_e.hermegauss(num_points)
    w = w / w.sum()
    nodes = np.array(list(itertools.product(x, repeat=dim)))
    weights = np.prod(np.array(list(itertools.product(w, repeat=dim))), axis=1)
    return Quadrature(nodes, weights)


def gaussian_nodes(mean, cov, quadrature):
    """Quadrature nodes of N(mean (D,), cov (D,D)): x_q = mean + L xi_q, L = chol(cov). -> (Q, D)."""
    L = jnp.linalg.cholesky(cov)
    return mean + jnp.asarray(quadrature.nodes, mean.dtype) @ L.T


class DriftMoments(NamedTuple):
    """Moments of the GP drift under q(x_t) q(f) for one time step."""

    mean: jax.Array  # (D,)    F = E[f(x)]
    cross: jax.Array  # (D, D) P = E[(x - m) f(x)^T]
    second: jax.Array  # (D,)  E[f_d(x)^2]


def drift_moments(feature_fn, q_means, q_covs, mean, cov, quadrature):
    """F, P, E[f_d^2] under x ~ N(mean, cov) and q(v_d) = N(q_means[:, d], q_covs[d]).

    Args:
        feature_fn: X (Q, D) -> (A (Q, M), c (Q,)).
        q_means: (M, D).  q_covs: (D, M, M).  mean: (D,).  cov: (D, D).
    """
    X = gaussian_nodes(mean, cov, quadrature)
    w = jnp.asarray(quadrature.weights, mean.dtype)
    A, c = feature_fn(X)
    f = A @ q_means  # (Q, D)
    var = jnp.einsum("qm,dmn,qn->qd", A, q_covs, A) + c[:, None]
    return DriftMoments(w @ f, (X - mean).T @ (w[:, None] * f), w @ (f**2 + var))


class FeatureMoments(NamedTuple):
    """Moments of the whitened features under q(x_t), for one time step."""

    mean: jax.Array  # (M,)     A1 = E[a(x)]
    cross: jax.Array  # (D, M)  Ax = E[(x - m) a(x)^T]
    second: jax.Array  # (M, M) A2 = E[a(x) a(x)^T]
    residual: jax.Array  # ()   C0 = E[c(x)]


def feature_moments(feature_fn, mean, cov, quadrature):
    """A1, Ax, A2, C0 under x ~ N(mean (D,), cov (D,D))."""
    X = gaussian_nodes(mean, cov, quadrature)
    w = jnp.asarray(quadrature.weights, mean.dtype)
    A, c = feature_fn(X)
    return FeatureMoments(w @ A, (X - mean).T @ (w[:, None] * A), (A * w[:, None]).T @ A, w @ c)


def expected_softplus_terms(mean, var, num_points=6):
    """E[softplus(z)] and E[log softplus(z)] for z ~ N(mean, var), elementwise (1-D Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(num_points)
    x, w = jnp.asarray(x, mean.dtype), jnp.asarray(w / w.sum(), mean.dtype)
    z = mean[..., None] + jnp.sqrt(var)[..., None] * x
    sp = jax.nn.softplus(z)
    log_sp = jnp.where(z < -20.0, z, jnp.log(jax.nn.softplus(jnp.maximum(z, -20.0))))
    return sp @ w, log_sp @ w


def rbf_feature_moments_analytic(params, inducing_points, jitter, mean, cov):
    """A1, Ax, A2 of whitened RBF inducing features in closed form (Psi statistics), for testing / speed.

    With k(x, z) = s^2 exp(-1/2 (x-z)^T L^-2 (x-z)), Lam = diag(ell^2):
      E[k(x, z)] = s^2 |I + S Lam^-1|^{-1/2} exp(-1/2 (m-z)^T (Lam+S)^-1 (m-z))
      E[(x-m) k(x,z)] = S (Lam+S)^-1 (z-m) E[k(x,z)]
      E[k(z,x) k(x,z')] = s^4 |I + 2 S Lam^-1|^{-1/2} exp(-1/4 (z-z')^T Lam^-1 (z-z')
                                                        - (zbar - m)^T (Lam/2 + S)^-1 (zbar - m)/2)
    whitened by L_Z^{-1} on both sides.
    """
    from ssmneuro.models.gp.kernels import RBF, gram

    Z = inducing_points
    D = mean.shape[0]
    lam = jnp.exp(2 * params.log_lengthscales)
    s2 = jnp.exp(params.log_variance)
    K = gram(RBF(), params, Z, Z)
    L = jnp.linalg.cholesky(K + jitter * jnp.mean(jnp.diag(K)) * jnp.eye(Z.shape[0], dtype=K.dtype))
    B = jnp.diag(lam) + cov
    dz = Z - mean
    psi1 = s2 / jnp.sqrt(jnp.linalg.det(jnp.eye(D) + cov / lam)) * jnp.exp(
        -0.5 * jnp.sum(dz * jnp.linalg.solve(B, dz.T).T, axis=1)
    )
    psix = (cov @ jnp.linalg.solve(B, dz.T)) * psi1  # (D, M)
    zbar = 0.5 * (Z[:, None] + Z[None]) - mean
    diff = Z[:, None] - Z[None]
    B2 = jnp.diag(lam) / 2 + cov
    quad = jnp.einsum("abi,ij,abj->ab", zbar, jnp.linalg.inv(B2), zbar)
    psi2 = (
        s2**2
        / jnp.sqrt(jnp.linalg.det(jnp.eye(D) + 2 * cov / lam))
        * jnp.exp(-0.25 * jnp.sum(diff**2 / lam, -1) - 0.5 * quad)
    )
    solve = lambda v: jax.scipy.linalg.solve_triangular(L, v, lower=True)
    A1 = solve(psi1)
    Ax = solve(psix.T).T
    A2 = solve(solve(psi2).T).T
    return A1, Ax, A2
