"""Kernels for the GP drift, each in whitened feature form.

Every output f_d of the drift is an independent GP with one shared kernel. Inference only ever needs
the *whitened features* of a kernel: a map x -> (a(x) (M,), c(x) ()) such that

    f_d(x) = a(x)^T v_d + e_d(x),   v_d ~ N(0, I_M),   e_d(x) ~ N(0, c(x)) independent,

so that k(x, x') = a(x)^T a(x') (+ c(x) on the diagonal). Two kinds:

- finite-rank kernels are *exact* in this form, c = 0 (no inducing points):
    linear:  k(x, x') = (x - c)^T diag(w) (x' - c) + s0^2,            a(x) = [sqrt(w) (x - c), s0]
    SSL:     k(x, x') = sum_j pi_j(x) pi_j(x') [(x - c_j)^T diag(w) (x' - c_j) + s0^2],
             pi(x) = softmax([W^T phi(x), 0] / tau), phi(x) = [1, x],   a(x) = concat_j pi_j(x) [sqrt(w)(x - c_j), s0]
  (the smoothly switching linear kernel of Hu et al. 2024; v_d holds row d of each regime's A_j and b_j.)
- other kernels use M inducing points Z (a sparse GP in whitened form):
    a(x) = L^{-1} k(Z, x),  L = chol(K_ZZ + jitter I),  c(x) = k(x, x) - a(x)^T a(x)  (the Nystrom residual).

Kernels are small frozen configs; their hyperparameters live in NamedTuples (unconstrained: logs).
``Sum`` composes kernels (features concatenated: a sum of independent GPs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp


class RBFParams(NamedTuple):
    """k(x, x') = exp(log_variance) exp(-1/2 sum_i (x_i - x'_i)^2 / exp(2 log_lengthscales_i))."""

    log_lengthscales: jax.Array  # (D,)
    log_variance: jax.Array  # ()


class LinearParams(NamedTuple):
    """k(x, x') = (x - center)^T diag(exp(log_weights)) (x' - center) + exp(log_bias)."""

    center: jax.Array  # (D,)
    log_weights: jax.Array  # (D,)
    log_bias: jax.Array  # ()


class SSLParams(NamedTuple):
    """Smoothly switching linear kernel: regime centres c_j, shared linear weights, softmax boundaries."""

    centers: jax.Array  # (J, D)   c_j
    log_weights: jax.Array  # (D,)  log diag(M)
    log_bias: jax.Array  # ()       log s0^2
    boundary_weights: jax.Array  # (D + 1, J - 1)  W: logits = [W^T [1, x], 0]


@dataclass(frozen=True)
class RBF:
    """Squared-exponential kernel, used through inducing points."""

    jitter: float = 1e-5
    uses_inducing: bool = True

    def init_params(self, latent_dim, lengthscale=1.0, variance=1.0):
        return RBFParams(jnp.full((latent_dim,), jnp.log(lengthscale)), jnp.asarray(jnp.log(variance)))

    def __call__(self, params, x, y):
        """k(x, y) for single points x, y (D,)."""
        r = (x - y) / jnp.exp(params.log_lengthscales)
        return jnp.exp(params.log_variance - 0.5 * jnp.sum(r**2))

    def num_features(self, latent_dim, num_inducing):
        return num_inducing

    def features(self, params, X, inducing_points):
        return inducing_features(self, params, X, inducing_points)


@dataclass(frozen=True)
class Linear:
    """Linear kernel with a centre and a bias: exact rank D + 1 features."""

    uses_inducing: bool = False

    def init_params(self, latent_dim, weight=1.0, bias=1.0):
        return LinearParams(jnp.zeros(latent_dim), jnp.full((latent_dim,), jnp.log(weight)), jnp.asarray(jnp.log(bias)))

    def __call__(self, params, x, y):
        return jnp.sum(jnp.exp(params.log_weights) * (x - params.center) * (y - params.center)) + jnp.exp(params.log_bias)

    def num_features(self, latent_dim, num_inducing=None):
        return latent_dim + 1

    def features(self, params, X, inducing_points=None):
        """a(x) = [sqrt(w) (x - c), s0]: X (P, D) -> A (P, D+1), c (P,) = 0."""
        lin = jnp.exp(0.5 * params.log_weights) * (X - params.center)
        bias = jnp.broadcast_to(jnp.exp(0.5 * params.log_bias), X.shape[:-1] + (1,)).astype(lin.dtype)
        return jnp.concatenate([lin, bias], axis=-1), jnp.zeros(X.shape[:-1], lin.dtype)


def regime_probs(boundary_weights, x, tau):
    """pi(x) = softmax([W^T [1, x], 0] / tau) (J,) for one point x (D,)."""
    logits = boundary_weights.T @ jnp.append(1.0, x).astype(boundary_weights.dtype)
    return jax.nn.softmax(jnp.append(logits, 0.0) / tau)


@dataclass(frozen=True)
class SSL:
    """Smoothly switching linear kernel (Hu et al. 2024) with J regimes: exact rank J (D + 1) features."""

    num_regimes: int = 2
    tau: float = 0.4
    uses_inducing: bool = False

    def init_params(self, latent_dim, key=None, weight=1.0, bias=1.0, center_scale=1.0, boundary_scale=1.0):
        J = self.num_regimes
        if key is None:
            key = jax.random.PRNGKey(0)
        k1, k2 = jax.random.split(key)
        return SSLParams(
            centers=center_scale * jax.random.normal(k1, (J, latent_dim)),
            log_weights=jnp.full((latent_dim,), jnp.log(weight)),
            log_bias=jnp.asarray(jnp.log(bias)),
            boundary_weights=boundary_scale * jax.random.normal(k2, (latent_dim + 1, J - 1)),
        )

    def __call__(self, params, x, y):
        px, py = regime_probs(params.boundary_weights, x, self.tau), regime_probs(params.boundary_weights, y, self.tau)
        lin = jnp.sum(jnp.exp(params.log_weights) * (x - params.centers) * (y - params.centers), axis=-1)
        return jnp.sum(px * py * (lin + jnp.exp(params.log_bias)))

    def num_features(self, latent_dim, num_inducing=None):
        return self.num_regimes * (latent_dim + 1)

    def features(self, params, X, inducing_points=None):
        """a(x) = concat_j pi_j(x) [sqrt(w) (x - c_j), s0]: X (P, D) -> A (P, J (D+1)), c (P,) = 0."""

        def one(x):
            pi = regime_probs(params.boundary_weights, x, self.tau)
            lin = jnp.exp(0.5 * params.log_weights) * (x - params.centers)  # (J, D)
            bias = jnp.broadcast_to(jnp.exp(0.5 * params.log_bias), (self.num_regimes, 1)).astype(lin.dtype)
            return (pi[:, None] * jnp.concatenate([lin, bias], axis=1)).reshape(-1)

        A = jax.vmap(one)(X)
        return A, jnp.zeros(X.shape[:-1], A.dtype)


@dataclass(frozen=True)
class Sum:
    """Sum of independent GPs: features concatenated, residual variances added; params a tuple."""

    kernels: tuple

    @property
    def uses_inducing(self):
        return any(k.uses_inducing for k in self.kernels)

    def __call__(self, params, x, y):
        return sum(k(p, x, y) for k, p in zip(self.kernels, params))

    def num_features(self, latent_dim, num_inducing):
        return sum(k.num_features(latent_dim, num_inducing) for k in self.kernels)

    def features(self, params, X, inducing_points=None):
        parts = [k.features(p, X, inducing_points) for k, p in zip(self.kernels, params)]
        return jnp.concatenate([a for a, _ in parts], axis=-1), sum(c for _, c in parts)


def gram(kernel, params, X, Y):
    """K[i, j] = k(X_i, Y_j): (P, D), (Q, D) -> (P, Q)."""
    return jax.vmap(lambda x: jax.vmap(lambda y: kernel(params, x, y))(Y))(X)


def inducing_features(kernel, params, X, inducing_points):
    """Whitened inducing-point features: a(x) = L^{-1} k(Z, x), c(x) = max(k(x,x) - |a(x)|^2, 0).

    L = chol(K_ZZ + jitter * mean(diag K_ZZ) I).
    Args:
        X: (P, D) points.  inducing_points: (M, D).
    Returns:
        A (P, M), c (P,).
    """
    Z = inducing_points
    K = gram(kernel, params, Z, Z)
    scale = jnp.mean(jnp.diag(K))
    L = jnp.linalg.cholesky(K + kernel.jitter * scale * jnp.eye(Z.shape[0], dtype=K.dtype))
    A = jax.scipy.linalg.solve_triangular(L, gram(kernel, params, Z, X), lower=True).T
    kxx = jax.vmap(lambda x: kernel(params, x, x))(X)
    return A, jnp.maximum(kxx - jnp.sum(A**2, axis=-1), 0.0)


def kernel_by_name(name, num_regimes=2, tau=0.4):
    """'rbf' | 'linear' | 'ssl' -> kernel config (or pass a kernel object through)."""
    if not isinstance(name, str):
        return name
    table = {"rbf": RBF(), "linear": Linear(), "ssl": SSL(num_regimes=num_regimes, tau=tau)}
    if name not in table:
        raise ValueError(f"kernel must be one of {sorted(table)} or a kernel object, got {name!r}")
    return table[name]
