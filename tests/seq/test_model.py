"""Token models: causality for every arm; recurrent generation == parallel forward; transformer parts."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.seq.model import ARMS, build_model, count_params
from ssmneuro.seq.transformer import alibi_bias, causal_attention, rope

SMALL = dict(d_model=8, n_layers=2, state_dim=4, s5_state_dim=8, n_heads=2, num_cells=4)


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.mark.parametrize("arm", ARMS)
def test_every_arm_is_causal(arm):
    model = build_model(arm, 30, key=jax.random.PRNGKey(0), **SMALL)
    tokens = jax.random.randint(jax.random.PRNGKey(1), (12,), 0, 30)
    changed = tokens.at[7:].set((tokens[7:] + 5) % 30)
    a, b = eqx.filter_jit(jax.vmap(model))(jnp.stack([tokens, changed]))
    np.testing.assert_allclose(a[:7], b[:7], rtol=1e-10, atol=1e-10)
    assert np.abs(a[7:] - b[7:]).max() > 1e-6
    assert a.shape == (12, 30) and count_params(model) > 0


@pytest.mark.parametrize("arm", ["mamba", "nuwave-mamba", "nuwave-fixed1", "s5"])
def test_recurrent_generation_equals_parallel_forward(arm):
    model = build_model(arm, 30, key=jax.random.PRNGKey(2), **SMALL)
    tokens = jax.random.randint(jax.random.PRNGKey(3), (10,), 0, 30)

    def body(state, tok):
        return model.step(state, tok)

    _, logits = eqx.filter_jit(lambda: jax.lax.scan(body, model.init_state(), tokens))()
    np.testing.assert_allclose(logits, eqx.filter_jit(model.__call__)(tokens), rtol=1e-9, atol=1e-10)


def test_rope_scores_depend_only_on_offset():
    q = jax.random.normal(jax.random.PRNGKey(0), (1, 1, 8))
    k = jax.random.normal(jax.random.PRNGKey(1), (1, 1, 8))
    T = 9
    rq, rk = rope(jnp.tile(q, (T, 1, 1))), rope(jnp.tile(k, (T, 1, 1)))
    scores = np.einsum("thd,shd->ts", rq, rk)
    for offset in range(-3, 4):
        diag = np.diagonal(scores, offset)
        np.testing.assert_allclose(diag, diag[0], rtol=1e-10)
    np.testing.assert_allclose(rq[0], q[0], rtol=1e-12)  # position 0 is not rotated
    np.testing.assert_allclose(np.linalg.norm(rq, axis=-1), np.linalg.norm(q), rtol=1e-10)


def test_attention_with_alibi_equals_loop():
    T, H, d = 6, 2, 4
    q, k, v = (jax.random.normal(jax.random.PRNGKey(i), (T, H, d)) for i in range(3))
    got = causal_attention(q, k, v, alibi_bias(T, H))
    q, k, v = map(np.asarray, (q, k, v))
    slopes = 2.0 ** (-8.0 * np.arange(1, H + 1) / H)
    for t in range(T):
        for h in range(H):
            s = np.array([q[t, h] @ k[j, h] / np.sqrt(d) - slopes[h] * (t - j) for j in range(t + 1)])
            w = np.exp(s - s.max())
            w /= w.sum()
            np.testing.assert_allclose(got[t, h], w @ v[: t + 1, h], rtol=1e-10, atol=1e-12)


def test_bad_arm():
    with pytest.raises(ValueError, match="arm"):
        build_model("lstm", 30, key=jax.random.PRNGKey(0))


@pytest.mark.parametrize("arm", ARMS + ("nuwave-input",))
def test_no_parameter_is_weakly_typed(arm):
    """A weakly typed initial parameter makes the jitted train step compile twice (once for the initial
    model, again for the updated one); a nu-Wave velocity built with jnp.full(shape, float) did (~8 s)."""
    kwargs = dict(nu_mode="input") if arm == "nuwave-input" else {}
    model = build_model(arm.replace("-input", "-mamba"), 30, key=jax.random.PRNGKey(0), **SMALL, **kwargs)
    weak = [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_leaves_with_path(model)
            if isinstance(leaf, jax.Array) and leaf.weak_type]
    assert not weak, weak
