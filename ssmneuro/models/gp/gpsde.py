"""GP-SDE (Duncker et al. 2019) and GP-SLDS (Hu et al. 2024): the thin object shell.

    dx = f(x) dt + B u(t) dt + sqrt(diffusion) dW,   f_d ~ GP(0, k) independent,   y(t) | x(t) ~ emissions.

``GPSDE(latent_dim, kernel="rbf")`` and ``GPSLDS(latent_dim, num_regimes)`` (the smoothly switching
linear kernel) share everything; ``fit`` runs variational EM (see ``variational``), ``drift`` gives the
posterior mean and per-dimension variance of f at any points.

Known inputs u(t) (a stimulus, a perturbation) enter through ``input_dim=U`` and ``inputs=``: a (T_i, U)
array per trial on the rows of the data; B (D, U) is ``params.input_matrix``, learned in closed form in
each M-step. ``drift`` and the fixed-point analyses describe the autonomous part f alone::

    model = GPSDE(2, kernel="rbf", emissions="gaussian", dt=0.01, input_dim=1)
    u = (np.arange(300) * 0.01 > 1.0).astype(float)[:, None]   # a step input at t = 1 s, (T, 1)
    res = model.fit(ys, inputs=[u] * len(ys), key=jax.random.PRNGKey(0))   # ys: list of (300, N)
    res.params.input_matrix                                     # B, (2, 1)
    x, y = model.sample(res.params, jax.random.PRNGKey(1), 300, inputs=u)

With irregular ``times`` an input row holds until the next observation time. B is identified by how the
latents respond to changes in u: an input that never changes is confounded with the drift's offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter1d

from ssmneuro.models.gp.data import grid_inputs, grid_trials, pad_grid_trials
from ssmneuro.models.gp.emissions import EMISSIONS, LINKS, GPEmissionParams
from ssmneuro.models.gp.expectations import gauss_hermite
from ssmneuro.models.gp.fitting import (adam, all_finite, estep, initial_posteriors, input_update, learnable, mstep,
                                        refresh_drift)
from ssmneuro.models.gp.kernels import RBF, SSL, kernel_by_name
from ssmneuro.models.gp.variational import DriftPosterior, GPSDEParams


class GPSDEPosterior(NamedTuple):
    """q(x) of one trial on its grid: times (T,), latent_means (T, D), latent_covs (T, D, D),
    latent_cross_covs (T-1, D, D) = Cov(x_{k+1}, x_k)."""

    times: np.ndarray
    latent_means: np.ndarray
    latent_covs: np.ndarray
    latent_cross_covs: np.ndarray


class GPFitResult(NamedTuple):
    """params (best ELBO), posterior (list of GPSDEPosterior), elbos (num_iters,), rejected (iterations
    rolled back for NaN), best_iteration."""

    params: GPSDEParams
    posterior: list
    elbos: np.ndarray
    rejected: list
    best_iteration: int


class _GPSDEMethods:
    """Shared implementation; subclasses are frozen dataclasses with the config fields."""

    # ---- derived config -------------------------------------------------------------------------
    @property
    def kernel_obj(self):
        return kernel_by_name(self.kernel)

    @property
    def quadrature(self):
        return gauss_hermite(self.latent_dim, self.quadrature_points)

    @property
    def bin_size(self):
        return self.dt if self.count_bin_size is None else self.count_bin_size

    def _validate(self):
        if int(self.latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {self.latent_dim!r}")
        if getattr(self, "num_regimes", 2) < 2:
            raise ValueError("a GP-SLDS needs num_regimes >= 2 (use GPSDE(kernel='linear') for one linear regime)")
        if self.emissions not in EMISSIONS:
            raise ValueError(f"emissions must be one of {EMISSIONS}, got {self.emissions!r}")
        if self.emissions != "gaussian" and self.link not in LINKS:
            raise ValueError(f"link must be one of {LINKS} for count emissions, got {self.link!r}")
        if not (self.dt > 0 and self.diffusion > 0):
            raise ValueError("dt and diffusion must be positive")
        if not isinstance(self.input_dim, (int, np.integer)) or self.input_dim < 0:
            raise ValueError(f"input_dim must be a non-negative integer, got {self.input_dim!r}")

    # ---- data -----------------------------------------------------------------------------------
    def _trials(self, data, times, masks, dtype, inputs=None):
        gridded = grid_trials(data, self.dt, times, masks, counts=self.emissions != "gaussian")
        us = grid_inputs(inputs, data, gridded, self.input_dim, self.dt, times)
        trials, lengths = pad_grid_trials(gridded, dtype, us)
        return trials, lengths, [g[2] for g in gridded]

    def _with_input_matrix(self, params):
        """params with a (D, input_dim) input matrix (zeros where params has none); ValueError on a mismatch."""
        shape = (self.latent_dim, self.input_dim)
        if params.input_matrix is None:
            return params._replace(input_matrix=jnp.zeros(shape, params.initial_mean.dtype))
        if tuple(params.input_matrix.shape) != shape:
            raise ValueError(f"params.input_matrix has shape {tuple(params.input_matrix.shape)}, expected {shape} "
                             f"(latent_dim, input_dim)")
        return params

    def _posterior_list(self, posts, lengths, grids):
        return [
            GPSDEPosterior(grids[b], np.asarray(posts.means[b, :n]), np.asarray(posts.covs[b, :n]),
                           np.asarray(posts.cross_covs[b, : n - 1]))
            for b, n in enumerate(lengths)
        ]

    # ---- initialisation -------------------------------------------------------------------------
    def _initial_latents(self, trials, lengths):
        """PCA of smoothed (link-inverted) observations, scaled to std init_latent_scale; C, d by least squares."""
        sigma = self.init_smoothing / self.dt
        Y, Mk = np.asarray(trials.emissions, float), np.asarray(trials.mask, float)
        sm = gaussian_filter1d(Y * Mk, sigma, axis=1, mode="nearest")
        wt = np.maximum(gaussian_filter1d(Mk, sigma, axis=1, mode="nearest"), 1e-6)
        Z = sm / wt
        if self.emissions != "gaussian":
            rate = np.maximum(Z / self.bin_size, 1e-2)
            Z = np.log(rate) if self.link == "exp" else np.log(np.expm1(np.minimum(rate, 30.0))) * (rate < 30) + rate * (rate >= 30)
        valid = np.concatenate([np.arange(Z.shape[1]) < n for n in lengths])
        flat = Z.reshape(-1, Z.shape[-1])[valid]
        mu = flat.mean(0)
        _, s, Vt = np.linalg.svd(flat - mu, full_matrices=False)
        D = self.latent_dim
        X = (Z - mu) @ Vt[:D].T
        scale = self.init_latent_scale / np.maximum(X.reshape(-1, D)[valid].std(0), 1e-8)
        X = X * scale
        Xv = np.concatenate([X.reshape(-1, D)[valid], np.ones((valid.sum(), 1))], 1)
        coef = np.linalg.lstsq(Xv, flat, rcond=None)[0]
        weights, biases = coef[:D].T, coef[D]
        resid = flat - Xv @ coef
        covs = np.maximum(resid.var(0), 1e-3) if self.emissions == "gaussian" else np.ones(flat.shape[1])
        return X, GPEmissionParams(weights, biases, covs)

    def _initial_kernel(self, key, X):
        D = self.latent_dim
        kern = self.kernel_obj
        spread = float(np.std(X))
        if isinstance(kern, SSL):
            return kern.init_params(D, key, weight=1.0, bias=1.0, center_scale=0.5 * spread, boundary_scale=0.5)
        if isinstance(kern, RBF):
            # k(x, x) = Var f_d: the mean square of dX_d / dt per latent dimension
            speed = float(np.sqrt(np.mean(np.diff(X, axis=1) ** 2) / self.dt**2)) if X.shape[1] > 1 else 1.0
            return kern.init_params(D, lengthscale=spread, variance=max(speed, 1.0) ** 2)
        return kern.init_params(D)

    def _inducing_grid(self, X):
        if not self.kernel_obj.uses_inducing:
            return None
        lo, hi = X.reshape(-1, self.latent_dim).min(0), X.reshape(-1, self.latent_dim).max(0)
        pad = 0.1 * (hi - lo)
        axes = [np.linspace(l - p, h + p, self.num_inducing) for l, h, p in zip(lo, hi, pad)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.latent_dim)

    def _init_all(self, key, trials, lengths):
        dtype = trials.emissions.dtype
        X, em = self._initial_latents(trials, lengths)
        kparams = jax.tree.map(lambda a: jnp.asarray(a, dtype), self._initial_kernel(key, X))
        Z = self._inducing_grid(X)
        M = self.kernel_obj.num_features(self.latent_dim, None if Z is None else Z.shape[0])
        D = self.latent_dim
        params = GPSDEParams(
            kernel=kparams,
            inducing_points=None if Z is None else jnp.asarray(Z, dtype),
            emissions=jax.tree.map(lambda a: jnp.asarray(a, dtype), em),
            initial_mean=jnp.asarray(X[:, 0].mean(0), dtype),
            initial_cov=jnp.eye(D, dtype=dtype) * jnp.asarray(max(float(X[:, 0].var(0).mean()), 1.0), dtype),
            drift=DriftPosterior(jnp.zeros((M, D), dtype), jnp.broadcast_to(jnp.eye(M, dtype=dtype), (D, M, M))),
            input_matrix=jnp.zeros((D, self.input_dim), dtype),
        )
        posts = initial_posteriors(self, params, trials, jnp.asarray(X, dtype))
        params = input_update(self, params, trials, posts)
        params, _ = refresh_drift(self, params, trials, posts)
        return params, posts

    def initialize(self, key, data, times=None, masks=None, inputs=None):
        """-> (params, list of GPSDEPosterior) from PCA of smoothed data and the closed-form B and q(v)."""
        self._validate()
        trials, lengths, grids = self._trials(data, times, masks, jnp.zeros(()).dtype, inputs)
        params, posts = self._init_all(key, trials, lengths)
        return params, self._posterior_list(posts, lengths, grids)

    # ---- fitting --------------------------------------------------------------------------------
    def fit(self, data, times=None, masks=None, key=None, num_iters=50, num_estep_iters=2, num_mstep_iters=20,
            learning_rate=1e-2, damping=0.7, params=None, verbose=False, callback=None, inputs=None):
        """Variational EM.

        Args:
            data: (T, N) | (B, T, N) | list of (T_i, N) observations (counts per grid step for point_process).
            times: optional list of (T_i,) observation times (irregular sampling: placed on the dt grid).
            masks: optional list of (T_i, N) bool, True = observed.
            key: jax.random key (initialisation).
            num_iters: EM iterations; each = num_estep_iters natural-gradient steps on q(x) (step size
                ``damping``), closed-form initial state and input matrix B, num_mstep_iters Adam steps on the
                hyperparameters, closed-form q(v).
            params: start from these instead of initialising.
            callback: optional callable(iteration, params, elbo) run after each accepted iteration.
            inputs: required when input_dim > 0: (T, U) | (B, T, U) | list of (T_i, U) known inputs, one row
                per row of data (with ``times``: held constant until the next observation time).
        Returns:
            GPFitResult(params with the best ELBO, posterior list, elbos (num_iters,), rejected, best_iteration).
        """
        self._validate()
        if key is None:
            raise ValueError("fit needs a jax.random key: fit(data, key=jax.random.PRNGKey(0))")
        dtype = jnp.zeros(()).dtype
        trials, lengths, grids = self._trials(data, times, masks, dtype, inputs)
        if params is None:
            params, posts = self._init_all(key, trials, lengths)
        else:
            params = self._with_input_matrix(params)
            X = jnp.zeros(trials.emissions.shape[:2] + (self.latent_dim,), dtype) + params.initial_mean
            posts = initial_posteriors(self, params, trials, X, 0.0)
            posts = estep(self, params, trials, posts, 5, 1.0)
        optimizer = adam(float(learning_rate))
        opt_state = optimizer.init(learnable(params))
        elbos, rejected = [], []
        best = (-np.inf, params, posts, -1)
        for it in range(num_iters):
            new_posts = estep(self, params, trials, posts, num_estep_iters, damping)
            new_params, new_opt = mstep(self, params, trials, new_posts, opt_state, optimizer, num_mstep_iters)
            new_params, elbo = refresh_drift(self, new_params, trials, new_posts)
            elbo = float(elbo)
            if not (np.isfinite(elbo) and all_finite(new_params) and all_finite(new_posts.means)):
                rejected.append(it)
                elbos.append(best[0] if np.isfinite(best[0]) else np.nan)
                damping = 0.5 * damping
                continue
            params, posts, opt_state = new_params, new_posts, new_opt
            elbos.append(elbo)
            if elbo > best[0]:
                best = (elbo, params, posts, it)
            if verbose:
                print(f"iter {it:4d}  elbo {elbo:.3f}", flush=True)
            if callback is not None:
                callback(it, params, elbo)
        _, params, posts, best_it = best
        return GPFitResult(params, self._posterior_list(posts, lengths, grids), np.asarray(elbos), rejected, best_it)

    def posterior(self, params, data, times=None, masks=None, num_iters=20, damping=1.0, inputs=None):
        """q(x) of each trial for fixed params (natural-gradient steps from a smoothed start); inputs as in ``fit``."""
        params = self._with_input_matrix(params)
        trials, lengths, grids = self._trials(data, times, masks, params.initial_mean.dtype, inputs)
        X = jnp.zeros(trials.emissions.shape[:2] + (self.latent_dim,), params.initial_mean.dtype) + params.initial_mean
        posts = initial_posteriors(self, params, trials, X, 0.0)
        posts = estep(self, params, trials, posts, num_iters, damping)
        return self._posterior_list(posts, lengths, grids)

    # ---- the posterior drift --------------------------------------------------------------------
    def drift(self, params, x):
        """Posterior mean and per-dimension variance of f at points x (P, D) -> (mean (P, D), var (P, D))."""
        x = jnp.atleast_2d(jnp.asarray(x, params.initial_mean.dtype))
        A, c = self.kernel_obj.features(params.kernel, x, params.inducing_points)
        mean = A @ params.drift.means
        var = jnp.einsum("pm,dmn,pn->pd", A, params.drift.covs, A) + c[:, None]
        return mean, var

    def drift_covariance(self, params, x):
        """Joint posterior covariance of f_d over points x (P, D) -> (D, P, P) (outputs independent)."""
        x = jnp.atleast_2d(jnp.asarray(x, params.initial_mean.dtype))
        A, c = self.kernel_obj.features(params.kernel, x, params.inducing_points)
        return jnp.einsum("pm,dmn,qn->dpq", A, params.drift.covs, A) + jnp.diag(c)[None]

    def sample_drift_weights(self, params, key, num_samples):
        """Samples of v ~ q(v): (S, M, D); f_s(x) = a(x)^T v_s is one posterior drift function."""
        L = jnp.linalg.cholesky(params.drift.covs)  # (D, M, M)
        eps = jax.random.normal(key, (num_samples,) + params.drift.means.shape[::-1], params.drift.means.dtype)
        return params.drift.means[None] + jnp.einsum("dmn,sdn->smd", L, eps)

    def drift_function(self, params, weights=None):
        """x (D,) -> f(x) (D,) for one drift sample (weights (M, D)) or the posterior mean (weights None)."""
        w = params.drift.means if weights is None else weights

        def f(x):
            A, _ = self.kernel_obj.features(params.kernel, jnp.atleast_2d(x), params.inducing_points)
            return (A @ w).reshape(jnp.shape(x))

        return f

    def sample(self, params, key, num_timesteps, x0=None, posterior_mean=False, inputs=None):
        """Simulate one trial: a drift function from q(f) (or its mean), Euler-Maruyama, emissions.

        inputs: (num_timesteps, input_dim) known inputs on the grid (row k drives the step k -> k+1), adding
        B u_k to the drift; None = zero input.
        Returns (x (T, D), y (T, N)); counts for point_process / poisson, Gaussian draws otherwise.
        """
        from ssmneuro.models.gp.simulate import euler_maruyama

        params = self._with_input_matrix(params)
        T, U, dtype = int(num_timesteps), self.input_dim, params.initial_mean.dtype
        u = jnp.zeros((T, U), dtype) if inputs is None else jnp.asarray(inputs, dtype)
        if u.shape != (T, U):
            raise ValueError(f"inputs shape {u.shape}, expected ({T}, {U}) (num_timesteps, input_dim)")
        if not bool(jnp.all(jnp.isfinite(u))):
            raise ValueError("inputs contain NaN or inf")

        k_w, k_0, k_x, k_y = jax.random.split(key, 4)
        w = None if posterior_mean else self.sample_drift_weights(params, k_w, 1)[0]
        f = self.drift_function(params, w)
        if x0 is None:
            x0 = params.initial_mean + jnp.linalg.cholesky(params.initial_cov) @ jax.random.normal(
                k_0, (self.latent_dim,), params.initial_mean.dtype)
        drive = (u, params.input_matrix) if U > 0 else (None, None)
        x = euler_maruyama(k_x, f, jnp.asarray(x0, params.initial_mean.dtype), num_timesteps, self.dt, self.diffusion,
                           *drive)
        mean = self.emission_mean(params, x)
        if self.emissions == "gaussian":
            y = mean + jnp.sqrt(params.emissions.covs) * jax.random.normal(k_y, mean.shape, mean.dtype)
        else:
            y = jax.random.poisson(k_y, mean).astype(mean.dtype)
        return x, y

    def emission_mean(self, params, x):
        """E[y | x] per grid step: C x + d (gaussian) or the rate g(C x + d) * bin_size (counts). x (T, D)."""
        eta = x @ params.emissions.weights.T + params.emissions.biases
        if self.emissions == "gaussian":
            return eta
        return (jnp.exp(eta) if self.link == "exp" else jax.nn.softplus(eta)) * self.bin_size


@dataclass(frozen=True)
class GPSDE(_GPSDEMethods):
    """GP-SDE with a named kernel ('rbf' with num_inducing points per dimension on a grid, 'linear', 'ssl')
    or a kernel object from ``ssmneuro.models.gp.kernels``.

    Fields: latent_dim, kernel, emissions ('point_process' | 'poisson' | 'gaussian'), link ('softplus' | 'exp'),
    dt (grid step, s), diffusion (sigma^2 of the SDE noise, fixed: it sets the latent scale),
    count_bin_size (Poisson bin width; default dt), num_inducing (per dimension), quadrature_points (per
    dimension, for the drift), emission_quadrature_points (softplus link), init_latent_scale (std of the PCA
    initial latents), init_smoothing (s), parallel (associative-scan block-tridiagonal solves: for GPUs),
    input_dim (U, number of known inputs u(t) driving the latents through B u(t); 0 = autonomous).
    """

    latent_dim: int
    kernel: object = "rbf"
    emissions: str = "point_process"
    link: str = "softplus"
    dt: float = 1e-3
    diffusion: float = 1.0
    count_bin_size: float | None = None
    num_inducing: int = 5
    quadrature_points: int = 3
    emission_quadrature_points: int = 6
    init_latent_scale: float = 1.0
    init_smoothing: float = 0.05
    parallel: bool = False
    input_dim: int = 0


@dataclass(frozen=True)
class GPSLDS(_GPSDEMethods):
    """GP-SLDS: a GP-SDE with the smoothly switching linear kernel of Hu et al. (2024), num_regimes linear
    regimes, softmax boundaries with temperature tau. Other fields as ``GPSDE`` (input_dim included)."""

    latent_dim: int
    num_regimes: int = 2
    emissions: str = "point_process"
    link: str = "softplus"
    dt: float = 1e-3
    diffusion: float = 1.0
    tau: float = 0.4
    count_bin_size: float | None = None
    quadrature_points: int = 3
    emission_quadrature_points: int = 6
    init_latent_scale: float = 1.0
    init_smoothing: float = 0.05
    parallel: bool = False
    num_inducing: int = 0
    input_dim: int = 0

    @property
    def kernel(self):
        return SSL(num_regimes=self.num_regimes, tau=self.tau)

    def regime_dynamics(self, params, weights=None):
        """The linear system of each regime, f(x) = sum_j pi_j(x) (A_j x + b_j): (A (J, D, D), b (J, D)).

        From a(x) = concat_j pi_j(x) [sqrt(w)(x - c_j), s0]:  A_j[d] = sqrt(w) * v_{j, :D, d},
        b_j = s0 v_{j, D, d} - A_j c_j.  weights: one sample (M, D) of v, or None for the posterior mean.
        """
        w = params.drift.means if weights is None else weights
        J, D = self.num_regimes, self.latent_dim
        k = params.kernel
        v = w.reshape(J, D + 1, D)
        A = jnp.swapaxes(v[:, :D, :] * jnp.exp(0.5 * k.log_weights)[None, :, None], 1, 2)  # (J, D_out, D_in)
        b = jnp.exp(0.5 * k.log_bias) * v[:, D, :] - jnp.einsum("jde,je->jd", A, k.centers)
        return A, b
