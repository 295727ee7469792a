"""LDS, SLDS and recurrent SLDS: small frozen configs over one shared implementation.

Generative model (K states, D latents, N emissions, U inputs):
    z_0 ~ Cat(pi),  x_0 | z_0=k ~ N(mu_k, Sigma_k)
    z_{t+1} | z_t, x_t, u_t ~ transitions (components/transitions.py)
    x_{t+1} | z_{t+1}=k, x_t ~ N(A_k x_t + V_k u_t + b_k, Q_k)
    y_t | x_t ~ emissions (components/emissions/)
Fitting: exact EM for a Gaussian LDS (K = 1, gaussian emissions); Laplace-EM otherwise.
"""

from dataclasses import dataclass, field, fields, replace
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.models.components import dynamics as dyn
from ssmneuro.models.components import transitions as trans
from ssmneuro.models.components.emissions import FAMILIES, family
from ssmneuro.models.fitting import data as fdata
from ssmneuro.models.fitting.jit import fitting_jit
from ssmneuro.models.params import FitResult, InitialParams, SLDSParams


class _SwitchingModel:
    """Methods shared by LDS, SLDS and RSLDS (all configuration lives in dataclass fields)."""

    # ------------------------------------------------------------ configuration checks
    def __post_init__(self):
        for name in ("num_states", "latent_dim", "emission_dim"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if not isinstance(self.input_dim, (int, np.integer)) or self.input_dim < 0:
            raise ValueError(f"input_dim must be a non-negative integer, got {self.input_dim!r}")
        family(self.emissions)
        trans.check_family(self.transitions)
        if self.dynamics_cov not in ("full", "diagonal"):
            raise ValueError(f"dynamics_cov={self.dynamics_cov!r}: choose 'full' or 'diagonal'")
        if self.emission_cov not in ("full", "diagonal"):
            raise ValueError(f"emission_cov={self.emission_cov!r}: choose 'full' or 'diagonal'")
        if self.link not in ("exp", "softplus"):
            raise ValueError(f"link={self.link!r}: choose 'exp' or 'softplus'")
        if not self.bin_size > 0:
            raise ValueError(f"bin_size must be positive, got {self.bin_size}")

    @property
    def uses_exact_em(self) -> bool:
        return self.num_states == 1 and self.emissions == "gaussian"

    def config(self) -> dict:
        """The constructor arguments (for save/load)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    # ------------------------------------------------------------ parameters
    def random_params(self, key, dtype=jnp.float32) -> SLDSParams:
        """Random parameters of the right shapes (for sampling demos and as a template)."""
        K, D, U = self.num_states, self.latent_dim, self.input_dim
        k1, k2, k3 = jax.random.split(key, 3)
        initial = InitialParams(jnp.full((K,), 1.0 / K, dtype), jnp.zeros((K, D), dtype),
                                jnp.tile(jnp.eye(D, dtype=dtype), (K, 1, 1)))
        return SLDSParams(initial, trans.init_transitions(self.transitions, k1, K, D, U, dtype=dtype),
                          dyn.init_dynamics(k2, K, D, U, dtype), family(self.emissions).init(k3, self, dtype))

    def _prepare(self, data, inputs, masks, max_buckets=4, length=None):
        ys, us, ms = fdata.validate(self, data, inputs, masks)
        dtype = jnp.zeros(()).dtype
        batches, groups = fdata.make_batches(self, ys, us, ms, dtype, max_buckets, length)
        return ys, us, ms, batches, groups

    def initialize(self, key, data, inputs=None, masks=None, num_restarts=3, kmeans_window=None):
        """PCA / link-space PCA for the emissions, then an AR-HMM (best of num_restarts) -> params. The AR-HMM
        starts from k-means on the mean step over the next ``kmeans_window`` steps (None: 4; docs: troubleshooting);
        ``fit(data, params=model.initialize(key, data, kmeans_window=w))`` fits from another window."""
        from ssmneuro.models.fitting.initialize import initialize

        ys, us, ms, batches, groups = self._prepare(data, inputs, masks)
        return initialize(self, key, ys, us, ms, batches, groups, num_restarts, kmeans_window=kmeans_window)[0]

    # ------------------------------------------------------------ fitting
    def _iteration(self, max_newton, parallel):
        if self.uses_exact_em:
            from ssmneuro.models.fitting.em import exact_em_iteration

            return partial(exact_em_iteration, self, parallel=parallel)
        from ssmneuro.models.fitting.laplace_em import laplace_em_iteration

        return lambda p, b, q: laplace_em_iteration(self, p, b, q, max_newton=max_newton, parallel=parallel)

    def fit(self, data, key=None, inputs=None, masks=None, num_iters=100, verbose=True, params=None,
            num_restarts=3, max_newton=10, parallel=False, max_drop=0.01, num_fits=1, tol=None,
            screen_iters=0, pad_to=None) -> FitResult:
        """Fit by exact EM (Gaussian LDS) or Laplace-EM.

        data: (T, N) array or list of (T_i, N); inputs: same layout with U columns; masks: bool, True =
        observed. params: start here instead of the default initialisation (then key may be None).
        num_restarts: AR-HMM restarts inside the default initialisation (the best AR-HMM likelihood starts the
        fit); many restarts make every seed start alike, which costs the diversity num_fits needs (docs:
        troubleshooting).
        num_fits: run this many fits from the seeds ``jax.random.split(key, num_fits)`` side by side (one
        vmapped program) and keep the one with the highest ELBO; fit f is the same as
        ``fit(..., key=jax.random.split(key, num_fits)[f])``. On a 2-core CPU this costs about as much as the
        fits one after another (measured on C. elegans); the batching is meant for accelerators.
        tol: stop before num_iters once the best ELBO gained less than tol * (1 + |ELBO|) over the last 5
        iterations (all fits, with num_fits > 1); None runs every iteration. 1e-5 is a sensible choice.
        screen_iters: with num_fits > 1, screen instead: the fits run one after another (one compiled
        program) for only ``screen_iters`` iterations each, and the seed with the highest ELBO is then fitted
        for num_iters (the same fit as ``fit(key=jax.random.split(key, num_fits)[kept_fit])``); all_elbos
        then holds the screening traces. Far cheaper than full fits when the early ELBO ranks the seeds.
        pad_to: (num_timesteps, num_neurons): fit on the data padded to this shape (every trial in one bucket
        of num_timesteps steps, masked neurons appended), the same fit (padded steps and neurons add nothing),
        so that recordings of different sizes share one compiled program: fit each with the largest shape,
        and only the first pays the compilation (docs: performance). Not with params= or full emission_cov.
        -> FitResult(params (best ELBO), posterior (list per trial), elbos (num_iters,), rejected,
        best_iteration, all_elbos (num_fits, num_iters), kept_fit)
        """
        if not isinstance(num_iters, (int, np.integer)) or num_iters < 1:
            raise ValueError(f"num_iters must be a positive integer, got {num_iters!r}")
        if not isinstance(num_fits, (int, np.integer)) or num_fits < 1:
            raise ValueError(f"num_fits must be a positive integer, got {num_fits!r}")
        if tol is not None and not (isinstance(tol, (int, float, np.floating)) and tol > 0):
            raise ValueError(f"tol must be a positive number or None, got {tol!r}")
        if num_fits > 1 and (params is not None or key is None):
            raise ValueError("num_fits > 1 needs key= (the fits differ only in their seeded initialisation) "
                             "and no params=")
        if not isinstance(screen_iters, (int, np.integer)) or not 0 <= screen_iters <= num_iters:
            raise ValueError(f"screen_iters must be an integer in [0, num_iters], got {screen_iters!r}")
        if pad_to is not None:
            if params is not None:
                raise ValueError("pad_to does not take params=: fit from the default initialisation")
            ys, us, ms = fdata.validate(self, data, inputs, masks)
            length, neurons = fdata.check_pad_to(pad_to, ys, self)
            padded = replace(self, emission_dim=neurons)
            data, masks = fdata.pad_neurons(ys, ms, neurons)
            result = padded._fit(data, key, us, masks, num_iters, verbose, None, num_restarts, max_newton,
                                 parallel, max_drop, num_fits, tol, screen_iters, length)
            return result._replace(params=fdata.unpad_emissions(result.params, self.emission_dim))
        return self._fit(data, key, inputs, masks, num_iters, verbose, params, num_restarts, max_newton, parallel,
                         max_drop, num_fits, tol, screen_iters)

    def _fit(self, data, key, inputs, masks, num_iters, verbose, params, num_restarts, max_newton, parallel,
             max_drop, num_fits, tol, screen_iters, length=None) -> FitResult:
        ys, us, ms, batches, groups = self._prepare(data, inputs, masks, length=length)
        one = lambda k, iters, p=None, tol=tol: self._fit_one(k, p, ys, us, ms, batches, groups, iters, verbose,
                                                              num_restarts, max_newton, parallel, max_drop, tol)
        if num_fits > 1 and screen_iters > 0:
            keys = jax.random.split(key, num_fits)
            traces = [one(k, screen_iters, tol=None).elbos for k in keys]  # shorter if a start failed
            screens = np.stack([np.pad(e, (0, screen_iters - len(e)), constant_values=np.nan) for e in traces])
            kept = int(np.argmax(np.max(np.where(np.isfinite(screens), screens, -np.inf), axis=1)))
            return one(keys[kept], num_iters)._replace(all_elbos=screens, kept_fit=kept)
        if num_fits > 1:
            return self._fit_many(key, ys, us, ms, batches, groups, num_fits, num_iters, verbose,
                                  num_restarts, max_newton, parallel, max_drop, tol)
        if params is None and key is None:
            raise ValueError("pass key=jax.random.key(seed) (used by the initialisation)")
        return one(key, num_iters, params)

    def _fit_one(self, key, params, ys, us, ms, batches, groups, num_iters, verbose, num_restarts, max_newton,
                 parallel, max_drop, tol) -> FitResult:
        """One fit from ``params`` or, if None, the default initialisation seeded by ``key``."""
        from ssmneuro.models.fitting import loop
        from ssmneuro.models.fitting.initialize import initialize

        if params is None:
            if key is None:
                raise ValueError("pass key=jax.random.key(seed) (used by the initialisation)")
            params, qs = initialize(self, key, ys, us, ms, batches, groups, num_restarts)
        else:
            qs = self._flat_posteriors(params, batches)
        params = self._cast(params, batches)
        step = self._iteration(max_newton, parallel)
        best, posts, elbos, rejected, best_it = loop.run(lambda p, q: step(p, batches, q), params, qs,
                                                         num_iters, verbose, max_drop,
                                                         desc="EM" if self.uses_exact_em else "Laplace-EM", tol=tol)
        if best_it >= 0:
            posts = tuple(posts)
        lengths = [y.shape[0] for y in ys]
        posterior = fdata.unbatch_posteriors(posts, groups, lengths, len(ys))
        return FitResult(best, posterior, elbos, rejected, best_it, elbos[None], 0)

    def _fit_many(self, key, ys, us, ms, batches, groups, num_fits, num_iters, verbose, num_restarts,
                  max_newton, parallel, max_drop, tol=None) -> FitResult:
        """``num_fits`` seeded fits advanced together by one vmapped iteration; the best ELBO kept."""
        from ssmneuro.models.fitting import loop
        from ssmneuro.models.fitting.initialize import initialize

        starts = [initialize(self, k, ys, us, ms, batches, groups, num_restarts)
                  for k in jax.random.split(key, num_fits)]
        stack = lambda trees: jax.tree.map(lambda *a: jnp.stack(a), *trees)
        params = self._cast(stack([p for p, _ in starts]), batches)
        qs = stack([q for _, q in starts])
        if self.uses_exact_em:
            from ssmneuro.models.fitting.em import exact_em_iterations as iterations

            step = lambda p, q: iterations(self, p, batches, parallel=parallel)
        else:
            from ssmneuro.models.fitting.laplace_em import laplace_em_iterations as iterations

            step = lambda p, q: iterations(self, p, batches, q, max_newton=max_newton, parallel=parallel)
        desc = f"{'EM' if self.uses_exact_em else 'Laplace-EM'} x{num_fits}"
        best, posts, elbos, rejected, best_its = loop.run_many(step, params, qs, num_iters, verbose, max_drop, desc, tol)
        finals = np.array([elbos[i, f] if i >= 0 else -np.inf for f, i in enumerate(best_its)])
        kept = int(np.argmax(finals))
        pick = lambda tree: jax.tree.map(lambda a: a[kept], tree)
        lengths = [y.shape[0] for y in ys]
        posterior = fdata.unbatch_posteriors(tuple(pick(posts)), groups, lengths, len(ys))
        return FitResult(pick(best), posterior, elbos[:, kept], rejected[kept], int(best_its[kept]), elbos.T, kept)

    def _cast(self, params, batches):
        dtype = batches[0].emissions.dtype
        return jax.tree.map(lambda a: jnp.asarray(a, dtype), params)

    def _flat_posteriors(self, params, batches):
        """A starting q for Laplace-EM without initialisation: x = 0, z uniform."""
        from ssmneuro.models.params import Posterior

        K, D = self.num_states, self.latent_dim
        out = []
        for b in batches:
            B, T = b.valid.shape
            dt = b.emissions.dtype
            out.append(Posterior(jnp.full((B, T, K), 1.0 / K, dt), jnp.zeros((B, T, D), dt),
                                 jnp.zeros((B, T, D, D), dt), jnp.zeros((B, T - 1, D, D), dt),
                                 jnp.full((B, T - 1, K, K), 1.0 / K**2, dt)))
        return tuple(out)

    # ------------------------------------------------------------ inference
    def posterior(self, params, data, inputs=None, masks=None, num_sweeps=5, max_newton=20, parallel=False):
        """-> list of per-trial Posterior (exact for a Gaussian LDS; Laplace q(z) q(x) otherwise)."""
        return self._posterior_and_elbo(params, data, inputs, masks, num_sweeps, max_newton, parallel)[0]

    def elbo(self, params, data, inputs=None, masks=None, num_sweeps=5):
        """Exact log p(y) for a Gaussian LDS; the Laplace-EM ELBO otherwise."""
        return float(self._posterior_and_elbo(params, data, inputs, masks, num_sweeps, 20, False)[1])

    def _posterior_and_elbo(self, params, data, inputs, masks, num_sweeps, max_newton, parallel):
        ys, us, ms, batches, groups = self._prepare(data, inputs, masks)
        params = self._cast(params, batches)
        if self.uses_exact_em:
            from ssmneuro.models.fitting.em import exact_posterior

            posts, elbo = exact_posterior(self, params, batches, parallel=parallel)
        else:
            from ssmneuro.models.fitting.laplace_em import laplace_posterior

            qs = self._start_posteriors(params, ys, batches, groups)
            posts, elbo = laplace_posterior(self, params, batches, qs, max_newton=max_newton,
                                            parallel=parallel, num_sweeps=num_sweeps)
        lengths = [y.shape[0] for y in ys]
        return fdata.unbatch_posteriors(posts, groups, lengths, len(ys)), elbo

    def _start_posteriors(self, params, ys, batches, groups):
        """Newton start for a posterior under given params: least-squares projection for linear-ish
        emissions, uniform q(z) refined by the alternating sweeps."""
        qs = self._flat_posteriors(params, batches)
        C = np.asarray(params.emissions.weights)
        d = np.asarray(params.emissions.biases)
        if self.emissions == "gaussian":
            out = []
            for q, b in zip(qs, batches):
                x = (np.asarray(b.emissions) - d) @ np.linalg.pinv(C).T
                x = np.where(np.asarray(b.masks).all(-1, keepdims=True), x, 0.0)
                out.append(q._replace(latent_means=jnp.asarray(x, q.latent_means.dtype)))
            qs = tuple(out)
        return qs

    def most_likely_states(self, params, data, inputs=None, masks=None):
        """-> list of (T,) int: argmax_k q(z_t = k) per trial."""
        return [np.argmax(np.asarray(p.discrete_probs), -1) for p in self.posterior(params, data, inputs, masks)]

    def predict_emissions(self, params, data, inputs=None, masks=None):
        """Posterior predictive mean E[y_t | data] at every entry (impute masked ones) -> list of (T, N).
        Gaussian: C E[x_t] + d (exact); others: E[y | x = E[x_t]]."""
        posts = self.posterior(params, data, inputs, masks)
        return [np.asarray(self.emission_mean(params, p.latent_means)) for p in posts]

    # ------------------------------------------------------------ generative pieces
    def transition_logits(self, params, x, u=None):
        """(K,) next-state logits from a continuous point x (D,) (and input u (U,)); for non-recurrent
        transitions the log stationary distribution."""
        x = jnp.asarray(x)
        u = jnp.zeros((self.input_dim,), x.dtype) if u is None else jnp.asarray(u)
        t = params.transitions
        if self.transitions in trans.CLOSED_FORM or self.transitions == "inputdriven":
            base = trans.log_stationary_distribution(t.log_transition_matrix)
            return base if self.transitions != "inputdriven" else base + t.input_weights @ u
        logits = t.recurrent_weights @ x + t.input_weights @ u + t.biases
        return logits

    def emission_mean(self, params, x):
        """(T, N) E[y | x] for x (T, D) (rate for counts; fluorescence mean for calcium)."""
        return family(self.emissions).mean(self, params.emissions, jnp.asarray(x))

    def sample(self, params, key, num_timesteps, inputs=None):
        """-> (z (T,) int, x (T, D), y (T, N)) drawn from the model."""
        T, U = int(num_timesteps), self.input_dim
        if T < 1:
            raise ValueError(f"num_timesteps must be positive, got {num_timesteps}")
        dtype = params.dynamics.weights.dtype
        u = jnp.zeros((T, U), dtype) if inputs is None else jnp.asarray(inputs, dtype)
        if u.shape != (T, U):
            raise ValueError(f"inputs shape {u.shape}, expected ({T}, {U})")
        return _sample(self, params, key, u)


@partial(fitting_jit, static_argnums=(0,))
def _sample(model, params, key, u):
    k0, kx0, kscan, ky = jax.random.split(key, 4)
    init, dp = params.initial, params.dynamics
    z0 = jax.random.categorical(k0, jnp.log(init.probs))
    x0 = jax.random.multivariate_normal(kx0, init.means[z0], init.covs[z0])

    def step(carry, inp):
        z, x = carry
        u_t, k = inp
        kz, kx = jax.random.split(k)
        log_P = trans.log_transition_matrix_at(model.transitions, params.transitions, x, u_t)
        z_new = jax.random.categorical(kz, log_P[z])
        mean = dp.weights[z_new] @ x + dp.input_weights[z_new] @ u_t + dp.biases[z_new]
        x_new = jax.random.multivariate_normal(kx, mean, dp.covs[z_new])
        return (z_new, x_new), (z_new, x_new)

    T = u.shape[0]
    _, (zs, xs) = jax.lax.scan(step, (z0, x0), (u[:-1], jax.random.split(kscan, T - 1)))
    z = jnp.concatenate([z0[None], zs])
    x = jnp.concatenate([x0[None], xs])
    y = family(model.emissions).sample(model, params.emissions, ky, x)
    return z, x, y


_COMMON = dict(input_dim=0, dynamics_cov="full", emission_cov="diagonal", link="softplus", bin_size=1.0,
               stickiness=0.0)


@dataclass(frozen=True)
class SLDS(_SwitchingModel):
    """Switching LDS with standard or sticky transitions (``stickiness``: extra Dirichlet self-counts)."""

    num_states: int
    latent_dim: int
    emission_dim: int
    emissions: str = "gaussian"
    transitions: str = "standard"
    input_dim: int = 0
    dynamics_cov: str = "full"
    emission_cov: str = "diagonal"
    link: str = "softplus"
    bin_size: float = 1.0
    stickiness: float = 0.0


@dataclass(frozen=True)
class RSLDS(SLDS):
    """Recurrent SLDS: transitions 'recurrent' (default) or 'recurrent_only' (or any SLDS family)."""

    transitions: str = "recurrent"


@dataclass(frozen=True)
class LDS(_SwitchingModel):
    """Linear dynamical system (one discrete state). Gaussian emissions: exact EM; others: Laplace-EM."""

    latent_dim: int
    emission_dim: int
    emissions: str = "gaussian"
    input_dim: int = 0
    dynamics_cov: str = "full"
    emission_cov: str = "diagonal"
    link: str = "softplus"
    bin_size: float = 1.0
    num_states: int = field(default=1, init=False)
    transitions: str = field(default="standard", init=False)
    stickiness: float = field(default=0.0, init=False)


__all__ = ["LDS", "SLDS", "RSLDS", "FAMILIES"]
