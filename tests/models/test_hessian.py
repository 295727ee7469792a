"""The block-tridiagonal precision used by Newton's method equals -jax.hessian of the expected log joint
(N=5, K=3, D=2, T=20; every emission family with recurrent transitions, every transition family with
Poisson emissions; 10% masked entries; padded steps in the recurrent cases; float64, rtol 1e-6)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models import RSLDS
from ssmneuro.models.components.transitions import FAMILIES as TRANSITIONS
from ssmneuro.models.fitting.estep import (StepData, estep_constants, expected_emission_log_prob, expected_log_joint,
                                          precision_blocks)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield

N, K, D, T = 5, 3, 2, 20


def dense(J_diag, J_lower):
    T, D, _ = J_diag.shape
    J = np.zeros((T * D, T * D))
    for t in range(T):
        J[t * D:(t + 1) * D, t * D:(t + 1) * D] = J_diag[t]
    for t in range(T - 1):
        J[(t + 1) * D:(t + 2) * D, t * D:(t + 1) * D] = J_lower[t]
        J[t * D:(t + 1) * D, (t + 1) * D:(t + 2) * D] = J_lower[t].T
    return J


def make_case(emissions, transitions, padded):
    U = 1 if transitions in ("inputdriven", "recurrent", "recurrent_only") else 0
    model = RSLDS(K, D, N, emissions=emissions, transitions=transitions, input_dim=U)
    keys = jax.random.split(jax.random.key(0), 8)
    p = model.random_params(keys[0], jnp.float64)
    if hasattr(p.transitions, "recurrent_weights"):
        p = p._replace(transitions=p.transitions._replace(
            recurrent_weights=jax.random.normal(keys[1], (K, D)), input_weights=jax.random.normal(keys[2], (K, U)),
            biases=jax.random.normal(keys[3], (K,))))
    x = jax.random.normal(keys[4], (T, D))
    if emissions == "gaussian":
        y = jax.random.normal(keys[5], (T, N))
    elif emissions == "poisson":
        y = jax.random.poisson(keys[5], 2.0, (T, N)).astype(jnp.float64)
    elif emissions == "bernoulli":
        y = jax.random.bernoulli(keys[5], 0.4, (T, N)).astype(jnp.float64)
    else:
        y = jnp.abs(jax.random.normal(keys[5], (T, N))) + 0.5
    valid = jnp.ones((T,)).at[T - 4:].set(0.0) if padded else jnp.ones((T,))
    masks = jax.random.bernoulli(keys[6], 0.9, (T, N)).astype(jnp.float64) * valid[:, None]
    u = jax.random.normal(keys[7], (T, U))
    step = StepData(y, jnp.concatenate([y[:1], y[:-1]]), masks, u, valid)
    probs = jax.random.dirichlet(keys[1], jnp.ones(K), (T,))
    pairs = jax.random.dirichlet(keys[2], jnp.ones(K * K), (T - 1,)).reshape(T - 1, K, K)
    return model, p, x, step, probs, pairs


CASES = [(e, "recurrent") for e in ("gaussian", "poisson", "bernoulli", "calcium")] + [
    ("poisson", t) for t in TRANSITIONS if t != "recurrent"]


@pytest.mark.parametrize("emissions,transitions", CASES)
def test_block_hessian_matches_autodiff(emissions, transitions):
    model, p, x, step, probs, pairs = make_case(emissions, transitions, padded=transitions in ("recurrent", "recurrent_only"))
    J_diag, J_lower = jax.jit(precision_blocks, static_argnums=0)(model, p, x, step, probs, pairs)
    f = lambda flat: expected_log_joint(model, p, flat.reshape(T, D), step, probs, pairs)
    H = jax.jit(jax.hessian(f))(x.reshape(-1))
    np.testing.assert_allclose(dense(np.asarray(J_diag), np.asarray(J_lower)), -np.asarray(H),
                               rtol=1e-6, atol=1e-9 * np.abs(H).max())


def test_gaussian_emission_quadratic_equals_generic_path():
    """Newton's fast path: the constants built once per E-step (the quadratic form of Gaussian emissions with
    diagonal R, and the precisions of Q_k and Sigma_k) give the same L(x), gradient, block precision and expected
    emission term of the ELBO as the per-neuron log-density and precisions computed on the spot, masked entries
    included (NaN there does not leak into the quadratic)."""
    model, p, x, step, probs, pairs = make_case("gaussian", "recurrent", padded=True)
    consts = estep_constants(model, p, step._replace(emissions=jnp.where(step.masks > 0, step.emissions, jnp.nan)))
    assert consts.emissions is not None
    assert estep_constants(RSLDS(K, D, N, emissions="poisson"), p, step).emissions is None
    generic = lambda z: expected_log_joint(model, p, z, step, probs, pairs)
    fast = lambda z: expected_log_joint(model, p, z, step, probs, pairs, consts)
    np.testing.assert_allclose(fast(x), generic(x), rtol=1e-12)
    np.testing.assert_allclose(jax.grad(fast)(x), jax.grad(generic)(x), rtol=1e-10, atol=1e-12)
    for a, b in zip(precision_blocks(model, p, x, step, probs, pairs, consts),
                    precision_blocks(model, p, x, step, probs, pairs)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    A = jax.random.normal(jax.random.key(9), (T, D, D))
    covs = A @ jnp.swapaxes(A, -1, -2) + 0.1 * jnp.eye(D)  # E_q[log p(y | x)] under q(x_t) = N(x_t, covs_t)
    np.testing.assert_allclose(expected_emission_log_prob(model, p, x, covs, step, consts.emissions),
                               expected_emission_log_prob(model, p, x, covs, step), rtol=1e-12)


@pytest.mark.parametrize("transitions", TRANSITIONS)
def test_expected_log_transitions_equal_the_per_step_matrices(transitions):
    """The decomposed sum_ij pairs_tij log p_t[i, j] (logits and row log-normalisers, no (T, K, K) log matrices)
    and the vectorised log matrices equal per-step matrices written from the definitions, whose rows are
    normalised probabilities (float64)."""
    from ssmneuro.models.components import transitions as trans

    model, p, x, step, probs, pairs = make_case("poisson", transitions, padded=False)
    if transitions in ("recurrent", "inputdriven"):  # an unnormalised log P: the rows still normalise
        p = p._replace(transitions=p.transitions._replace(
            log_transition_matrix=jax.random.normal(jax.random.key(3), (K, K))))
    tp = p.transitions

    def reference(x_t, u_t):  # the module docstring's definitions, one step at a time
        if transitions in ("standard", "sticky"):
            return jax.nn.log_softmax(tp.log_transition_matrix, -1)
        logits = tp.input_weights @ u_t
        if transitions != "inputdriven":
            logits = logits + tp.recurrent_weights @ x_t + tp.biases
        log_P = 0.0 if transitions == "recurrent_only" else tp.log_transition_matrix
        return jax.nn.log_softmax(log_P + jnp.broadcast_to(logits, (K, K)), -1)

    per_step = np.stack([reference(x[t], step.inputs[t]) for t in range(T - 1)])
    np.testing.assert_allclose(np.exp(per_step).sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(trans.log_transition_matrices(transitions, p.transitions, x, step.inputs), per_step,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(trans.log_transition_matrix_at(transitions, p.transitions, x[3], step.inputs[3]),
                               per_step[3], rtol=1e-12, atol=1e-12)
    terms = trans.expected_log_transition_terms(transitions, p.transitions, x[:-1], step.inputs[:-1], pairs)
    np.testing.assert_allclose(terms, np.sum(np.asarray(pairs) * per_step, (1, 2)), rtol=1e-12)
    np.testing.assert_allclose(trans.expected_log_transitions(transitions, p.transitions, x, step.inputs, pairs),
                               np.sum(np.asarray(pairs) * per_step), rtol=1e-12)
