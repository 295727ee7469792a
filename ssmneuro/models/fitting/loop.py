"""The outer fitting loop shared by exact EM and Laplace-EM: progress bar, NaN / drop rejection with
damping, best parameters kept."""

import math

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm


def _blend(best, candidate, damping):
    return jax.tree.map(lambda b, c: b + damping * (c - b), best, candidate)


def _all_finite(tree):
    return all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree.leaves(tree))


def run(iteration, params, qs, num_iters, verbose=True, max_drop=0.01, desc="EM"):
    """Iterate ``iteration(params, qs) -> (new_params, posts, elbo)``.

    An iteration whose ELBO is NaN, whose posteriors are not finite, or whose ELBO is below the best by
    more than ``max_drop * (1 + |best|)`` is rejected: the loop returns to the best parameters and takes
    a damped step (half as long each time) towards their M-step result.
    -> (best_params, best_posts, elbos (num_iters,), rejected list, best_iteration)
    """
    elbos, rejected = [], []
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
    bar.close()
    return best["params"], best["posts"], np.asarray(elbos), rejected, best["it"]
