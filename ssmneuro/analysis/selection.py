"""Cross-validated choice of the number of discrete states K and latent dimensions D.

For each fold the recording's frames are split into a held-out block (contiguous, or whole trials) and
the rest; a model is fitted on the rest with every neuron. On the held-out block two scores:

* co-smoothing (Pei et al. 2021, Neural Latents Benchmark): a random fraction of neurons is hidden
  (masked); the latents are inferred from the other neurons only and the hidden neurons are predicted
  as ``E[y | E[x]]``. Score: R^2 of those predictions, ``1 - SSE / SST`` pooled over hidden neurons.
* forward simulation: from the latent inferred at the start of each window of ``horizon`` frames
  (using the frames before it), the dynamics are run forward deterministically with the most likely
  state at each step (``argmax transition_logits``) and ``E[y]`` is compared with the data (R^2).

The best ``(K, D)`` maximises mean co-smoothing over folds.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np


class SelectionResult(NamedTuple):
    """Scores per candidate.

    Fields:
        num_states: ``(len_K,)`` candidate K; latent_dims: ``(len_D,)`` candidate D.
        cosmoothing: ``(len_K, len_D, folds)`` held-out-neuron R^2.
        forecast: ``(len_K, len_D, folds)`` forward-simulation R^2 over ``horizon`` frames.
        best_num_states, best_latent_dim: the maximiser of mean co-smoothing.
        horizon: frames simulated forward.
    """

    num_states: np.ndarray
    latent_dims: np.ndarray
    cosmoothing: np.ndarray
    forecast: np.ndarray
    best_num_states: int
    best_latent_dim: int
    horizon: int


def fold_blocks(lengths, num_folds: int) -> list[list[tuple[int, int, int]]]:
    """Held-out pieces per fold as ``(trial, start, stop)``.

    With at least ``num_folds`` trials, whole trials are dealt round-robin to folds; otherwise each
    trial is cut into ``num_folds`` contiguous blocks and fold f holds block f of every trial.
    """
    if num_folds < 2:
        raise ValueError(f"num_folds = {num_folds}; cross-validation needs at least 2 folds")
    if len(lengths) >= num_folds:
        return [[(i, 0, int(lengths[i])) for i in range(f, len(lengths), num_folds)] for f in range(num_folds)]
    folds = [[] for _ in range(num_folds)]
    for i, T in enumerate(lengths):
        edges = np.linspace(0, T, num_folds + 1).astype(int)
        for f in range(num_folds):
            folds[f].append((i, int(edges[f]), int(edges[f + 1])))
    return folds


def _split(rec, held, min_len: int):
    """Training pieces (everything outside ``held``) and test pieces, as lists of arrays."""
    train, test, train_masks = [], [], []
    masks = rec.masks or [np.ones(x.shape, bool) for x in rec.traces]
    by_trial = {}
    for i, a, b in held:
        by_trial.setdefault(i, []).append((a, b))
    for i, x in enumerate(rec.traces):
        cuts = sorted(by_trial.get(i, []))
        start = 0
        for a, b in cuts:
            if a - start >= min_len:
                train.append(x[start:a])
                train_masks.append(masks[i][start:a])
            test.append((x[a:b], masks[i][a:b]))
            start = b
        if x.shape[0] - start >= min_len:
            train.append(x[start:])
            train_masks.append(masks[i][start:])
    return train, train_masks, test


def r_squared(y, yhat, mask) -> float:
    """``1 - sum m (y - yhat)^2 / sum m (y - mean_n y)^2`` pooled over the masked-in entries."""
    m = mask.astype(float)
    mean = (y * m).sum(0) / np.maximum(m.sum(0), 1)
    return float(1 - ((y - yhat) ** 2 * m).sum() / (((y - mean) ** 2) * m).sum())


def cosmoothing_score(model, params, test, hidden) -> float:
    """R^2 of hidden neurons predicted from latents inferred on the other neurons."""
    ys, yhats, ms = [], [], []
    for y, m in test:
        visible = m.copy()
        visible[:, hidden] = False
        post = model.posterior(params, [y], masks=[visible])[0]
        yhat = np.asarray(model.emission_mean(params, post.latent_means))
        score_mask = np.zeros_like(m)
        score_mask[:, hidden] = m[:, hidden]
        ys.append(y), yhats.append(yhat), ms.append(score_mask)
    return r_squared(np.concatenate(ys), np.concatenate(yhats), np.concatenate(ms))


def rollout(model, params, x0, num_steps: int) -> np.ndarray:
    """Deterministic forward simulation ``x_{t+1} = A_k x_t + b_k``, ``k = argmax transition_logits(x_t)``.

    Returns: ``(num_steps, D)`` the states after ``x0``.
    """
    A, b = params.dynamics.weights, params.dynamics.biases

    def step(x, _):
        k = jax.numpy.argmax(model.transition_logits(params, x))
        x_next = A[k] @ x + b[k]
        return x_next, x_next

    return np.asarray(jax.lax.scan(step, jax.numpy.asarray(x0), None, length=num_steps)[1])


def forecast_score(model, params, test, horizon: int) -> float:
    """R^2 of ``E[y]`` along forward simulations of ``horizon`` frames from latents inferred on the
    frames before each window (windows tile each test piece after its first ``horizon`` frames).

    The past is selected by masking every later frame, so each call has the same length (one compile).
    """
    ys, yhats, ms = [], [], []
    for y, m in test:
        for start in range(horizon, y.shape[0] - horizon + 1, horizon):
            past = m.copy()
            past[start:] = False  # the future is hidden: the latent at start - 1 is a filtering estimate
            post = model.posterior(params, [y], masks=[past])[0]
            x = rollout(model, params, np.asarray(post.latent_means[start - 1]), horizon)
            ys.append(y[start:start + horizon])
            yhats.append(np.asarray(model.emission_mean(params, x)))
            ms.append(m[start:start + horizon])
    if not ys:
        return float("nan")
    return r_squared(np.concatenate(ys), np.concatenate(yhats), np.concatenate(ms))


def _build(name: str, K: int, D: int, N: int, emissions: str):
    import ssmneuro

    if name == "lds":
        return ssmneuro.LDS(D, N, emissions=emissions)
    return getattr(ssmneuro, name.upper())(K, D, N, emissions=emissions)


def select_model(rec, num_states=(1, 2, 4), latent_dims=(2, 4), model: str = "rslds",
                 emissions: str = "gaussian", num_folds: int = 2, num_iters: int = 20,
                 hidden_fraction: float = 0.25, horizon: int = 10, key=None, log=None) -> SelectionResult:
    """Cross-validate every ``(K, D)`` (see the module docstring).

    Args:
        rec: a prepared :class:`~ssmneuro.io.Recording` (z-scored for Gaussian emissions).
        model: ``rslds`` or ``slds`` (K = 1 is fitted as an LDS).
        hidden_fraction: fraction of neurons hidden for co-smoothing (a new random set per fold).
        horizon: frames of forward simulation.
        key: ``jax.random`` key (default ``PRNGKey(0)``).
    """
    key = jax.random.PRNGKey(0) if key is None else key
    if model not in ("rslds", "slds"):
        raise ValueError(f"model {model!r}: selection compares switching models; choose rslds or slds")
    ks, ds = np.asarray(num_states, int), np.asarray(latent_dims, int)
    folds = fold_blocks([x.shape[0] for x in rec.traces], num_folds)
    N = rec.num_neurons
    num_hidden = max(1, int(round(hidden_fraction * N)))
    if num_hidden >= N:
        raise ValueError(f"co-smoothing needs at least 2 neurons; this recording has {N}")
    cos = np.full((ks.size, ds.size, num_folds), np.nan)
    fc = np.full_like(cos, np.nan)
    for f, held in enumerate(folds):
        key, k_hide = jax.random.split(key)
        hidden = np.sort(np.asarray(jax.random.permutation(k_hide, N))[:num_hidden])
        train, train_masks, test = _split(rec, held, min_len=max(horizon, 2))
        if not train:
            raise ValueError("the training part of a fold is empty; use fewer folds or a longer recording")
        train_rec = rec._replace(traces=train, masks=train_masks, labels=None, behavior=None)
        for i, K in enumerate(ks):
            for j, D in enumerate(ds):
                key, k_fit = jax.random.split(key)
                m = _build("lds" if K == 1 else model, int(K), int(D), N, emissions)
                fit = m.fit(train_rec.traces, key=k_fit, masks=train_rec.masks, num_iters=num_iters,
                            verbose=False)
                cos[i, j, f] = cosmoothing_score(m, fit.params, test, hidden)
                fc[i, j, f] = forecast_score(m, fit.params, test, horizon)
                if log:
                    log(f"fold {f + 1}/{num_folds}  K={K} D={D}  co-smoothing R^2 {cos[i, j, f]:.3f}  "
                        f"forecast R^2 {fc[i, j, f]:.3f}")
    mean = np.nanmean(cos, -1)
    bi, bj = np.unravel_index(np.nanargmax(mean), mean.shape)
    return SelectionResult(num_states=ks, latent_dims=ds, cosmoothing=cos, forecast=fc,
                           best_num_states=int(ks[bi]), best_latent_dim=int(ds[bj]), horizon=horizon)


def plot_selection(result: SelectionResult, ax=None, metric: str = "cosmoothing"):
    """Mean (+- s.e.m. over folds) held-out score against D, one line per K; the best is circled."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    scores = getattr(result, metric)
    mean = np.nanmean(scores, -1)
    sem = np.nanstd(scores, -1) / np.sqrt(max(scores.shape[-1], 1))
    for i, K in enumerate(result.num_states):
        ax.errorbar(result.latent_dims, mean[i], yerr=sem[i], marker="o", capsize=3, label=f"K = {K}")
    if metric == "cosmoothing":
        i = list(result.num_states).index(result.best_num_states)
        j = list(result.latent_dims).index(result.best_latent_dim)
        ax.plot(result.best_latent_dim, mean[i, j], "o", ms=14, mfc="none", mec="k")
    ax.set(xlabel="latent dimensions D", ylabel=("co-smoothing" if metric == "cosmoothing" else
                                                    f"forecast ({result.horizon} frames)") + " R^2")
    ax.set_xticks(result.latent_dims)
    ax.legend(frameon=False)
    return ax
