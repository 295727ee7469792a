"""Discrete chains (hidden Markov models) in log space: filter, smoother, posterior sampling, Viterbi.

Model: z_1 ~ pi, z_{t+1} | z_t = i ~ A_t[i, :], and log p(y_t | z_t = k) = log_likelihoods[t, k]. Inputs:

    log_initial_probs      (K,)                 log pi
    log_transition_matrix  (K, K) or (T-1, K, K) log A_t, entry t maps z_t -> z_{t+1}; a (T, K, K)
                           stack is accepted too and its last entry ignored
    log_likelihoods        (T, K)               log p(y_t | z_t = k); a padded step has a row of zeros

Recursions (alpha_t(k) = p(z_t = k, y_{1:t}), beta_t(k) = p(y_{t+1:T} | z_t = k)):

    alpha_1 = pi * l_1,     alpha_{t+1}(j) = sum_i alpha_t(i) A_t[i, j] l_{t+1}(j),
    beta_T = 1,             beta_t(i) = sum_j A_t[i, j] l_{t+1}(j) beta_{t+1}(j),
    log p(y_{1:T}) = log sum_k alpha_T(k),   p(z_t | y) ∝ alpha_t beta_t,
    p(z_t = i, z_{t+1} = j | y) ∝ alpha_t(i) A_t[i, j] l_{t+1}(j) beta_{t+1}(j).

``parallel=False`` runs them as ``lax.scan`` loops with exact per-step ``logsumexp`` (O(T K^2));
``parallel=True`` as associative scans over (K, K) log-matrices (O(T K^3) work; ``hmm_parallel``) under the
device's schedule (``scan.schedule_for``; ``parallel="tree"`` or ``"blocked"`` by name). Both normalize at every
step, so nothing overflows at any T.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from ssmneuro.inference import hmm_parallel
from ssmneuro.inference.scan import schedule_for


class HMMFiltered(NamedTuple):
    """Forward-filter output.

    Fields:
        log_likelihood: () log p(y_{1:T}).
        filtered_probs: (T, K) p(z_t | y_{1:t}).
        predicted_probs: (T, K) p(z_t | y_{1:t-1}) (the initial distribution at t = 1).
    """

    log_likelihood: jax.Array
    filtered_probs: jax.Array
    predicted_probs: jax.Array


class HMMPosterior(NamedTuple):
    """Forward-backward output.

    Fields:
        log_likelihood: () log p(y_{1:T}).
        filtered_probs: (T, K) p(z_t | y_{1:t}).
        smoothed_probs: (T, K) p(z_t | y_{1:T}).
        expected_transitions: p(z_t = i, z_{t+1} = j | y_{1:T}) as (T-1, K, K) when the transition
            matrix is time-varying, else its sum over t, (K, K) (the expected transition counts).
    """

    log_likelihood: jax.Array
    filtered_probs: jax.Array
    smoothed_probs: jax.Array
    expected_transitions: jax.Array


def _normalize(log_v, axis=-1):
    """(log v - logsumexp(log v), logsumexp(log v)) along ``axis``."""
    log_norm = logsumexp(log_v, axis=axis, keepdims=True)
    return log_v - log_norm, jnp.squeeze(log_norm, axis)


def _steps(log_A):
    """Per-step transitions for ``lax.scan``: the (T-1, K, K) stack, or None for a static matrix."""
    return log_A if log_A.ndim == 3 else None


def _transition(log_A_static, log_A_t):
    return log_A_static if log_A_t is None else log_A_t


# ---------------------------------------------------------------------------------------------
# sequential recursions
# ---------------------------------------------------------------------------------------------


def _filter_sequential(log_pi, log_A, log_lik):
    """Returns (log p(y), log filtered (T, K), log predicted (T, K))."""

    def step(log_pred, inputs):
        ll_t, log_A_t = inputs
        log_filt, log_c = _normalize(log_pred + ll_t)
        log_pred_next = logsumexp(log_filt[:, None] + _transition(log_A, log_A_t), axis=0)
        return log_pred_next, (log_filt, log_c, log_pred)

    xs = (log_lik[:-1], _steps(log_A))
    log_pred_last, (log_filt, log_c, log_pred) = jax.lax.scan(step, log_pi, xs)
    log_filt_last, log_c_last = _normalize(log_pred_last + log_lik[-1])
    log_filt = jnp.concatenate([log_filt, log_filt_last[None]])
    log_pred = jnp.concatenate([log_pred, log_pred_last[None]])
    return jnp.sum(log_c) + log_c_last, log_filt, log_pred


def _pairwise_marginals(log_A, log_lik, log_filt, log_beta, pair_weights):
    """p(z_t = i, z_{t+1} = j | y) ∝ filtered_t(i) A_t[i, j] l_{t+1}(j) beta_{t+1}(j), (T-1, K, K), vectorized."""
    T, K = log_lik.shape
    log_xi = log_filt[:-1, :, None] + log_A + (log_lik[1:] + log_beta[1:])[:, None, :]
    log_xi, _ = _normalize(log_xi.reshape(T - 1, K * K))
    return pair_weights[:, None, None] * jnp.exp(log_xi).reshape(T - 1, K, K)


def _backward_sequential(log_A, log_lik, log_filt, time_varying, pair_weights):
    """Normalized log beta (T, K) and the pairwise marginals ((T-1, K, K) or their (K, K) sum).

    pair_weights: (T-1,) multiplies the pairwise marginal of steps (t, t+1) (0 for padded pairs).
    The static-transition sum is accumulated inside the scan when a (T-1, K, K) array would be large.
    """
    T, K = log_lik.shape
    accumulate = not time_varying and (T - 1) * K * K > 2**22

    def step(carry, inputs):
        log_beta_next, xi_sum = carry
        log_filt_t, ll_next, log_A_t, weight = inputs
        log_A_t = _transition(log_A, log_A_t)
        message = ll_next + log_beta_next
        log_beta, _ = _normalize(logsumexp(log_A_t + message[None, :], axis=1))
        if accumulate:
            log_xi, _ = _normalize((log_filt_t[:, None] + log_A_t + message[None, :]).reshape(-1))
            xi_sum = xi_sum + weight * jnp.exp(log_xi).reshape(K, K)
        return (log_beta, xi_sum), log_beta

    init = (jnp.zeros(K, log_lik.dtype), jnp.zeros((K, K), log_lik.dtype))
    xs = (log_filt[:-1], log_lik[1:], _steps(log_A), pair_weights)
    (_, xi_sum), log_beta = jax.lax.scan(step, init, xs, reverse=True)
    log_beta = jnp.concatenate([log_beta, jnp.zeros((1, K), log_lik.dtype)])
    if accumulate:
        return log_beta, xi_sum
    xi = _pairwise_marginals(log_A, log_lik, log_filt, log_beta, pair_weights)
    return log_beta, (xi if time_varying else jnp.sum(xi, axis=0))


def _sample_sequential(key, log_A, log_filt):
    """z_T ~ p(z_T | y), then z_t ~ p(z_t | z_{t+1}, y_{1:t}) ∝ filtered_t(i) A_t[i, z_{t+1}]."""
    T = log_filt.shape[0]
    keys = jax.random.split(key, T)
    z_last = jax.random.categorical(keys[-1], log_filt[-1])

    def step(z_next, inputs):
        key_t, log_filt_t, log_A_t = inputs
        z = jax.random.categorical(key_t, log_filt_t + _transition(log_A, log_A_t)[:, z_next])
        return z, z

    _, z = jax.lax.scan(step, z_last, (keys[:-1], log_filt[:-1], _steps(log_A)), reverse=True)
    return jnp.concatenate([z, z_last[None]])


def _viterbi_sequential(log_pi, log_A, log_lik):
    """delta_{t+1}(j) = max_i delta_t(i) + log A_t[i, j] + log l_{t+1}(j); backtrack the argmaxes."""

    def forward(delta, inputs):
        ll_next, log_A_t = inputs
        scores = delta[:, None] + _transition(log_A, log_A_t)
        delta_next = jnp.max(scores, axis=0) + ll_next
        return delta_next - jnp.max(delta_next), jnp.argmax(scores, axis=0)

    delta_first = log_pi + log_lik[0]
    delta_last, pointers = jax.lax.scan(
        forward, delta_first - jnp.max(delta_first), (log_lik[1:], _steps(log_A)))
    z_last = jnp.argmax(delta_last)

    def backtrack(z_next, pointer_t):
        z = pointer_t[z_next]
        return z, z

    _, z = jax.lax.scan(backtrack, z_last, pointers, reverse=True)
    return jnp.concatenate([z, z_last[None]])


# ---------------------------------------------------------------------------------------------
# jitted cores
# ---------------------------------------------------------------------------------------------


def _mask_padding(log_lik, length):
    """Zero the log-likelihood rows t >= length; weights (T-1,) of the pairs (t, t+1) with t+1 < length."""
    T = log_lik.shape[0]
    if length is None:
        return log_lik, jnp.ones(T - 1, log_lik.dtype)
    valid = jnp.arange(T) < length
    return jnp.where(valid[:, None], log_lik, 0.0), valid[1:].astype(log_lik.dtype)


def _filter(log_pi, log_A, log_lik, length, parallel):
    log_lik, _ = _mask_padding(log_lik, length)
    if parallel:
        log_Z, log_filt, log_pred = hmm_parallel.filter_parallel(log_pi, log_A, log_lik, parallel)
    else:
        log_Z, log_filt, log_pred = _filter_sequential(log_pi, log_A, log_lik)
    return HMMFiltered(log_Z, jnp.exp(log_filt), jnp.exp(log_pred))


def _smoother(log_pi, log_A, log_lik, length, parallel):
    log_lik, pair_weights = _mask_padding(log_lik, length)
    time_varying = log_A.ndim == 3
    if parallel:
        return HMMPosterior(*hmm_parallel.smoother_parallel(log_pi, log_A, log_lik, time_varying, pair_weights,
                                                            parallel))
    log_Z, log_filt, _ = _filter_sequential(log_pi, log_A, log_lik)
    log_beta, transitions = _backward_sequential(log_A, log_lik, log_filt, time_varying, pair_weights)
    smoothed, _ = _normalize(log_filt + log_beta)
    return HMMPosterior(log_Z, jnp.exp(log_filt), jnp.exp(smoothed), transitions)


def _sample(key, log_pi, log_A, log_lik, length, num_samples, parallel):
    log_lik, _ = _mask_padding(log_lik, length)
    if parallel:
        _, log_filt, _ = hmm_parallel.filter_parallel(log_pi, log_A, log_lik, parallel)
        draw = lambda k: hmm_parallel.sample_parallel(k, log_A, log_filt, parallel)  # noqa: E731
    else:
        _, log_filt, _ = _filter_sequential(log_pi, log_A, log_lik)
        draw = lambda k: _sample_sequential(k, log_A, log_filt)  # noqa: E731
    if num_samples is None:
        return draw(key)
    return jax.vmap(draw)(jax.random.split(key, num_samples))


def _viterbi(log_pi, log_A, log_lik, length, parallel):
    log_lik, _ = _mask_padding(log_lik, length)
    if parallel:
        return hmm_parallel.viterbi_parallel(log_pi, log_A, log_lik, parallel)
    return _viterbi_sequential(log_pi, log_A, log_lik)


_filter_jit = jax.jit(_filter, static_argnames="parallel")
_smoother_jit = jax.jit(_smoother, static_argnames="parallel")
_sample_jit = jax.jit(_sample, static_argnames=("num_samples", "parallel"))
_viterbi_jit = jax.jit(_viterbi, static_argnames="parallel")


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------


def _is_concrete(*arrays):
    return not any(isinstance(x, jax.core.Tracer) for x in arrays)


def _check_inputs(log_initial_probs, log_transition_matrix, log_likelihoods):
    log_pi = jnp.asarray(log_initial_probs)
    log_A = jnp.asarray(log_transition_matrix)
    log_lik = jnp.asarray(log_likelihoods)
    if log_lik.ndim != 2 or log_lik.shape[0] < 1:
        raise ValueError(f"log_likelihoods must have shape (T, K) with T >= 1; got {log_lik.shape}.")
    T, K = log_lik.shape
    if log_pi.shape != (K,):
        raise ValueError(f"log_initial_probs must have shape (K,) = ({K},) to match log_likelihoods; got {log_pi.shape}.")
    if log_A.ndim == 3 and log_A.shape == (T, K, K):
        log_A = log_A[:-1]
    if log_A.shape not in ((K, K), (T - 1, K, K)):
        raise ValueError(
            f"log_transition_matrix must have shape (K, K) = ({K}, {K}) or (T-1, K, K) = ({T - 1}, {K}, {K}); "
            f"got {log_A.shape}.")
    dtype = jnp.result_type(log_pi, log_A, log_lik, jnp.float32)
    log_pi, log_A, log_lik = log_pi.astype(dtype), log_A.astype(dtype), log_lik.astype(dtype)
    if _is_concrete(log_pi, log_A, log_lik):
        for name, x in (("log_initial_probs", log_pi), ("log_transition_matrix", log_A), ("log_likelihoods", log_lik)):
            if bool(jnp.any(jnp.isnan(x) | (x == jnp.inf))):
                raise ValueError(f"{name} contains NaN or +inf (log-probabilities must be finite or -inf).")
        if not bool(jnp.any(jnp.isfinite(log_pi))):
            raise ValueError("log_initial_probs is -inf everywhere: no state can start the chain.")
    return log_pi, log_A, log_lik


def _as_length(length):
    if length is None or isinstance(length, jax.core.Tracer):
        return length
    length = jnp.asarray(length)
    if length.ndim != 0 or not jnp.issubdtype(length.dtype, jnp.integer):
        raise ValueError(f"length must be a scalar int (the number of valid steps); got {length!r}.")
    return length


def hmm_filter(log_initial_probs, log_transition_matrix, log_likelihoods, parallel=False, length=None):
    """Forward filter: log p(y_{1:T}), p(z_t | y_{1:t}) and p(z_t | y_{1:t-1}).

    Args:
        log_initial_probs: (K,) log p(z_1).
        log_transition_matrix: (K, K) or (T-1, K, K) log p(z_{t+1} = j | z_t = i).
        log_likelihoods: (T, K) log p(y_t | z_t = k).
        parallel: associative scan (O(T K^3) work) instead of a sequential scan: True for the device's
            schedule (``scan.schedule_for``: "blocked" on the CPU), or "tree" / "blocked" by name.
        length: optional () int (may be traced, e.g. under vmap over padded trials): steps t >= length
            are padding; their log-likelihood rows are ignored (as if 0).

    Returns:
        HMMFiltered(log_likelihood (), filtered_probs (T, K), predicted_probs (T, K)).
    """
    args = _check_inputs(log_initial_probs, log_transition_matrix, log_likelihoods)
    return _filter_jit(*args, _as_length(length), parallel=schedule_for(parallel))


def hmm_smoother(log_initial_probs, log_transition_matrix, log_likelihoods, parallel=False, length=None):
    """Forward-backward smoother.

    Args: as ``hmm_filter``.

    With ``length``, padded pairs (t+1 >= length) are zero in / left out of expected_transitions;
    the padded steps' smoothed_probs are the prior prediction and should be ignored.

    Returns:
        HMMPosterior(log_likelihood (), filtered_probs (T, K), smoothed_probs (T, K),
        expected_transitions: (T-1, K, K) p(z_t = i, z_{t+1} = j | y) for time-varying transitions,
        else (K, K) sum_t p(z_t = i, z_{t+1} = j | y)).
    """
    args = _check_inputs(log_initial_probs, log_transition_matrix, log_likelihoods)
    return _smoother_jit(*args, _as_length(length), parallel=schedule_for(parallel))


def hmm_posterior_sample(key, log_initial_probs, log_transition_matrix, log_likelihoods, parallel=False,
                         num_samples=None, length=None):
    """Exact draws of z_{1:T} from p(z_{1:T} | y_{1:T}) by backward sampling.

    Sequential: z_T ~ p(z_T | y), z_t ~ p(z_t | z_{t+1}, y_{1:t}) ∝ filtered_t(i) A_t[i, z_{t+1}].
    Parallel: for every t and every value j of z_{t+1} draw s_t(j) ~ p(z_t | z_{t+1} = j, y_{1:t})
    independently, then z_t = s_t(s_{t+1}(... z_T)) by an associative scan over index maps.

    Args:
        key: a ``jax.random`` key; other args as ``hmm_filter``.
        num_samples: None for one path, else the number S of independent paths.

    Returns:
        (T,) or (S, T) int32 states.
    """
    args = _check_inputs(log_initial_probs, log_transition_matrix, log_likelihoods)
    return _sample_jit(key, *args, _as_length(length), num_samples=num_samples, parallel=schedule_for(parallel))


def hmm_viterbi(log_initial_probs, log_transition_matrix, log_likelihoods, parallel=False, length=None):
    """Most likely path argmax_z p(z_{1:T} | y_{1:T}) (max-product; parallel = max-plus associative scan).

    Args: as ``hmm_filter``.

    Returns:
        (T,) int32 states.
    """
    args = _check_inputs(log_initial_probs, log_transition_matrix, log_likelihoods)
    return _viterbi_jit(*args, _as_length(length), parallel=schedule_for(parallel))
