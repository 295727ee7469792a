"""Initialisation that works on real data.

1. Emission subspace by PCA of (transformed) data: Gaussian y; Poisson the link-inverse of smoothed rates;
   Bernoulli the logit of smoothed probabilities; calcium the link-inverse of smoothed deconvolved
   innovations y_t - 0.9 y_{t-1}. The PCA projections are the first latents.
2. An autoregressive HMM on those latents (EM with the core's HMM smoother; k-means on the mean step over the
   next few frames, (x_{t+w} - x_t) / w, for the first states), ``num_restarts`` seeded restarts, the best
   log-likelihood kept: it gives q(z), per-state dynamics and the transitions (recurrent weights by L-BFGS on
   its posteriors).
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ssmneuro.models.components import dynamics as dyn
from ssmneuro.models.components import transitions as trans
from ssmneuro.models.components.emissions import family
from ssmneuro.models.fitting import mstep
from ssmneuro.models.fitting.jit import fitting_jit
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
# Everything after PCA runs in ONE jit-compiled program (k-means, the AR-HMM EM of every restart, the
# transition fit): a first fit then pays one compilation instead of hundreds of small eager ones.

KMEANS_WINDOW = 4  # steps averaged in the k-means features of the AR-HMM start

def _kmeans_plus_plus(key, X, weights, K):
    """(K, D) k-means++ centres: the first drawn by weight, each next one with probability ∝ weight x squared
    distance to the nearest centre so far (Arthur & Vassilvitskii 2007)."""
    keys = jax.random.split(key, K)
    draw = lambda k, w: jnp.argmax(jnp.log(w) + jax.random.gumbel(k, w.shape, w.dtype))  # index with prob. ∝ w
    centers = X[draw(keys[0], weights)][None]
    for k in range(1, K):
        d2 = jnp.min(((X[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        centers = jnp.concatenate([centers, X[draw(keys[k], d2 * weights)][None]])
    return centers


def _kmeans(key, X, weights, K, iters=20, num_starts=4):
    """Weighted k-means (points with weight 0 are ignored), the lowest weighted inertia of ``num_starts``
    k-means++ starts -> labels (n,)."""

    def lloyd(c, _):
        lab = jnp.argmin(((X[:, None, :] - c[None]) ** 2).sum(-1), axis=1)
        one = jax.nn.one_hot(lab, K, dtype=X.dtype) * weights[:, None]
        cnt = one.sum(0)
        new = (one.T @ X) / jnp.maximum(cnt, 1e-12)[:, None]
        return jnp.where(cnt[:, None] > 0, new, c), None

    def run(k):
        c, _ = jax.lax.scan(lloyd, _kmeans_plus_plus(k, X, weights, K), None, length=iters)
        d2 = ((X[:, None, :] - c[None]) ** 2).sum(-1)
        return jnp.argmin(d2, axis=1), jnp.sum(weights * jnp.min(d2, axis=1))

    labels, inertia = jax.vmap(run)(jax.random.split(key, num_starts))
    return labels[jnp.argmin(inertia)]


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


def _arhmm_iteration(model, dynamics, log_pi, log_P, xs, batches):
    """One EM iteration of the AR-HMM on the padded latents -> (dynamics, log_pi, log_P, posts, log-lik.)."""
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


def _labels_to_posts(labels, xs, K):
    """Hard posteriors from per-bucket labels (B, T) (zero latent covariances)."""
    posts = []
    for lab, x in zip(labels, xs):
        probs = jax.nn.one_hot(lab, K, dtype=x.dtype)
        pairs = probs[:, :-1, :, None] * probs[:, 1:, None, :]
        B, T, D = x.shape
        zeros = jnp.zeros((B, T, D, D), x.dtype)
        posts.append(Posterior(probs, x, zeros, zeros[:, 1:], pairs))
    return tuple(posts)


def _windowed_steps(x, valid, window):
    """(B, T-1, D) mean step over the next ``window`` steps, (x_{t+k} - x_t) / k with k = min(window, T_i - 1 - t)
    (shorter at the end of each trial; garbage, with weight 0, on padded steps)."""
    lengths = jnp.sum(valid, 1).astype(jnp.int32)                                    # (B,)
    t = jnp.arange(x.shape[1] - 1)
    ahead = jnp.clip(jnp.minimum(t[None] + window, lengths[:, None] - 1), t[None] + 1)  # (B, T-1)
    x_ahead = jnp.take_along_axis(x, ahead[..., None], axis=1)
    return (x_ahead - x[:, :-1]) / (ahead - t[None])[..., None].astype(x.dtype)


def _kmeans_labels(key, xs, batches, K, window=KMEANS_WINDOW):
    """k-means on the standardised mean step over the next ``window`` steps, (x_{t+w} - x_t) / w, of every
    valid step -> per-bucket labels (B, T) (the label of t + 1 comes from the steps after x_t; t = 0 repeats
    the first).

    Steps, not positions: on recordings the first principal component is often a slow drift (correlation
    0.88 and 0.97 with time on two of the C. elegans worms), and clustering positions splits a recording
    into early and late segments instead of dynamical regimes. Several steps, not one: a single step of
    calcium-imaging latents is mostly noise; on the five C. elegans worms, 6 seeds each, single fits scored a
    mean balanced accuracy of 0.742 with one step and 0.795 with four (docs: troubleshooting)."""
    feats = [_windowed_steps(x, b.valid, window) for x, b in zip(xs, batches)]
    weights = [b.valid[:, 1:] for b in batches]
    F = jnp.concatenate([f.reshape(-1, f.shape[-1]) for f in feats])
    W = jnp.concatenate([w.reshape(-1) for w in weights])
    F = jnp.where(W[:, None] > 0, F, 0.0)
    mean = (W @ F) / jnp.sum(W)
    std = jnp.sqrt((W @ (F - mean) ** 2) / jnp.sum(W))
    lab_all = _kmeans(key, (F - mean) / (std + 1e-8), W, K)
    labels, start = [], 0
    for w in weights:
        lab = lab_all[start:start + w.size].reshape(w.shape)
        labels.append(jnp.concatenate([lab[:, :1], lab], axis=1))
        start += w.size
    return labels


def _arhmm_restart(model, key, xs, batches, num_iters, kmeans_window):
    """k-means start, then ``num_iters`` EM iterations -> (dynamics, log_pi, log_P, posts, log-lik.)."""
    K, D, U = model.num_states, model.latent_dim, model.input_dim
    dtype = xs[0].dtype
    if K > 1:
        labels = _kmeans_labels(key, xs, batches, K, kmeans_window)
    else:
        labels = [jnp.zeros(x.shape[:2], jnp.int32) for x in xs]
    posts = _labels_to_posts(labels, xs, K)
    start = DynamicsParams(jnp.tile(0.95 * jnp.eye(D, dtype=dtype), (K, 1, 1)), jnp.zeros((K, D, U), dtype),
                               jnp.zeros((K, D), dtype), jnp.tile(0.01 * jnp.eye(D, dtype=dtype), (K, 1, 1)))
    dynamics = mstep.update_dynamics(start, mstep.sum_stats(mstep.dynamics_stats, posts, batches),
                                     diagonal=model.dynamics_cov == "diagonal")
    log_pi = jnp.full((K,), -jnp.log(K), dtype)
    log_P = trans.init_transitions("standard", key, K, D, 0, dtype=dtype).log_transition_matrix

    def body(carry, _):
        return _arhmm_iteration(model, *carry[:3], xs, batches), None

    out, _ = jax.lax.scan(body, (dynamics, log_pi, log_P, posts, jnp.zeros((), dtype)), None, length=num_iters)
    return out


@partial(fitting_jit, static_argnums=(0, 4, 5, 6))
def _initialize_dynamics(model, key, xs, batches, num_restarts, arhmm_iters, kmeans_window):
    """AR-HMM (best log-likelihood of ``num_restarts``) and, for recurrent transitions, their weights fitted
    by L-BFGS on its posteriors -> (dynamics, log_pi, transitions, posts, AR-HMM log-likelihood)."""
    K, D, U = model.num_states, model.latent_dim, model.input_dim
    dtype = xs[0].dtype
    k_ar, k_tr = jax.random.split(key)
    runs = jax.vmap(lambda k: _arhmm_restart(model, k, xs, batches, arhmm_iters, kmeans_window))(
        jax.random.split(k_ar, num_restarts))
    lls = runs[-1]
    best = jnp.argmax(jnp.where(jnp.isfinite(lls), lls, -jnp.inf))
    dynamics, log_pi, log_P, posts, ll = jax.tree.map(lambda a: a[best], runs)
    transitions = trans.init_transitions(model.transitions, k_tr, K, D, U, dtype=dtype)
    if model.transitions in trans.CLOSED_FORM or model.transitions in ("recurrent", "inputdriven"):
        transitions = transitions._replace(log_transition_matrix=log_P)
    if model.transitions not in trans.CLOSED_FORM:
        transitions = mstep.update_transitions(model, transitions, posts, batches, num_steps=100)
    return dynamics, log_pi, transitions, posts, ll


def initialize(model, key, ys, us, ms, batches, groups, num_restarts=3, arhmm_iters=25, kmeans_window=None):
    """-> (SLDSParams, tuple of batched Posterior for the first Laplace-EM E-step). kmeans_window: steps averaged
    in the k-means features of the AR-HMM start (``_kmeans_labels``; None: KMEANS_WINDOW)."""
    kmeans_window = KMEANS_WINDOW if kmeans_window is None else kmeans_window
    if not isinstance(kmeans_window, (int, np.integer)) or kmeans_window < 1:
        raise ValueError(f"kmeans_window must be a positive integer, got {kmeans_window!r}")
    dtype = batches[0].emissions.dtype
    K, D = model.num_states, model.latent_dim
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
    dynamics, log_pi, transitions, posts, ll = _initialize_dynamics(model, key, tuple(xs), batches,
                                                                    num_restarts, arhmm_iters, int(kmeans_window))
    if not np.isfinite(float(ll)):
        raise ValueError("initialisation failed: the AR-HMM log-likelihood was not finite for any restart; "
                         "check the data for constant or extreme columns")
    # initial state from the first latents
    x0 = np.stack([l[0] for l in lat])
    var0 = np.var(np.concatenate(lat), 0) + 1e-2
    initial = InitialParams(jnp.exp(log_pi), jnp.asarray(np.tile(x0.mean(0), (K, 1)), dtype),
                            jnp.asarray(np.tile(np.diag(var0), (K, 1, 1)), dtype))
    return SLDSParams(initial, transitions, dynamics, emissions), posts
