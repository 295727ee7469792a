"""The copy task of Jelassi et al. (2024): data, loss and metrics, all jit-able.

Tokens: letters 0..25, START "$" = 26, SEP "|" = 27, END "." = 28, PAD = 29. An example is "$s|s." with
|s| uniform on 1..L; training rows pack consecutive examples into a context (the last one cut off). The
loss counts the answer tokens (the copy) and the final END token.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NUM_LETTERS = 26
START, SEP, END, PAD = 26, 27, 28, 29
VOCAB_SIZE = 30


def example_tokens(offset, length, letters):
    """Token at position ``offset`` of "$s|s." with s = letters[:length]; PAD beyond the end.

    offset, length: int arrays (broadcast); letters (..., Lmax). Returns (tokens, is_answer) where is_answer
    marks the copy and the END token.
    """
    first = jnp.take_along_axis(letters, jnp.clip(offset - 1, 0, letters.shape[-1] - 1)[..., None], -1)[..., 0]
    second = jnp.take_along_axis(letters, jnp.clip(offset - length - 2, 0, letters.shape[-1] - 1)[..., None],
                                 -1)[..., 0]
    tok = jnp.where(offset == 0, START, PAD)
    tok = jnp.where((offset >= 1) & (offset <= length), first, tok)
    tok = jnp.where(offset == length + 1, SEP, tok)
    tok = jnp.where((offset >= length + 2) & (offset <= 2 * length + 1), second, tok)
    tok = jnp.where(offset == 2 * length + 2, END, tok)
    is_answer = (offset >= length + 2) & (offset <= 2 * length + 2)
    return tok, is_answer


def packed_row(key, context, max_len):
    """One context of ``context + 1`` tokens packed with examples: (tokens (C+1,), is_answer (C+1,))."""
    num = context // 5 + 2  # shortest example "$a|a." has 5 tokens
    k_len, k_let = jax.random.split(key)
    lengths = jax.random.randint(k_len, (num,), 1, max_len + 1)
    letters = jax.random.randint(k_let, (num, max_len), 0, NUM_LETTERS)
    ends = jnp.cumsum(2 * lengths + 3)
    pos = jnp.arange(context + 1)
    which = jnp.searchsorted(ends, pos, side="right")
    offset = pos - (ends[which] - (2 * lengths[which] + 3))
    return example_tokens(offset, lengths[which], letters[which])


def training_batch(key, batch_size, context, max_len):
    """inputs (B, C), targets (B, C), loss mask (B, C) for next-token prediction on packed contexts."""
    tokens, is_answer = jax.vmap(packed_row, (0, None, None))(jax.random.split(key, batch_size), context, max_len)
    return tokens[:, :-1], tokens[:, 1:], is_answer[:, 1:]


def eval_set(key, num_strings, length):
    """Fixed evaluation strings, one "$s|s." per row with |s| = length: tokens (B, 2 length + 3), mask."""
    letters = jax.random.randint(key, (num_strings, length), 0, NUM_LETTERS)
    offset = jnp.arange(2 * length + 3)
    tokens, is_answer = example_tokens(offset[None], jnp.full((num_strings, 1), length), letters[:, None, :]
                                       .repeat(2 * length + 3, 1))
    return tokens, is_answer


def masked_cross_entropy(logits, targets, mask):
    """Mean of -log p(target) over positions where mask is True. logits (..., V)."""
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
    return jnp.sum(nll * mask) / jnp.maximum(jnp.sum(mask), 1)


def copy_accuracy(predictions, targets, mask):
    """(string accuracy, character accuracy) of predicted answer tokens (B, T) against targets.

    String: every answer token (copy and END) right. Character: fraction of copied letters right.
    """
    right = (predictions == targets) | ~mask
    letters = mask & (targets != END)
    string = jnp.mean(jnp.all(right, axis=-1))
    char = jnp.sum((predictions == targets) & letters) / jnp.maximum(jnp.sum(letters), 1)
    return string, char


def greedy_copy(model_fn, tokens, length):
    """Greedy generation of the answer after the prompt "$s|": returns generated tokens (B, 2 length + 3).

    model_fn maps tokens (B, T) -> logits (B, T, V) causally (a full forward per generated token).
    """
    prompt_len = length + 2
    buf = jnp.where(jnp.arange(tokens.shape[1]) < prompt_len, tokens, PAD)

    def body(t, buf):
        nxt = jnp.argmax(model_fn(buf)[:, t - 1], -1)
        return buf.at[:, t].set(nxt)

    return jax.lax.fori_loop(prompt_len, tokens.shape[1], body, buf)
