"""Copy task: data layout against a Python parser, greedy == teacher-forced string accuracy, smoke runs."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.seq import copy as copy_cli
from ssmneuro.seq.copy_data import END, SEP, START, copy_accuracy, eval_set, greedy_copy, training_batch
from ssmneuro.seq.model import ARMS


def test_packed_rows_parse_into_copies():
    inputs, targets, mask = map(np.asarray, training_batch(jax.random.PRNGKey(0), 8, 60, 7))
    for row in range(8):
        seq = np.concatenate([inputs[row, :1], targets[row]])
        answer = np.concatenate([[False], mask[row]])
        expected_answer = np.zeros_like(answer)
        starts = np.flatnonzero(seq == START)
        assert starts[0] == 0
        for s in starts:
            sep = s + 1 + np.argmax(seq[s + 1 :] == SEP) if np.any(seq[s + 1 :] == SEP) else None
            if sep is None or sep >= len(seq):
                continue
            n = sep - s - 1
            assert 1 <= n <= 7 and np.all(seq[s + 1 : sep] < 26)
            copy = seq[sep + 1 : sep + 1 + n]
            np.testing.assert_array_equal(copy, seq[s + 1 : s + 1 + len(copy)])
            expected_answer[sep + 1 : min(sep + 2 + n + 1 - 1, len(seq))] = True
            if sep + 1 + n < len(seq):
                assert seq[sep + 1 + n] == END
        np.testing.assert_array_equal(answer, expected_answer)


def _oracle(length, wrong_rows=None):
    """A causal copier: predicts token t - length at position t (END after the copy); optionally wrong."""

    def model_fn(buf):
        T = buf.shape[1]
        src = jnp.take(buf, jnp.clip(jnp.arange(T) - length, 0, T - 1), axis=1)
        pred = jnp.where(src == SEP, END, src)
        if wrong_rows is not None:  # corrupt the first copied letter on some rows
            pred = pred.at[:, length + 1].set(jnp.where(wrong_rows, (pred[:, length + 1] + 1) % 26,
                                                         pred[:, length + 1]))
        return jax.nn.one_hot(pred, 30)

    return model_fn


@pytest.mark.parametrize("corrupt", [False, True])
def test_greedy_string_accuracy_equals_teacher_forced(corrupt):
    L = 6
    tokens, ans = eval_set(jax.random.PRNGKey(0), 32, L)
    wrong = (tokens[:, 1] < 10) if corrupt else None
    fn = _oracle(L, wrong)
    tf_pred = jnp.argmax(fn(tokens[:, :-1]), -1)
    tf = copy_accuracy(tf_pred, tokens[:, 1:], ans[:, 1:])
    gen = greedy_copy(fn, tokens, L)
    greedy = copy_accuracy(gen[:, 1:], tokens[:, 1:], ans[:, 1:])
    expected = 1.0 - (float(np.mean(wrong)) if corrupt else 0.0)
    np.testing.assert_allclose([tf[0], greedy[0]], expected)
    if corrupt:  # teacher forcing: one letter of L wrong on the corrupted rows; greedy copies from the prompt
        np.testing.assert_allclose(tf[1], 1 - np.mean(wrong) / L)


def test_nu_lr_scale_multiplies_only_the_velocity_steps():
    """--nu-lr-scale: the same gradients give nu-logit steps scaled by the factor and every other step unchanged."""
    import equinox as eqx
    from ssmneuro.seq.model import build_model

    model = build_model("nuwave-mamba", 30, key=jax.random.PRNGKey(0), d_model=8, n_layers=1, state_dim=2, num_cells=3)
    params = eqx.filter(model, eqx.is_inexact_array)
    grads = jax.tree.map(lambda p: 1e-3 * jnp.ones_like(p), params)
    steps = {}
    for scale in (1.0, 10.0):
        opt = copy_cli.make_optimiser(1e-2, 100, warmup=1, nu_lr_scale=scale)
        _, state = opt.update(grads, opt.init(params), params)  # step 0 of the warm-up has learning rate 0
        steps[scale], _ = opt.update(grads, state, params)
    mask = copy_cli.velocity_mask(params)
    flags = jax.tree.leaves(mask)
    assert sum(flags) == 1  # one WaveSSM, one nu_logit array
    for flag, s1, s10 in zip(flags, jax.tree.leaves(steps[1.0]), jax.tree.leaves(steps[10.0])):
        assert np.max(np.abs(s1)) > 0
        np.testing.assert_allclose(s10, 10.0 * s1 if flag else s1, rtol=1e-6)


def test_smoke_every_arm_learns(tmp_path):
    """~200 steps with tiny models: the training loss drops for every arm (CI smoke test)."""
    tiny = dict(d_model=16, n_layers=1, state_dim=4, s5_state_dim=16, n_heads=2, num_cells=4)
    for arm in ARMS:
        res = copy_cli.train_copy(arm, max_len=4, seed=0, steps=200, batch_size=16, lr=1e-2, eval_every=100,
                                  eval_size=32, model_kwargs=tiny, verbose=False, length_factors=())
        first, last = res["curve"][0]["train_loss"], res["curve"][-1]["train_loss"]
        assert last < first - 0.3, (arm, first, last)
        assert np.isfinite(res["curve"][-1]["eval_loss"])  # greedy generation: test_cli_writes_json


def test_cli_writes_json(tmp_path):
    out = tmp_path / "run.json"
    copy_cli.main(["--model", "nuwave-mamba", "--max-len", "3", "--steps", "4", "--eval-every", "2",
                   "--eval-size", "8", "--gen-eval-size", "4", "--d-model", "8", "--layers", "1", "--cells", "3",
                   "--state-dim", "2", "--out", str(out)])
    res = json.loads(out.read_text())
    assert res["model"] == "nuwave-mamba" and len(res["curve"]) == 2 and set(res["final"]) == {"L3", "L6", "L12"}
    with pytest.raises(SystemExit):
        copy_cli.main(["--model", "rnn", "--out", str(out)])
