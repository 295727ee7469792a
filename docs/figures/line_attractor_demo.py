"""End-to-end check of the line-attractor score on a simulated rSLDS (fit with ssmneuro.RSLDS).

    .venv/bin/python docs/figures/line_attractor_demo.py [--control] [--iters 50]

Simulates 20 trials of a 2-state rSLDS whose state 0 is a line attractor (eigenvalues 0.999, 0.9; dt = 0.1 s;
true score 6.72) and state 1 a reset towards the origin (0.85, 0.8) entered when the integrated value
x_1 grows; Gaussian emissions (30 neurons). With --control state 0 is a point attractor (0.9, 0.88;
score 0.28). Fits an RSLDS by Laplace-EM and prints the score, its 90% interval and P(score > 1).
Also used by make_figures.py.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import ssmneuro
from ssmneuro.analysis import line_attractor_score

DT, K, D, N, TRIALS, T = 0.1, 2, 2, 30, 20, 100


def true_model(control: bool = False, dtype=jnp.float32):
    """(model, params, true score) of the simulated rSLDS."""
    model = ssmneuro.RSLDS(num_states=K, latent_dim=D, emission_dim=N, transitions="recurrent")
    p = model.random_params(jax.random.PRNGKey(0), dtype)
    V = np.array([[1.0, 0.3], [0.2, 1.0]])
    lam0 = (0.9, 0.88) if control else (0.999, 0.9)
    A0 = V @ np.diag(lam0) @ np.linalg.inv(V)
    A1 = np.diag([0.85, 0.8])
    dyn = p.dynamics._replace(weights=jnp.asarray(np.stack([A0, A1]), dtype), biases=jnp.zeros((K, D), dtype),
                              covs=jnp.asarray(np.tile(0.01 * np.eye(D), (K, 1, 1)), dtype))
    log_P = np.log(np.array([[0.98, 0.02], [0.05, 0.95]]))
    trans = p.transitions._replace(log_transition_matrix=jnp.asarray(log_P, dtype),
                                   recurrent_weights=jnp.asarray([[0.0, 0.0], [2.0, 0.0]], dtype),
                                   biases=jnp.asarray([0.0, -5.0], dtype))
    C = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (N, D))) / np.sqrt(D)
    emis = p.emissions._replace(weights=jnp.asarray(C, dtype), covs=jnp.full((N,), 0.1, dtype))
    init = p.initial._replace(covs=jnp.asarray(np.tile(np.eye(D), (K, 1, 1)), dtype))
    params = p._replace(dynamics=dyn, transitions=trans, emissions=emis, initial=init)
    score = float(np.log2(np.log(lam0[1]) / np.log(lam0[0])))
    return model, params, score


def simulate(model, params, seed: int = 0):
    keys = jax.random.split(jax.random.PRNGKey(seed), TRIALS)
    out = [model.sample(params, k, T) for k in keys]
    return [np.asarray(o[0]) for o in out], [np.asarray(o[1]) for o in out], [np.asarray(o[2]) for o in out]


def run(control: bool = False, iters: int = 50, seed: int = 0, verbose: bool = False):
    model, params, true_score = true_model(control)
    z, x, y = simulate(model, params, seed)
    t0 = time.time()
    fit = model.fit(y, key=jax.random.PRNGKey(seed + 1), num_iters=iters, verbose=verbose)
    fit_s = time.time() - t0
    result = line_attractor_score(model, fit.params, DT, data=y, key=jax.random.PRNGKey(seed + 2),
                                  posterior=fit.posterior)
    return dict(model=model, true_params=params, fit=fit, z=z, x=x, y=y, result=result, true_score=true_score,
                fit_seconds=fit_s)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", action="store_true")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    out = run(a.control, a.iters, a.seed, verbose=False)
    r = out["result"]
    summary = dict(control=a.control, seed=a.seed, iters=a.iters, true_score=out["true_score"], score=r.score,
                   interval=[float(v) for v in r.interval], prob_above_1=r.prob_above_1, state=r.state,
                   scores=[float(s) for s in r.scores], time_constants=np.round(r.time_constants, 4).tolist(),
                   inside=bool(r.interval[0] <= out["true_score"] <= r.interval[1]), fit_seconds=out["fit_seconds"],
                   final_elbo=float(out["fit"].elbos[-1]))
    print(json.dumps(summary))
