"""The outer fitting loop shared by exact EM and Laplace-EM: progress bar, NaN / drop rejection with
damping, best parameters kept."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

PATIENCE = 5  # iterations over which convergence (``tol``) is judged


def _blend(best, candidate, damping):
    return jax.tree.map(lambda b, c: b + damping * (c - b), best, candidate)


def _all_finite(tree):
    """On the host (numpy): no small XLA program to compile per leaf shape."""
    return all(bool(np.all(np.isfinite(np.asarray(a)))) for a in jax.tree.leaves(tree))


def converged(best_elbos, tol, patience=PATIENCE):
    """True when the best ELBO rose by less than tol * (1 + |best|) over the last ``patience`` iterations.
    best_elbos: running maxima, one per iteration so far (numpy array, last axis = iterations)."""
    if tol is None or best_elbos.shape[-1] <= patience:
        return False
    with np.errstate(invalid="ignore"):  # -inf - -inf: a fit with nothing accepted yet
        gain = best_elbos[..., -1] - best_elbos[..., -1 - patience]
    return bool(np.all(np.isfinite(best_elbos[..., -1]) & (gain < tol * (1.0 + np.abs(best_elbos[..., -1])))))


def run(iteration, params, qs, num_iters, verbose=True, max_drop=0.01, desc="EM", tol=None):
    """Iterate ``iteration(params, qs) -> (new_params, posts, elbo)``.

    An iteration whose ELBO is NaN, whose posteriors are not finite, or whose ELBO is below the best by
    more than ``max_drop * (1 + |best|)`` is rejected: the loop returns to the best parameters and takes
    a damped step (half as long each time) towards their M-step result. With ``tol``, the loop stops
    early once ``converged`` (the best ELBO gained less than tol (1 + |ELBO|) in PATIENCE iterations).
    -> (best_params, best_posts, elbos (iterations run,), rejected list, best_iteration)
    """
    elbos, rejected, best_history = [], [], []
    best = dict(elbo=-math.inf, params=params, next=None, posts=qs, it=-1)
    damping = 1.0
    bar = tqdm(range(num_iters), desc=desc, disable=not verbose, leave=False)
    for it in bar:
        new_params, posts, elbo = iteration(params, qs)
        elbo = float(elbo)
        elbos.append(elbo)
        bad = (not math.isfinite(elbo)) or not _all_finite(posts) or not _all_finite(new_params)
        drop = best["elbo"] - elbo > max_drop * (1.0 + abs(best["elbo"])) if math.isfinite(best["elbo"]) else False
        if bad or drop:
            rejected.append(it)
            damping *= 0.5
            if best["next"] is None:  # nothing good yet: the start itself failed
                break
            params, qs = _blend(best["params"], best["next"], damping), best["posts"]
        else:
            if elbo >= best["elbo"]:
                best.update(elbo=elbo, params=params, next=new_params, posts=posts, it=it)
                damping = 1.0
            params, qs = new_params, posts
        bar.set_postfix(elbo=f"{elbo:.4g}", rejected=len(rejected))
        best_history.append(best["elbo"])
        if converged(np.asarray(best_history), tol):
            break
    bar.close()
    return best["params"], best["posts"], np.asarray(elbos), rejected, best["it"]


def _finite_per_fit(tree, num_fits):
    """(F,) bool: every entry of fit f (leading axis) is finite."""
    ok = np.ones(num_fits, bool)
    for a in jax.tree.leaves(tree):
        ok &= np.all(np.isfinite(np.asarray(a).reshape(num_fits, -1)), axis=1)
    return ok


def _select(mask, a, b):
    """Per fit: a where mask (F,) else b."""
    return jax.tree.map(lambda x, y: jnp.where(mask.reshape((-1,) + (1,) * (x.ndim - 1)), x, y), a, b)


def run_many(iteration, params, qs, num_iters, verbose=True, max_drop=0.01, desc="EM", tol=None):
    """``run`` for F independent fits advanced together: ``iteration(params, qs) -> (new_params, posts,
    elbos (F,))`` on pytrees with a leading fit axis. Each fit keeps its own best parameters, rejections
    and damping exactly as ``run`` does; a fit whose very first iteration fails is frozen. With ``tol``
    the loop stops once every fit that is not frozen has converged.
    -> (best_params (F, ...), best_posts (F, ...), elbos (iterations run, F), rejected list per fit,
    best_iteration (F,))"""
    F = jax.tree.leaves(params)[0].shape[0]
    best_elbo = np.full(F, -np.inf)
    best_params, best_next, best_posts = params, params, qs
    best_it, damping = np.full(F, -1), np.ones(F)
    frozen = np.zeros(F, bool)
    elbos, rejected, best_history = [], [[] for _ in range(F)], []
    bar = tqdm(range(num_iters), desc=desc, disable=not verbose, leave=False)
    for it in bar:
        new_params, posts, elbo = iteration(params, qs)
        elbo = np.asarray(elbo, float)
        elbos.append(elbo)
        bad = ~np.isfinite(elbo) | ~_finite_per_fit(posts, F) | ~_finite_per_fit(new_params, F)
        seen = np.isfinite(best_elbo)
        drop = seen & (best_elbo - elbo > max_drop * (1.0 + np.abs(np.where(seen, best_elbo, 0.0))))
        reject = (bad | drop) & ~frozen
        frozen |= reject & ~seen  # nothing good yet: the start itself failed
        for f in np.flatnonzero(reject):
            rejected[f].append(it)
        improved = ~reject & ~frozen & (elbo >= best_elbo)
        best_elbo = np.where(improved, elbo, best_elbo)
        best_it = np.where(improved, it, best_it)
        m = jnp.asarray(improved)
        best_params, best_next = _select(m, params, best_params), _select(m, new_params, best_next)
        best_posts = _select(m, posts, best_posts)
        damping = np.where(reject, 0.5 * damping, np.where(improved, 1.0, damping))
        retry = jax.tree.map(lambda b, c: b + jnp.asarray(damping, b.dtype).reshape((-1,) + (1,) * (b.ndim - 1))
                             * (c - b), best_params, best_next)
        keep = jnp.asarray(frozen)
        params = _select(keep, params, _select(jnp.asarray(reject), retry, new_params))
        qs = _select(keep, qs, _select(jnp.asarray(reject), best_posts, posts))
        bar.set_postfix(best_elbo=f"{np.max(best_elbo):.4g}", rejected=sum(map(len, rejected)))
        best_history.append(best_elbo)
        if converged(np.stack(best_history, -1)[~frozen], tol):
            break
    bar.close()
    return best_params, best_posts, np.stack(elbos), rejected, best_it
