"""Initialisation that works on real data.

1. Emission subspace by PCA of (transformed) data: Gaussian y; Poisson the link-inverse of smoothed rates;
   Bernoulli the logit of smoothed probabilities; calcium the link-inverse of smoothed deconvolved
   innovations y_t - 0.9 y_{t-1}. The PCA projections are the first latents.
2. An autoregressive HMM on those latents (EM with the core's HMM smoother; k-means on (x_t, x_{t+1} - x_t)
   for the first states), ``num_restarts`` seeded restarts, the best log-likelihood kept: it gives q(z),
   per-state dynamics and the transitions (recurrent weights by L-BFGS on its posteriors).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.models.components import dynamics as dyn
from ssmneuro.models.components import transitions as trans
from ssmneuro.models.components.emissions import family
from ssmneuro.models.fitting import mstep
from ssmneuro.models.params import DynamicsParams, InitialParams, Posterior, SLDSParams


def _smooth(y, width=2.0):
    """Gaussian smoothing along time (numpy), sigma = width steps."""
    if width <= 0:
        return y
    r = int(3 * width)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / width) ** 2)
    k /= k.sum()
    pad = np.pad(y, ((r, r), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, n], k, mode="valid") for n in range(y.shape[1])], 1)


def _fill_masked(ys, ms):
    """Masked entries replaced by the observed column mean."""
    Y, M = np.concatenate(ys), np.concatenate(ms)
    col = np.where(M, Y, 0).sum(0) / np.maximum(M.sum(0), 1)
    return [np.where(m, y, col) for y, m in zip(ys, ms)]


def _softplus_inv(v):
    return np.log(np.expm1(np.maximum(v, 1e-4)))


def link_space(model, ys):
    """The transformed data PCA is run on (list of (T_i, N))."""
    e = model.emissions
    if e == "gaussian":
        return ys
    if e == "poisson":
        r = [np.maximum(_smooth(y), 0.05) / model.bin_size for y in ys]
        return [np.log(v) if model.link == "exp" else _softplus_inv(v) for v in r]
    if e == "bernoulli":
        p = [np.clip(_smooth(y), 0.05, 0.95) for y in ys]
        return [np.log(v) - np.log1p(-v) for v in p]
    s = [np.concatenate([y[:1] * 0.1, y[1:] - 0.9 * y[:-1]]) for y in ys]  # calcium innovations
    return [_softplus_inv(np.maximum(_smooth(v), 0.05)) for v in s]


def pca(ys, latent_dim):
    """-> (C (N, D), d (N,), latents list of (T_i, D), residual variances (N,)); latents have unit variance."""
    Y = np.concatenate(ys)
    d = Y.mean(0)
    U, s, Vt = np.linalg.svd(Y - d, full_matrices=False)
    D = latent_dim
    scale = s[:D] / np.sqrt(Y.shape[0])
    C = Vt[:D].T * scale
    xs = [(y - d) @ Vt[:D].T / scale for y in ys]
    resid = (Y - d) - np.concatenate(xs) @ C.T
    return C, d, xs, resid.var(0)


def initial_emissions(model, ys, C, d, resid_var, dtype):
    em = family(model.emissions)
    if model.emissions == "gaussian":
        r = np.maximum(resid_var, 1e-4 * np.concatenate(ys).var(0) + 1e-6)
        covs = r if model.emission_cov == "diagonal" else np.diag(r)
        return em.Params(jnp.asarray(C, dtype), jnp.asarray(d, dtype), jnp.asarray(covs, dtype))
    if model.emissions == "calcium":
        s = np.concatenate([y[1:] - 0.9 * y[:-1] for y in ys])
        noise = np.maximum(s.var(0) * 0.5, 1e-3)
        N = model.emission_dim
        return em.Params(jnp.asarray(C, dtype), jnp.asarray(d, dtype), jnp.full((N,), 0.9, dtype),
                         jnp.asarray(noise, dtype))
    return em.Params(jnp.asarray(C, dtype), jnp.asarray(d, dtype))


# ------------------------------------------------------------------ autoregressive HMM

@partial(jax.jit, static_argnums=(2, 3))
def _kmeans(key, X, K, iters=20):
    """Plain k-means (jax) -> labels (T,)."""
    centers = X[jax.random.choice(key, X.shape[0], (K,), replace=False)]

    def step(c, _):
        lab = jnp.argmin(((X[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        one = jax.nn.one_hot(lab, K, dtype=X.dtype)
        cnt = one.sum(0)
        new = (one.T @ X) / jnp.maximum(cnt, 1.0)[:, None]
        return jnp.where(cnt[:, None] > 0, new, c), None

    c, _ = jax.lax.scan(step, centers, None, length=iters)
    return jnp.argmin(((X[:, None, :] - c[None]) ** 2).sum(-1), axis=1)


def _arhmm_e_step(model, dynamics, log_pi, log_P, x, step):
    ll = dyn.log_likelihood_matrix(dynamics, x, step.inputs)
    ll = jnp.concatenate([jnp.zeros_like(ll[:1]), ll * step.valid[1:, None]])
    T, D = x.shape
    zeros = jnp.zeros((T, D, D), x.dtype)
    if log_P.shape[0] == 1:  # one state: a linear regression, no chain to smooth
        ones = jnp.ones((T, 1), x.dtype)
        return Posterior(ones, x, zeros, zeros[1:], jnp.ones((T - 1, 1, 1), x.dtype)), jnp.sum(ll)
    from ssmneuro.inference.hmm import hmm_smoother

    log_Ps = jnp.broadcast_to(log_P, (T - 1,) + log_P.shape)
    post = hmm_smoother(log_pi, log_Ps, ll)
    return Posterior(post.smoothed_probs, x, zeros, zeros[1:], post.expected_transitions), post.log_likelihood


@partial(jax.jit, static_argnums=(0,))
def _arhmm_iteration(model, dynamics, log_pi, log_P, xs, batches):
    posts, total = [], 0.0
    for x, b in zip(xs, batches):
        p, ll = jax.vmap(lambda xx, s: _arhmm_e_step(model, dynamics, log_pi, log_P, xx, s))(x, b)
        posts.append(p)
        total = total + ll.sum()
    posts = tuple(posts)
    dynamics = mstep.update_dynamics(dynamics, mstep.sum_stats(mstep.dynamics_stats, posts, batches),
                                     diagonal=model.dynamics_cov == "diagonal")
    counts = mstep.sum_stats(lambda p, s: jnp.sum(p.expected_transitions * s.valid[1:, None, None], 0),
                             posts, batches)
    K = log_P.shape[0]
    log_P = trans.closed_form_update(counts, 1.0 + 0.01 * counts.sum() / K).log_transition_matrix
    w0 = mstep.sum_stats(lambda p, s: p.discrete_probs[0], posts, batches)
    log_pi = jnp.log((w0 + 1.0) / jnp.sum(w0 + 1.0))
    return dynamics, log_pi, log_P, posts, total


def _labels_to_posts(labels, xs, batches, K):
    posts = []
    for lab, x, b in zip(labels, xs, batches):
        probs = jax.nn.one_hot(lab, K, dtype=x.dtype)
        pairs = probs[:, :-1, :, None] * probs[:, 1:, None, :]
        B, T, D = x.shape
        zeros = jnp.zeros((B, T, D, D), x.dtype)
        posts.append(Posterior(probs, x, zeros, zeros[:, 1:], pairs))
    return tuple(posts)


def fit_arhmm(model, key, xs, batches, num_iters=25, num_restarts=3):
    """AR-HMM on padded latents xs (tuple of (B, T, D)), best of ``num_restarts`` -> (dynamics, log_pi, log_P, posts)."""
    K, D = model.num_states, model.latent_dim
    dtype = xs[0].dtype
    feats, where = [], []
    for x, b in zip(xs, batches):
        f = jnp.concatenate([x[:, :-1], x[:, 1:] - x[:, :-1]], -1)
        v = b.valid[:, 1:] > 0
        feats.append(f[v])
        where.append(v)
    F = jnp.concatenate(feats)
    F = (F - F.mean(0)) / (F.std(0) + 1e-8)
    best = None
    for r, k in enumerate(jax.random.split(key, num_restarts)):
        kd, kk = jax.random.split(k)
        lab_all = _kmeans(kk, F, K) if K > 1 else jnp.zeros((F.shape[0],), jnp.int32)
        labels, start = [], 0
        for x, v in zip(xs, where):
            n = int(v.sum())
            lab = jnp.zeros(v.shape, jnp.int32).at[v].set(lab_all[start:start + n].astype(jnp.int32))
            labels.append(jnp.concatenate([lab[:, :1], lab], axis=1))
            start += n
        posts = _labels_to_posts(labels, xs, batches, K)
        dynamics = dyn.init_dynamics(kd, K, D, model.input_dim, dtype)
        dynamics = mstep.update_dynamics(dynamics, mstep.sum_stats(mstep.dynamics_stats, posts, batches),
                                         diagonal=model.dynamics_cov == "diagonal")
        log_pi = jnp.full((K,), -jnp.log(K), dtype)
        log_P = trans.init_transitions("standard", kd, K, D, 0, dtype=dtype).log_transition_matrix
        ll = -jnp.inf
        for _ in range(num_iters):
            dynamics, log_pi, log_P, posts, ll = _arhmm_iteration(model, dynamics, log_pi, log_P, xs, batches)
        if not np.isfinite(float(ll)):
            continue
        if best is None or float(ll) > best[-1]:
            best = (dynamics, log_pi, log_P, posts, float(ll))
    if best is None:
        raise ValueError("initialisation failed: the AR-HMM log-likelihood was not finite for any restart; "
                         "check the data for constant or extreme columns")
    return best[:4]


@partial(jax.jit, static_argnums=(0,))
def _fit_transitions(model, transitions, posts, batches):
    return mstep.update_transitions(model, transitions, posts, batches, num_steps=100)


def initialize(model, key, ys, us, ms, batches, groups, num_restarts=3, arhmm_iters=25):
    """-> (SLDSParams, tuple of batched Posterior for the first Laplace-EM E-step)."""
    from ssmneuro.models.fitting.data import make_batch

    dtype = batches[0].emissions.dtype
    K, D, U = model.num_states, model.latent_dim, model.input_dim
    filled = _fill_masked(ys, ms)
    C, d, lat, resid = pca(link_space(model, filled), D)
    emissions = initial_emissions(model, filled, C, d, resid, dtype)
    # latents in the same padded layout as the batches
    xs = []
    for idx, b in zip(groups, batches):
        Tm = b.valid.shape[1]
        X = np.zeros((len(idx), Tm, D))
        for j, i in enumerate(idx):
            X[j, : lat[i].shape[0]] = lat[i]
        xs.append(jnp.asarray(X, dtype))
    xs = tuple(xs)
    k_ar, k_tr = jax.random.split(key)
    dynamics, log_pi, log_P, posts = fit_arhmm(model, k_ar, xs, batches, arhmm_iters, num_restarts)
    # initial state from the first latents
    x0 = np.stack([l[0] for l in lat])
    var0 = np.var(np.concatenate(lat), 0) + 1e-2
    initial = InitialParams(jnp.exp(log_pi), jnp.tile(jnp.asarray(x0.mean(0), dtype), (K, 1)),
                            jnp.tile(jnp.diag(jnp.asarray(var0, dtype)), (K, 1, 1)))
    transitions = trans.init_transitions(model.transitions, k_tr, K, D, U, dtype=dtype)
    if model.transitions in trans.CLOSED_FORM or model.transitions in ("recurrent", "inputdriven"):
        transitions = transitions._replace(log_transition_matrix=log_P)
    if model.transitions not in trans.CLOSED_FORM:
        transitions = _fit_transitions(model, transitions, posts, batches)
    params = SLDSParams(initial, transitions, dynamics, emissions)
    return params, posts
