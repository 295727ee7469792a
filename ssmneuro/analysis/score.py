"""The line-attractor score of a fitted model, with uncertainty.

score = log2(tau_1 / tau_2) (bits) from the two longest time constants of one discrete state's dynamics
(conventions in ``ssmneuro.analysis.linear``). Uncertainty comes from

* ``method="posterior"``: the conjugate posterior over each state's (A_k, b_k, Sigma_k) given the
  model's posterior latents (``ssmneuro.analysis.dynamics_posterior``), or
* ``method="bootstrap"``: resampling trials with replacement and refitting the model (few iterations,
  warm-started from ``params``), states matched to ``params`` by their dynamics.

The 90% interval is the 5th-95th percentile of the score samples; prob_above_1 = P(score > 1), i.e. the
probability that the slowest mode is more than twice as slow as the next.
"""

import inspect
from typing import NamedTuple

import jax
import numpy as np
from scipy.optimize import linear_sum_assignment

from ssmneuro.analysis.dynamics_posterior import posterior_stats, sample_dynamics
from ssmneuro.analysis.fixed_points import sort_eigenvalues
from ssmneuro.analysis.linear import score_from_time_constants, slowest_mode, time_constants


class LineAttractorScore(NamedTuple):
    """Line-attractor score of one discrete state, with its distribution.

    score:          log2(tau_1 / tau_2) of ``state`` at the point estimate (bits)
    interval:       (2,) central ``level`` (default 90%) interval of the score samples (NaN without data)
    prob_above_1:   P(score > 1) under the samples (NaN without data)
    time_constants: (K, D) seconds, every state, longest first (point estimate)
    samples:        (S,) score samples of ``state`` (empty without data)
    state:          the discrete state scored (default: the one with the highest point score)
    scores:         (K,) point-estimate score per state
    state_samples:  (S, K) score samples of every state
    time_constant_samples: (S, K, D) seconds
    eigenvalues:    (K, D) complex, slowest first
    direction:      (D,) the slowest mode of ``state`` (integration direction, unit norm)
    loading:        (N,) C v, each neuron's loading on that direction (None without emission weights)
    method:         "posterior" | "bootstrap" | "none"
    level:          the interval's probability
    units:          "s" (time constants) and "bits" (score)
    """

    score: float
    interval: np.ndarray
    prob_above_1: float
    time_constants: np.ndarray
    samples: np.ndarray
    state: int
    scores: np.ndarray
    state_samples: np.ndarray
    time_constant_samples: np.ndarray
    eigenvalues: np.ndarray
    direction: np.ndarray
    loading: np.ndarray | None
    method: str
    level: float
    units: str = "time constants in s, score in bits"


def summarize_scores(weights, dt: float | None, weight_samples=None, *, time: str = "discrete",
                     state: int | None = None, level: float = 0.9, emission_weights=None,
                     method: str = "posterior") -> LineAttractorScore:
    """Score summary from plain arrays: weights (K, D, D) point estimate, weight_samples (S, K, D, D) or None."""
    A = np.asarray(weights, dtype=float)
    if A.ndim == 2:
        A = A[None]
    eig = sort_eigenvalues(np.linalg.eigvals(A), time)
    tau = time_constants(eig, dt, time)
    scores = score_from_time_constants(tau)
    state = int(np.nanargmax(scores)) if state is None else int(state)
    if not 0 <= state < A.shape[0]:
        raise ValueError(f"state must be in [0, {A.shape[0]}), got {state}")
    if weight_samples is None:
        S_tau = np.zeros((0,) + tau.shape)
        method = "none"
    else:
        S_tau = time_constants(np.linalg.eigvals(np.asarray(weight_samples, dtype=float)), dt, time)
    S_scores = score_from_time_constants(S_tau) if S_tau.shape[0] else np.zeros((0, A.shape[0]))
    samples = S_scores[:, state]
    if samples.size:
        tail = 100 * (1 - level) / 2
        interval = np.nanpercentile(samples, [tail, 100 - tail], method="inverted_cdf")  # inf-safe
        prob = float(np.mean(samples > 1))
    else:
        interval, prob = np.full(2, np.nan), np.nan
    mode = slowest_mode(A[state], dt, time)
    loading = None if emission_weights is None else np.asarray(emission_weights) @ mode.direction
    return LineAttractorScore(score=float(scores[state]), interval=interval, prob_above_1=prob, time_constants=tau,
                              samples=samples, state=state, scores=scores, state_samples=S_scores,
                              time_constant_samples=S_tau, eigenvalues=eig, direction=mode.direction,
                              loading=loading, method=method, level=level)


def match_states(reference, weights) -> np.ndarray:
    """Permutation p (K,) so that weights[p[k]] is the state closest to reference[k] (Frobenius distance
    of the dynamics matrices, Hungarian assignment). reference, weights: (K, D, D)."""
    cost = np.linalg.norm(np.asarray(reference)[:, None] - np.asarray(weights)[None], axis=(-2, -1))
    return linear_sum_assignment(cost)[1]


def _fit_kwargs(model, params, num_iters):
    names = inspect.signature(model.fit).parameters
    kw = {"num_iters": num_iters}
    if "verbose" in names:
        kw["verbose"] = False
    for name in ("initial_params", "init_params", "params"):
        if name in names:
            kw[name] = params
            break
    return kw


def bootstrap_weights(model, params, data, key, num_resamples: int = 20, num_iters: int = 10, inputs=None):
    """Dynamics weights (R, K, D, D) from refits on trials resampled with replacement (warm start from
    params when model.fit accepts initial parameters), states matched to params by ``match_states``."""
    trials = list(data) if isinstance(data, (list, tuple)) else [data]
    reference = np.asarray(params.dynamics.weights)
    kw = _fit_kwargs(model, params, num_iters)
    out = []
    for k in jax.random.split(key, num_resamples):
        kr, kf = jax.random.split(k)
        idx = np.asarray(jax.random.choice(kr, len(trials), (len(trials),)))
        extra = {} if inputs is None else {"inputs": [inputs[i] for i in idx]}
        fit = model.fit([trials[i] for i in idx], key=kf, **extra, **kw)
        W = np.asarray(fit.params.dynamics.weights)
        out.append(W[match_states(reference, W)])
    return np.stack(out)


def line_attractor_score(model, params, dt: float, data=None, key=None, *, posterior=None, inputs=None,
                         masks=None, method: str = "posterior", num_samples: int = 1000, state: int | None = None,
                         level: float = 0.9, num_resamples: int = 20, num_iters: int = 10,
                         time: str = "discrete", **prior) -> LineAttractorScore:
    """Line-attractor score log2(tau_1 / tau_2) of a fitted (r)SLDS / LDS, with its distribution.

    model, params: a model and its SLDSParams (dynamics.weights (K, D, D)).
    dt:            bin width in seconds (time constants tau = dt / |ln|lambda||).
    data:          list of (T_i, N) trials (or one array); needed for the distribution. Without data (and
                   without ``posterior``) only the point estimate is returned (interval, prob_above_1 NaN).
    key:           jax.random key for the samples (required with data).
    posterior:     list of per-trial Posteriors (default: model.posterior(params, data, inputs, masks)).
    method:        "posterior" (conjugate posterior over the dynamics given the posterior latents) or
                   "bootstrap" (refit num_resamples times on resampled trials, num_iters each).
    state:         which discrete state to score (default: the highest point score).
    prior:         prior_precision, prior_dof, prior_scale (see dynamics_posterior.posterior_params).
    """
    if method not in ("posterior", "bootstrap"):
        raise ValueError(f"method must be 'posterior' or 'bootstrap', got {method!r}")
    W = np.asarray(params.dynamics.weights)
    C = getattr(params.emissions, "weights", None)
    samples = None
    if data is not None or posterior is not None:
        if key is None:
            raise ValueError("a jax.random key is needed to sample the score distribution: pass key=...")
        if method == "posterior":
            if posterior is None:
                posterior = model.posterior(params, data, inputs=inputs, masks=masks)
            stats = posterior_stats(posterior, inputs)
            samples = sample_dynamics(key, stats, num_samples, **prior).weights
        else:
            if data is None:
                raise ValueError("method='bootstrap' refits the model: pass data")
            samples = bootstrap_weights(model, params, data, key, num_resamples, num_iters, inputs)
    return summarize_scores(W, dt, samples, time=time, state=state, level=level,
                            emission_weights=None if C is None else np.asarray(C), method=method)
