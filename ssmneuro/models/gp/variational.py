"""Variational EM for the GP-SDE on a fine time grid (pure, jit-able functions).

Generative model on the grid t_k = t_0 + k dt (Euler-Maruyama of dx = f(x) dt + B u(t) dt + sqrt(Sigma) dW):
    x_1 ~ N(mu0, V0),   x_{k+1} | x_k, f ~ N(x_k + dt f(x_k) + dt B u_k, dt Sigma),   Sigma = sigma^2 I,
    y_k | x_k ~ p(y | C x_k + d)  (masked entries unobserved),
    f_d(x) = a(x)^T v_d + e_d(x),  v_d ~ N(0, I)  (whitened kernel features, see ``kernels``).
Variational family q(x) q(v): q(x) any Gauss-Markov chain (block-tridiagonal precision J, linear term h),
q(v_d) = N(mu_d, Sigma_d). ELBO = E_q[log p(y, x | v)] + H[q(x)] - KL[q(v) || p(v)].

E-step: natural-gradient (conjugate-computation) update of q(x):
    lambda_new = (1 - rho) lambda + rho grad_mu E_q[log p(y, x | v)]
with mu = (E x_k, E x_k x_k^T, E x_{k+1} x_k^T) the chain's mean parameters. The gradient is taken by
autodiff of the expected log joint written in (m_k, S_k, C_k = Cov(x_{k+1}, x_k)); the new Gaussian is
read off by the core block-tridiagonal solver. Its off-diagonal blocks are (I + dt E[df/dx])^T / (dt sigma^2)
-- the expected drift linearisation -- and for a drift that is linear in x (linear kernel) and Gaussian
observations the update is exact in one step: q(x) is then the Kalman smoother of the discretised LDS.
At rho = 1 the fixed point is a stationary point of the ELBO. The continuous-time limit dt -> 0 is the
Gauss-Markov posterior (A(t), b(t)) of Archambeau et al. (2007) / Duncker et al. (2019).

q(v) is closed form given q(x): with Phi = dt sum_k E[a a^T], b_d = sum_k E[(x_{k+1,d} - x_{k,d}) a(x_k)],
    Cov q(v_d) = (I + Phi / sigma^2)^{-1},  E q(v_d) = Cov (b_d / sigma^2),
and the ELBO maximised over q(v) (collapsed) is what the hyperparameter M-step (optax) climbs.
Inputs: the known drive B u_k (u_k the input at grid step k, B the (D, U) input matrix) is deterministic
given the parameters, so it only shifts the expected increment: every dynamics expectation is the input-free
one with m_{k+1} - m_k replaced by m_{k+1} - m_k - dt B u_k (``input_offsets``). The collapsed ELBO is then
a concave quadratic in B, maximised in closed form (``optimal_input_matrix``; the Schur complement of the
joint (q(v) mean, B) least-squares problem). input_dim = 0 (or inputs None) skips all of it.
Padding: step_weights[k] = 0 removes step k -> k+1 from the ELBO; such steps get a pure random walk in q
(its conditional integrates out exactly), so padded trials give the unpadded answer.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ssmneuro.inference.block_tridiag import block_tridiag_posterior
from ssmneuro.models.gp.emissions import expected_log_likelihood
from ssmneuro.models.gp.expectations import drift_moments, gaussian_nodes


class DriftPosterior(NamedTuple):
    """q(v_d) = N(means[:, d], covs[d]) over the whitened feature weights of each drift output."""

    means: jax.Array  # (M, D)
    covs: jax.Array  # (D, M, M)


class GPSDEParams(NamedTuple):
    """All parameters of a GP-SDE / GP-SLDS fit.

    kernel: the kernel's NamedTuple of (unconstrained) hyperparameters.
    inducing_points: (M, D) for inducing-point kernels (RBF), None for finite-feature kernels (linear, SSL).
    emissions: GPEmissionParams(weights (N, D), biases (N,), covs (N,)).
    initial_mean: (D,).  initial_cov: (D, D).
    drift: DriftPosterior q(v) (means (M, D), covs (D, M, M)).
    input_matrix: (D, U) B of the input drift B u(t); (D, 0) or None for a model without inputs.
    """

    kernel: NamedTuple
    inducing_points: jax.Array | None
    emissions: NamedTuple
    initial_mean: jax.Array
    initial_cov: jax.Array
    drift: DriftPosterior
    input_matrix: jax.Array | None = None


class TrialData(NamedTuple):
    """One trial on the grid: emissions (T, N), mask (T, N) bool, step_weights (T - 1,) in {0, 1},
    inputs (T, U) (row k drives the step k -> k+1; the last row is unused) or None (no inputs)."""

    emissions: jax.Array
    mask: jax.Array
    step_weights: jax.Array
    inputs: jax.Array | None = None


class GaussMarkovPosterior(NamedTuple):
    """q(x) for one trial: marginals and the natural parameters they came from.

    means (T, D), covs (T, D, D), cross_covs (T-1, D, D) = Cov(x_{k+1}, x_k);
    J_diag (T, D, D), J_lower (T-1, D, D), h (T, D): q(x) proportional to exp(-1/2 x^T J x + h^T x).
    """

    means: jax.Array
    covs: jax.Array
    cross_covs: jax.Array
    J_diag: jax.Array
    J_lower: jax.Array
    h: jax.Array


def _mT(x):
    return jnp.swapaxes(x, -1, -2)


def feature_function(spec, params):
    """X (P, D) -> (A (P, M), c (P,)), the whitened features of the model's kernel at its hyperparameters."""
    return lambda X: spec.kernel_obj.features(params.kernel, X, params.inducing_points)


def initial_term(params, mean, cov):
    """E_q[log N(x_1; mu0, V0)] for q(x_1) = N(mean, cov)."""
    D = mean.shape[0]
    V0 = params.initial_cov
    r = mean - params.initial_mean
    _, logdet = jnp.linalg.slogdet(V0)
    return -0.5 * (r @ jnp.linalg.solve(V0, r) + jnp.trace(jnp.linalg.solve(V0, cov)) + logdet + D * jnp.log(2 * jnp.pi))


def has_inputs(params, inputs):
    """Static: does this (params, inputs) pair carry an input drift (B and inputs present, U > 0)?"""
    B = getattr(params, "input_matrix", None)
    return B is not None and inputs is not None and B.shape[-1] > 0


def input_offsets(spec, params, inputs):
    """dt B u_k for each step k -> k+1: (T-1, D), or None without inputs (inputs (T, U))."""
    if not has_inputs(params, inputs):
        return None
    return spec.dt * (inputs[:-1] @ params.input_matrix.T)


def _increment_means(means, offsets=None):
    """m_{k+1} - m_k - offsets_k: the mean of the increment left for the GP drift and the noise."""
    dm = means[1:] - means[:-1]
    return dm if offsets is None else dm - offsets


def expected_squared_increment(means, covs, cross_covs, offsets=None):
    """E||x_{k+1} - x_k - o_k||^2 = |m_{k+1} - m_k - o_k|^2 + tr(S_{k+1} + S_k - C_k - C_k^T)  -> (T-1,).

    offsets o (T-1, D): the deterministic input increments dt B u_k (None: zero).
    """
    dm = _increment_means(means, offsets)
    tr = jnp.trace(covs[1:] + covs[:-1] - 2 * cross_covs, axis1=-2, axis2=-1)
    return jnp.sum(dm**2, -1) + tr


def increment_drift_cross(means, covs, cross_covs, drift_mean, drift_cross, offsets=None):
    """E[(x_{k+1} - x_k - o_k)^T f(x_k)] = (m_{k+1} - m_k - o_k)^T F_k + tr((C_k S_k^{-1} - I) P_k)  -> (T-1,).

    Uses Cov(x_{k+1}, f(x_k)) = C_k S_k^{-1} Cov(x_k, f(x_k)) (q is jointly Gaussian in x_k, x_{k+1}).
    """
    dm = _increment_means(means, offsets)
    X = cross_covs @ jnp.linalg.solve(covs[:-1], drift_cross) - drift_cross
    return jnp.sum(dm * drift_mean, -1) + jnp.trace(X, axis1=-2, axis2=-1)


def dynamics_term(spec, params, means, covs, cross_covs, step_weights, inputs=None):
    """sum_k w_k E_q[log N(x_{k+1}; x_k + dt f(x_k) + dt B u_k, dt sigma^2 I)] under q(x) q(v).

    = sum_k w_k [ -E||r||^2 / (2 dt s2) + E[r^T f] / s2 - dt E||f||^2 / (2 s2) - D/2 log(2 pi dt s2) ],
    r_k = x_{k+1} - x_k - dt B u_k.  inputs (T, U) or None.
    """
    dt, s2 = spec.dt, spec.diffusion
    D = means.shape[-1]
    moments = jax.vmap(lambda m, S: drift_moments(feature_function(spec, params), params.drift.means,
                                                  params.drift.covs, m, S, spec.quadrature))(means[:-1], covs[:-1])
    offsets = input_offsets(spec, params, inputs)
    e_dxdx = expected_squared_increment(means, covs, cross_covs, offsets)
    e_dxf = increment_drift_cross(means, covs, cross_covs, moments.mean, moments.cross, offsets)
    e_ff = jnp.sum(moments.second, -1)
    per_step = (-e_dxdx / (2 * dt) + e_dxf - 0.5 * dt * e_ff) / s2 - 0.5 * D * jnp.log(2 * jnp.pi * dt * s2)
    return jnp.sum(step_weights * per_step)


def observation_term(spec, params, trial, means, covs):
    """sum_k E_q[log p(y_k | x_k)]."""
    ell = lambda y, mk, m, S: expected_log_likelihood(spec.emissions, spec.link, params.emissions, y, mk, m, S,
                                                      spec.bin_size, spec.emission_quadrature_points)
    return jnp.sum(jax.vmap(ell)(trial.emissions, trial.mask, means, covs))


def expected_log_joint(spec, params, trial, means, covs, cross_covs):
    """E_q[log p(y, x | v)] averaged over q(v), as a function of q(x)'s marginals."""
    return (
        initial_term(params, means[0], covs[0])
        + dynamics_term(spec, params, means, covs, cross_covs, trial.step_weights, trial.inputs)
        + observation_term(spec, params, trial, means, covs)
    )


def gauss_markov_entropy(means, covs, cross_covs, step_weights):
    """H[q(x)] = H[x_1] + sum_k w_k H[x_{k+1} | x_k],  Cov(x_{k+1} | x_k) = S_{k+1} - C_k S_k^{-1} C_k^T."""
    D = means.shape[-1]
    cond = covs[1:] - cross_covs @ jnp.linalg.solve(covs[:-1], _mT(cross_covs))
    h = lambda S: 0.5 * (jnp.linalg.slogdet(S)[1] + D * jnp.log(2 * jnp.pi * jnp.e))
    return h(covs[0]) + jnp.sum(step_weights * jax.vmap(h)(cond))


def random_walk_blocks(spec, step_weights, D, dtype):
    """Natural parameters of a pure random walk on the padded steps (w_k = 0): (J_diag, J_lower)."""
    T = step_weights.shape[0] + 1
    prec = (1.0 - step_weights)[:, None, None] * jnp.eye(D, dtype=dtype) / (spec.dt * spec.diffusion)
    J_diag = jnp.zeros((T, D, D), dtype).at[:-1].add(prec).at[1:].add(prec)
    return J_diag, -prec


def natural_params_from_gradient(means, g_m, g_S, g_C):
    """CVI: natural parameters lambda = grad_mu L from gradients in (m, S, C).

    mu1 = m, mu2_k = S_k + m_k m_k^T, mu12_k = C_k + m_{k+1} m_k^T give
      J_diag = -(G_S + G_S^T),  J_lower = -G_C,
      h_k = g_m_k - (G_S + G_S^T)_k m_k - G_C_k^T m_{k+1} - G_C_{k-1} m_{k-1}.
    """
    G_S = g_S + _mT(g_S)
    h = g_m - jnp.einsum("tij,tj->ti", G_S, means)
    h = h.at[:-1].add(-jnp.einsum("tji,tj->ti", g_C, means[1:]))
    h = h.at[1:].add(-jnp.einsum("tij,tj->ti", g_C, means[:-1]))
    return -G_S, -g_C, h


def solve_chain(J_diag, J_lower, h, parallel=False):
    """Marginals of exp(-1/2 x^T J x + h^T x) by the core block-tridiagonal solver (parallel: O(log T) depth)."""
    post = block_tridiag_posterior(J_diag, J_lower, h, parallel=parallel)
    return post.means, post.covs, post.cross_covs


def estep_update(spec, params, trial, post, rho):
    """One damped natural-gradient step on q(x) for one trial -> GaussMarkovPosterior."""
    D = post.means.shape[-1]
    L = lambda m, S, C: expected_log_joint(spec, params, trial, m, S, C)
    g_m, g_S, g_C = jax.grad(L, argnums=(0, 1, 2))(post.means, post.covs, post.cross_covs)
    J_diag, J_lower, h = natural_params_from_gradient(post.means, g_m, g_S, g_C)
    rw_diag, rw_lower = random_walk_blocks(spec, trial.step_weights, D, h.dtype)
    J_diag = (1 - rho) * post.J_diag + rho * (J_diag + rw_diag)
    J_lower = (1 - rho) * post.J_lower + rho * (J_lower + rw_lower)
    h = (1 - rho) * post.h + rho * h
    J_diag = 0.5 * (J_diag + _mT(J_diag))
    means, covs, cross = solve_chain(J_diag, J_lower, h, spec.parallel)
    return GaussMarkovPosterior(means, covs, cross, J_diag, J_lower, h)


def initial_posterior(spec, params, trial, latent_means, precision=100.0):
    """A starting q(x): the random-walk chain pulled towards given latent means with a pseudo-observation.

    J = random walk (dt sigma^2) + V0^{-1} on x_1 + precision * I on observed steps; h = precision * means.
    """
    T, D = latent_means.shape
    dtype = latent_means.dtype
    rw_diag, rw_lower = random_walk_blocks(spec, jnp.zeros(T - 1, dtype), D, dtype)
    observed = jnp.any(trial.mask, axis=1).astype(dtype)
    J_diag = rw_diag + precision * observed[:, None, None] * jnp.eye(D, dtype=dtype)
    J_diag = J_diag.at[0].add(jnp.linalg.inv(params.initial_cov))
    h = precision * observed[:, None] * latent_means
    h = h.at[0].add(jnp.linalg.solve(params.initial_cov, params.initial_mean))
    means, covs, cross = solve_chain(J_diag, rw_lower, h, spec.parallel)
    return GaussMarkovPosterior(means, covs, cross, J_diag, rw_lower, h)


class DriftStatistics(NamedTuple):
    """Sufficient statistics of q(x) for q(v): Phi (M, M), b (M, D), and the v-free dynamics terms ()."""

    Phi: jax.Array
    b: jax.Array
    constant: jax.Array


def _step_features(spec, params, means, covs):
    """Features at the quadrature nodes of q(x_k), k < T: (A (T-1, Q, M), c (T-1, Q), X (T-1, Q, D), wq (Q,))."""
    D = means.shape[-1]
    X = jax.vmap(lambda mk, Sk: gaussian_nodes(mk, Sk, spec.quadrature))(means[:-1], covs[:-1])  # (T-1, Q, D)
    Tm1, Q = X.shape[:2]
    A, c = feature_function(spec, params)(X.reshape(-1, D))
    return A.reshape(Tm1, Q, -1), c.reshape(Tm1, Q), X, jnp.asarray(spec.quadrature.weights, means.dtype)


def drift_statistics(spec, params, trial, post):
    """Phi = dt sum_k w_k E[a a^T], b_d = sum_k w_k E[r_{k,d} a(x_k)], plus the terms free of v.

    r_k = x_{k+1} - x_k - dt B u_k (the increment less the input drive);
    E[r_k a(x_k)^T] = (m_{k+1} - m_k - dt B u_k) A1_k^T + (C_k S_k^{-1} - I) Ax_k   (D, M).
    """
    dt, s2 = spec.dt, spec.diffusion
    m, S, C, w = post.means, post.covs, post.cross_covs, trial.step_weights
    D = m.shape[-1]
    A, c, X, wq = _step_features(spec, params, m, S)
    A1 = jnp.einsum("q,tqm->tm", wq, A)
    Ax = jnp.einsum("q,tqd,tqm->tdm", wq, X - m[:-1, None], A)
    Phi = dt * jnp.einsum("t,q,tqm,tqn->mn", w, wq, A, A)
    offsets = input_offsets(spec, params, trial.inputs)
    dm = _increment_means(m, offsets)
    gain = C @ jnp.linalg.inv(S[:-1]) - jnp.eye(D, dtype=m.dtype)
    e_dx_a = dm[:, :, None] * A1[:, None, :] + gain @ Ax  # (T-1, D, M)
    b = jnp.einsum("t,tdm->md", w, e_dx_a)
    C0 = c @ wq
    e_dxdx = expected_squared_increment(m, S, C, offsets)
    per_step = (-e_dxdx / (2 * dt) - 0.5 * dt * D * C0) / s2 - 0.5 * D * jnp.log(2 * jnp.pi * dt * s2)
    return DriftStatistics(Phi, b, jnp.sum(w * per_step))


class InputStatistics(NamedTuple):
    """Sufficient statistics of q(x) for B: Phi_au (M, U), Phi_uu (U, U), b_u (U, D)."""

    Phi_au: jax.Array
    Phi_uu: jax.Array
    b_u: jax.Array


def input_statistics(spec, params, trial, post):
    """Phi_au = dt sum_k w_k E[a(x_k)] u_k^T,  Phi_uu = dt sum_k w_k u_k u_k^T,
    b_u = sum_k w_k u_k (m_{k+1} - m_k)^T  (needs trial.inputs (T, U))."""
    dt, w, u = spec.dt, trial.step_weights, trial.inputs[:-1]
    m = post.means
    A, _, _, wq = _step_features(spec, params, m, post.covs)
    A1 = jnp.einsum("q,tqm->tm", wq, A)
    wu = w[:, None] * u
    return InputStatistics(dt * A1.T @ wu, dt * u.T @ wu, wu.T @ (m[1:] - m[:-1]))


def optimal_drift_posterior(stats, diffusion):
    """q(v_d) = N(P^{-1} b_d / s2, P^{-1}), P = I + Phi / s2; and the collapsed value
    max_q(v) E[log p(x | v)] - KL = constant + sum_d [1/2 beta_d^T P^{-1} beta_d - 1/2 log|P|], beta = b / s2.
    """
    M, D = stats.b.shape
    P = jnp.eye(M, dtype=stats.Phi.dtype) + stats.Phi / diffusion
    L = jnp.linalg.cholesky(0.5 * (P + P.T))
    beta = stats.b / diffusion
    means = jax.scipy.linalg.cho_solve((L, True), beta)
    cov = jax.scipy.linalg.cho_solve((L, True), jnp.eye(M, dtype=P.dtype))
    logdet = 2 * jnp.sum(jnp.log(jnp.diag(L)))
    value = stats.constant + 0.5 * jnp.sum(beta * means) - 0.5 * D * logdet
    return DriftPosterior(means, jnp.broadcast_to(cov, (D, M, M))), value


def batched_drift_statistics(spec, params, trials, posts):
    """Sum of drift statistics over a batch of (padded) trials (leading axis B)."""
    stats = jax.vmap(lambda tr, po: drift_statistics(spec, params, tr, po))(trials, posts)
    return jax.tree.map(lambda s: jnp.sum(s, axis=0), stats)


def optimal_input_matrix(spec, params, trials, posts, jitter=1e-9):
    """B maximising the collapsed ELBO for fixed q(x) and kernel: (D, U).

    With the statistics at B = 0 (Phi, b0) and ``input_statistics``, the collapsed ELBO is, per output d,
        (B_d^T b_u_d - 1/2 B_d^T Phi_uu B_d) / s2 + 1/2 (b0_d - Phi_au B_d)^T P^{-1} (b0_d - Phi_au B_d) / s2^2,
    P = I + Phi / s2: a concave quadratic, maximised by
        (Phi_uu - Phi_au^T P^{-1} Phi_au / s2) B_d = b_u_d - Phi_au^T P^{-1} b0_d / s2,
    the B block of the joint least-squares solution for (E q(v_d), B_d). A relative jitter keeps the
    system solvable when an input is identically zero (B is then not identified; it stays 0).
    """
    s2 = spec.diffusion
    zero = params._replace(input_matrix=jnp.zeros_like(params.input_matrix))
    stats = batched_drift_statistics(spec, zero, trials, posts)
    istats = jax.tree.map(lambda s: jnp.sum(s, 0),
                          jax.vmap(lambda tr, po: input_statistics(spec, zero, tr, po))(trials, posts))
    M, U = istats.Phi_au.shape
    P = jnp.eye(M, dtype=stats.Phi.dtype) + stats.Phi / s2
    L = jnp.linalg.cholesky(0.5 * (P + P.T))
    Pinv_au = jax.scipy.linalg.cho_solve((L, True), istats.Phi_au)  # (M, U)
    schur = istats.Phi_uu - istats.Phi_au.T @ Pinv_au / s2
    schur = 0.5 * (schur + schur.T)
    schur = schur + (jitter * jnp.trace(schur) / U + jnp.finfo(schur.dtype).tiny) * jnp.eye(U, dtype=schur.dtype)
    rhs = istats.b_u - Pinv_au.T @ stats.b / s2  # (U, D)
    return jnp.linalg.solve(schur, rhs).T


def collapsed_elbo(spec, params, trials, posts):
    """ELBO with q(v) at its optimum for q(x) and the hyperparameters: (value (), optimal DriftPosterior).

    value = sum_trials [E log p(x_1) + E log p(y | x) + H q(x)] + collapsed dynamics term.
    """
    stats = batched_drift_statistics(spec, params, trials, posts)
    drift, dyn = optimal_drift_posterior(stats, spec.diffusion)

    def per_trial(tr, po):
        return (
            initial_term(params, po.means[0], po.covs[0])
            + observation_term(spec, params, tr, po.means, po.covs)
            + gauss_markov_entropy(po.means, po.covs, po.cross_covs, tr.step_weights)
        )

    return dyn + jnp.sum(jax.vmap(per_trial)(trials, posts)), drift


def explicit_elbo(spec, params, trial, post):
    """ELBO of one trial with the q(v) stored in params (for tests and diagnostics):
    E_q log p(y, x | v) + H q(x) - KL(q(v) || N(0, I))."""
    return (
        expected_log_joint(spec, params, trial, post.means, post.covs, post.cross_covs)
        + gauss_markov_entropy(post.means, post.covs, post.cross_covs, trial.step_weights)
        - drift_kl(params.drift)
    )


def drift_kl(drift):
    """sum_d KL(N(mu_d, Sigma_d) || N(0, I)) = 1/2 sum_d [tr Sigma_d + |mu_d|^2 - M - log|Sigma_d|]."""
    M = drift.means.shape[0]
    logdets = jnp.linalg.slogdet(drift.covs)[1]
    return 0.5 * jnp.sum(jnp.trace(drift.covs, axis1=-2, axis2=-1) + jnp.sum(drift.means**2, 0) - M - logdets)


def initial_state_update(posts, weights=None):
    """Closed-form mu0, V0 maximising sum_trials E log N(x_1; mu0, V0): mean and spread of q(x_1)."""
    m1, S1 = posts.means[:, 0], posts.covs[:, 0]
    mu0 = jnp.mean(m1, 0)
    r = m1 - mu0
    V0 = jnp.mean(S1 + r[:, :, None] * r[:, None, :], 0)
    return mu0, 0.5 * (V0 + V0.T) + 1e-6 * jnp.eye(m1.shape[-1], dtype=m1.dtype)
