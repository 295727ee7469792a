"""Parallel RNN evaluation (DEER, quasi-DEER, ELK, quasi-ELK) against the sequential loop.

References: a plain Python/``lax.scan`` loop of the cell (states) and ``jax.grad`` through it
(gradients); a dense (T D x T D) least-squares solve for one Levenberg-Marquardt step; ``jax.jacfwd``
for the analytic diagonal Jacobians. Tolerances: 1e-6 in float64 (asked), 1e-4 in float32.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.seq.parallel_rnn import DEER, ELK, QuasiDEER, QuasiELK, Sequential, cells, evaluate
from ssmneuro.seq.parallel_rnn.solver import shift
from ssmneuro.seq.parallel_rnn.steps import elk_step, quasi_elk_step
from ssmneuro.seq.parallel_rnn.jacobians import apply_cell, dense_jacobians, probed_diagonal


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


ids = lambda m: type(m).__name__ + ("" if getattr(m, "parallel", True) else "-seq")


def python_loop(cell, params, x0, inputs):
    """The reference: x_t = f(x_{t-1}, u_t) in a Python loop (T, D).

    Each step is one call of the cell, compiled on its own (``jax.jit`` of the cell alone, no scan, no
    solver code): the same operations as the op-by-op loop (equal up to rounding), but a T = 500 loop
    takes ~0.05 s instead of ~2.5 s of per-op dispatch and compilation.
    """
    step = jax.jit(cell)
    x, out = x0, []
    for u in inputs:
        x = step(params, x, u)
        out.append(x)
    return jnp.stack(out)


def gru_problem(D, T, U=3, seed=0, dtype=jnp.float64):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    params = cells.init_gru(k1, D, U, dtype=dtype)
    inputs = jax.random.normal(k2, (T, U), dtype)
    x0 = 0.5 * jax.random.normal(k3, (D,), dtype)
    return params, x0, inputs


def assert_clean(sol):
    assert bool(sol.converged) and not bool(sol.diverged) and not bool(sol.fell_back)


# ------------------------------------------------------------------ states equal the sequential loop
@pytest.mark.parametrize("method, D", [
    (DEER(), 4), (DEER(), 16), (QuasiDEER(), 4), (QuasiDEER(), 16),
    (ELK(trust=10.0), 4), (ELK(trust=10.0, parallel=False), 16),
    (QuasiELK(trust=10.0), 4), (QuasiELK(trust=10.0, parallel=False), 16),
], ids=lambda v: ids(v) if not isinstance(v, int) else f"D{v}")
def test_gru_states_equal_sequential_float64(method, D):
    params, x0, inputs = gru_problem(D, T=300)
    expected = evaluate(cells.gru, x0, inputs, Sequential(), params=params).states
    sol = evaluate(cells.gru, x0, inputs, method, params=params)
    assert_clean(sol)
    np.testing.assert_allclose(sol.states, expected, atol=1e-6, rtol=0)
    # residual history: finite up to the last iteration, NaN after; the last one is <= tol (1e-10)
    hist, k = np.asarray(sol.residuals), int(sol.iterations)
    assert hist.shape == (301,) and 0 < k < 300
    assert np.all(np.isfinite(hist[: k + 1])) and np.all(np.isnan(hist[k + 1:])) and hist[k] <= 1e-10


def test_sequential_method_equals_python_loop():
    params, x0, inputs = gru_problem(4, T=50)
    sol = evaluate(cells.gru, x0, inputs, Sequential(), params=params)
    np.testing.assert_allclose(sol.states, python_loop(cells.gru, params, x0, inputs), atol=1e-12, rtol=0)
    assert_clean(sol)


@pytest.mark.parametrize("method", [DEER(), QuasiDEER()], ids=ids)
def test_gru_d64_long_sequence(method):
    params, x0, inputs = gru_problem(64, T=1000)
    expected = evaluate(cells.gru, x0, inputs, Sequential(), params=params).states
    sol = evaluate(cells.gru, x0, inputs, method, params=params)
    assert_clean(sol)
    np.testing.assert_allclose(sol.states, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", [DEER(), QuasiDEER(), ELK(trust=10.0, parallel=False),
                                    QuasiELK(trust=10.0, parallel=False)], ids=ids)
def test_gru_states_equal_sequential_float32(method):
    with jax.enable_x64(False):
        params, x0, inputs = gru_problem(16, T=500, dtype=jnp.float32)
        expected = python_loop(cells.gru, params, x0, inputs)
        sol = evaluate(cells.gru, x0, inputs, method, params=params)
        assert sol.states.dtype == jnp.float32
        assert_clean(sol)
        np.testing.assert_allclose(sol.states, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("method", [DEER(tol=0.0), QuasiDEER(tol=0.0), ELK(tol=0.0, trust=0.01, parallel=False),
                                    QuasiELK(tol=0.0, trust=0.01, adaptive=False, parallel=False)], ids=ids)
def test_every_method_is_exact_within_T_iterations(method):
    """Even asked for a zero residual, every method stops converged within T iterations, exactly."""
    T = 40
    params, x0, inputs = gru_problem(4, T=T)
    sol = evaluate(cells.gru, x0, inputs, method, params=params)
    assert_clean(sol)
    assert int(sol.iterations) <= T
    np.testing.assert_allclose(sol.states, python_loop(cells.gru, params, x0, inputs), atol=1e-14, rtol=0)


# ------------------------------------------------------------------ gradients
def _loss(states, weights):
    return jnp.sum(weights * jnp.sin(states))


@pytest.mark.parametrize("method", [DEER(), QuasiDEER(adjoint="sequential"), ELK(parallel=False)], ids=ids)
def test_gradients_equal_backprop_through_loop(method):
    params, x0, inputs = gru_problem(4, T=50)
    weights = jax.random.normal(jax.random.PRNGKey(5), (50, 4))

    def loss(method, params, x0, inputs):
        return _loss(evaluate(cells.gru, x0, inputs, method, params=params).states, weights)

    expected = jax.grad(loss, argnums=(1, 2, 3))(Sequential(), params, x0, inputs)
    got = jax.grad(loss, argnums=(1, 2, 3))(method, params, x0, inputs)
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(g, e, atol=1e-6, rtol=1e-6)
    assert np.max(np.abs(np.asarray(expected[1]))) > 1e-3  # the check is not vacuous


def test_gradients_through_a_closure():
    """f(x, u) closing over the parameters: the closure is converted and differentiated too."""
    params, x0, inputs = gru_problem(4, T=30)
    weights = jax.random.normal(jax.random.PRNGKey(6), (30, 4))

    def loss(params, method):
        f = lambda x, u: cells.gru(params, x, u)
        return _loss(evaluate(f, x0, inputs, method).states, weights)

    expected = jax.grad(loss)(params, Sequential())
    got = jax.jit(jax.grad(loss), static_argnums=1)(params, QuasiDEER())
    for g, e in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(g, e, atol=1e-6, rtol=1e-6)


# ------------------------------------------------------------------ divergence
def unstable_tanh_problem():
    """tanh RNN, W with spectral radius ~1.5, weak inputs: linearising at the zero guess, the products
    of Jacobians grow like 1.5^t and overflow float32 by t ~ 220, though the true trajectory is tame."""
    D, U, T = 8, 3, 1000
    params = cells.init_tanh_rnn(jax.random.PRNGKey(2), D, U, scale=1.5, dtype=jnp.float32)
    params = params._replace(input_weights=0.3 * params.input_weights)
    inputs = jax.random.normal(jax.random.PRNGKey(0), (T, U), jnp.float32)
    return params, jnp.zeros(D, jnp.float32), inputs


def test_unstable_cell_deer_diverges_elk_converges():
    with jax.enable_x64(False):
        params, x0, inputs = unstable_tanh_problem()
        expected = python_loop(cells.tanh_rnn, params, x0, inputs)
        with pytest.warns(RuntimeWarning, match="DEER diverged"):
            deer = evaluate(cells.tanh_rnn, x0, inputs, DEER(on_divergence="stop"), params=params)
        assert bool(deer.diverged) and not bool(deer.converged) and not bool(deer.fell_back)
        assert not np.isfinite(np.asarray(deer.residuals)[int(deer.iterations)])  # blew up
        with pytest.warns(RuntimeWarning, match="fell_back=True"):
            fallback = evaluate(cells.tanh_rnn, x0, inputs, DEER(), params=params)
        assert bool(fallback.fell_back)
        np.testing.assert_allclose(fallback.states, expected, atol=1e-5, rtol=0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            elk = evaluate(cells.tanh_rnn, x0, inputs, ELK(trust=1.0, tol=1e-6, parallel=False), params=params)
        assert_clean(elk)
        assert int(elk.iterations) < 100  # far fewer than T = 1000
        np.testing.assert_allclose(elk.states, expected, atol=1e-4, rtol=0)


def test_divergence_warns_inside_jit():
    with jax.enable_x64(False):
        params, x0, inputs = unstable_tanh_problem()
        run = jax.jit(lambda x0: evaluate(cells.tanh_rnn, x0, inputs, DEER(), params=params).fell_back)
        with pytest.warns(RuntimeWarning, match="diverged"):
            assert bool(jax.block_until_ready(run(x0)))
        jax.effects_barrier()


# ------------------------------------------------------------------ one Levenberg-Marquardt step
def dense_lm_step(J, fx, prev, guess, x0, trust):
    """argmin_x sum_t ||x_t - J_t x_{t-1} - b_t||^2 + sum_t ||x_t - guess_t||^2 / trust, by lstsq."""
    J, fx, prev, guess = map(np.asarray, (J, fx, prev, guess))
    T, D = fx.shape
    if J.ndim == 2:
        J = np.stack([np.diag(j) for j in J])
    b = fx - np.einsum("tij,tj->ti", J, prev)
    rows, rhs = [], []
    for t in range(T):  # dynamics residuals
        row = np.zeros((D, T * D))
        row[:, t * D:(t + 1) * D] = np.eye(D)
        if t > 0:
            row[:, (t - 1) * D:t * D] = -J[t]
        rows.append(row)
        rhs.append(b[t] + (J[0] @ np.asarray(x0) if t == 0 else 0))
    for t in range(T):  # pseudo-observations
        row = np.zeros((D, T * D))
        row[:, t * D:(t + 1) * D] = np.eye(D) / np.sqrt(trust)
        rows.append(row)
        rhs.append(guess[t] / np.sqrt(trust))
    x = np.linalg.lstsq(np.vstack(rows), np.concatenate(rhs), rcond=None)[0]
    return x.reshape(T, D)


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("diagonal", [False, True])
def test_elk_step_equals_dense_levenberg_marquardt(parallel, diagonal):
    T, D, trust = 7, 3, 0.7
    params, x0, inputs = gru_problem(D, T=T, seed=3)
    guess = jax.random.normal(jax.random.PRNGKey(4), (T, D))
    prev = shift(guess, x0)
    # each call jitted: one compiled program instead of dozens of op-by-op compilations (same operations)
    fx = jax.jit(apply_cell, static_argnums=0)(cells.gru, params, prev, inputs)
    J = jax.jit(dense_jacobians, static_argnums=0)(cells.gru, params, prev, inputs)
    if diagonal:
        J = jnp.diagonal(J, axis1=1, axis2=2)
        got = jax.jit(quasi_elk_step, static_argnums=5)(J, fx, prev, guess, trust, parallel)
    else:
        got = jax.jit(elk_step, static_argnums=5)(J, fx, prev, guess, trust, parallel)
    np.testing.assert_allclose(got, dense_lm_step(J, fx, prev, guess, x0, trust), atol=1e-10, rtol=0)


# ------------------------------------------------------------------ Jacobians and other cells
@pytest.mark.parametrize("name", ["gru", "tanh_rnn", "lstm"])
def test_analytic_diagonal_jacobians_equal_jacfwd(name):
    key = jax.random.PRNGKey(7)
    init = getattr(cells, f"init_{name}")
    params = init(key, 5, 2, scale=2.0, dtype=jnp.float64)
    D = 10 if name == "lstm" else 5
    cell = getattr(cells, name)
    rule = cells.DIAGONAL_JACOBIANS[cell]
    prev = jax.random.normal(jax.random.PRNGKey(8), (6, D))
    inputs = jax.random.normal(jax.random.PRNGKey(9), (6, 2))
    # each side jitted: one compiled program instead of dozens of op-by-op ones (same operations)
    dense = jnp.diagonal(jax.jit(dense_jacobians, static_argnums=0)(cell, params, prev, inputs), axis1=1, axis2=2)
    np.testing.assert_allclose(jax.jit(jax.vmap(rule, (None, 0, 0)))(params, prev, inputs), dense, atol=1e-12)
    np.testing.assert_allclose(jax.jit(probed_diagonal, static_argnums=0)(cell, params, prev, inputs), dense,
                               atol=1e-12)


@pytest.mark.parametrize("method", [DEER(), QuasiDEER()], ids=ids)
def test_lstm_states_equal_sequential(method):
    params = cells.init_lstm(jax.random.PRNGKey(1), 6, 2, dtype=jnp.float64)
    inputs = jax.random.normal(jax.random.PRNGKey(2), (200, 2))
    x0 = jnp.zeros(12)
    sol = evaluate(cells.lstm, x0, inputs, method, params=params)
    assert_clean(sol)
    np.testing.assert_allclose(sol.states, python_loop(cells.lstm, params, x0, inputs), atol=1e-6, rtol=0)


A_DRIFT = jnp.array([[-1.0, 2.0], [-2.0, -1.0]])


def drift_diagonal(x, u):
    """diag of d/dx [x + 0.05 A tanh(x)] = 1 + 0.05 A_ii (1 - tanh(x_i)^2)."""
    return 1 + 0.05 * jnp.diagonal(A_DRIFT) * (1 - jnp.tanh(x) ** 2)


@pytest.mark.parametrize("method", [QuasiDEER(), QuasiELK(parallel=False), QuasiDEER(diagonal_jacobian=drift_diagonal)],
                         ids=["QuasiDEER-probed", "QuasiELK-probed", "QuasiDEER-given-rule"])
def test_autonomous_drift(method):
    """A model's drift (Euler step of dx/dt = A tanh(x)), autonomous: (T, 0) inputs; the diagonal
    Jacobian probed, or given by the user with f's signature (x, u)."""
    A = A_DRIFT
    f = lambda x, u: x + 0.05 * A @ jnp.tanh(x)
    inputs = jnp.zeros((300, 0))
    x0 = jnp.array([1.0, -0.5])
    sol = evaluate(f, x0, inputs, method)
    assert_clean(sol)
    np.testing.assert_allclose(sol.states, python_loop(lambda p, x, u: f(x, u), None, x0, inputs), atol=1e-6)


def test_jit_and_vmap_over_initial_states():
    params, x0, inputs = gru_problem(4, T=100)
    x0s = jax.random.normal(jax.random.PRNGKey(3), (3, 4))
    run = jax.jit(jax.vmap(lambda x0: evaluate(cells.gru, x0, inputs, QuasiDEER(), params=params).states))
    expected = jnp.stack([python_loop(cells.gru, params, x, inputs) for x in x0s])
    np.testing.assert_allclose(run(x0s), expected, atol=1e-6, rtol=0)


# ------------------------------------------------------------------ bad input
def test_bad_input_raises_clear_errors():
    params, x0, inputs = gru_problem(4, T=10)
    with pytest.raises(ValueError, match="x0 must be a state vector"):
        evaluate(cells.gru, x0[None], inputs, params=params)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(cells.gru, x0.at[0].set(jnp.nan), inputs, params=params)
    with pytest.raises(ValueError, match="inputs contain NaN"):
        evaluate(cells.gru, x0, inputs.at[3, 1].set(jnp.inf), params=params)
    with pytest.raises(ValueError, match="same leading time axis"):
        evaluate(cells.gru, x0, {"a": inputs, "b": inputs[:5]}, params=params)
    with pytest.raises(ValueError, match="must return the next state"):
        evaluate(lambda x, u: x[:2], x0, inputs)
    with pytest.raises(ValueError, match="method must be one of"):
        evaluate(cells.gru, x0, inputs, "deer", params=params)
    with pytest.raises(ValueError, match="trust"):
        evaluate(cells.gru, x0, inputs, ELK(trust=0.0), params=params)
    with pytest.raises(ValueError, match="on_divergence"):
        evaluate(cells.gru, x0, inputs, DEER(on_divergence="ignore"), params=params)
    with pytest.raises(ValueError, match="guess must have shape"):
        evaluate(cells.gru, x0, inputs, DEER(), params=params, guess=jnp.zeros((9, 4)))
