"""Pre-LN causal Transformer decoder block with RoPE or ALiBi positions.

    x <- x + Attn(LN(x)),   x <- x + MLP(LN(x)),   Attn = softmax(q k^T / sqrt(d_h) + bias + causal mask) v

RoPE rotates (q, k) feature pairs by angle t * theta_i, theta_i = 10000^(-2i/d_h);
ALiBi adds bias -m_h (t - s) with head slopes m_h = 2^(-8 h / n_heads), h = 1..n_heads.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ssmneuro.seq.selective import _uniform, linear


def rope(x, base=10000.0):
    """Rotary embedding of x (T, n_heads, d_h), d_h even: pairs (x_{2i}, x_{2i+1}) rotated by t theta_i."""
    T, _, d = x.shape
    theta = base ** (-jnp.arange(0, d, 2) / d)
    angle = jnp.arange(T)[:, None, None] * theta  # (T, 1, d/2)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = jnp.cos(angle), jnp.sin(angle)
    return jnp.stack([x1 * c - x2 * s, x1 * s + x2 * c], -1).reshape(x.shape)


def alibi_bias(T, n_heads):
    """(n_heads, T, T) bias -m_h (t - s) for s <= t."""
    slopes = 2.0 ** (-8.0 * jnp.arange(1, n_heads + 1) / n_heads)
    dist = jnp.arange(T)[:, None] - jnp.arange(T)[None, :]
    return -slopes[:, None, None] * jnp.maximum(dist, 0)


def causal_attention(q, k, v, bias=None):
    """q, k, v (T, n_heads, d_h), bias (n_heads, T, T) or None -> (T, n_heads, d_h)."""
    T, _, d = q.shape
    scores = jnp.einsum("thd,shd->hts", q, k) / jnp.sqrt(d)
    if bias is not None:
        scores = scores + bias
    scores = jnp.where(jnp.tril(jnp.ones((T, T), bool)), scores, -jnp.inf)
    return jnp.einsum("hts,shd->thd", jax.nn.softmax(scores, axis=-1), v)


class LayerNorm(eqx.Module):
    scale: jax.Array
    offset: jax.Array

    def __init__(self, dim):
        self.scale, self.offset = jnp.ones(dim), jnp.zeros(dim)

    def __call__(self, x):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / jnp.sqrt(var + 1e-5) * self.scale + self.offset


class TransformerBlock(eqx.Module):
    """x (T, d) -> (T, d)."""

    ln1: LayerNorm
    ln2: LayerNorm
    qkv: jax.Array  # (3d, d)
    out: jax.Array  # (d, d)
    mlp_in: jax.Array  # (m d, d)
    mlp_out: jax.Array  # (d, m d)
    n_heads: int = eqx.field(static=True)
    positions: str = eqx.field(static=True)

    def __init__(self, d_model, n_heads=4, mlp_ratio=2, positions="rope", *, key):
        if positions not in ("rope", "alibi"):
            raise ValueError(f"positions must be 'rope' or 'alibi', got {positions!r}")
        if d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"d_model={d_model} must split into n_heads={n_heads} even-sized heads")
        k = jax.random.split(key, 4)
        self.ln1, self.ln2 = LayerNorm(d_model), LayerNorm(d_model)
        self.qkv = _uniform(k[0], (3 * d_model, d_model), d_model)
        self.out = _uniform(k[1], (d_model, d_model), d_model)
        self.mlp_in = _uniform(k[2], (mlp_ratio * d_model, d_model), d_model)
        self.mlp_out = _uniform(k[3], (d_model, mlp_ratio * d_model), mlp_ratio * d_model)
        self.n_heads, self.positions = n_heads, positions

    def attention(self, x):
        T, d = x.shape
        q, k, v = jnp.split(linear(self.qkv, None, x).reshape(T, 3 * self.n_heads, d // self.n_heads), 3, 1)
        if self.positions == "rope":
            q, k, bias = rope(q), rope(k), None
        else:
            bias = alibi_bias(T, self.n_heads)
        return linear(self.out, None, causal_attention(q, k, v, bias).reshape(T, d))

    def __call__(self, x):
        x = x + self.attention(self.ln1(x))
        return x + linear(self.mlp_out, None, jax.nn.gelu(linear(self.mlp_in, None, self.ln2(x))))
