"""Token-level sequence models built from the layers: embed -> residual blocks -> norm -> logits.

Arms (``build_model(arm, ...)``):
    transformer-rope, transformer-alibi   pre-LN causal Transformer
    mamba                                  selective block, width-4 causal conv
    nuwave-mamba                           selective block, conv replaced by a learned nu-Wave SSM
    nuwave-fixed1                          the same with nu = 1 fixed (shift-SSM = width-N conv control)
    s5                                     S5 layer + GELU + weighted GLU
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp

from ssmneuro.seq.s5 import S5
from ssmneuro.seq.selective import MambaBlock, _uniform, linear
from ssmneuro.seq.transformer import LayerNorm, TransformerBlock

ARMS = ("transformer-rope", "transformer-alibi", "mamba", "nuwave-mamba", "nuwave-fixed1", "s5")


class ResidualBlock(eqx.Module):
    """x + layer(LN(x)), and its recurrent step when the layer has one."""

    norm: LayerNorm
    layer: eqx.Module

    def __call__(self, x):
        return x + self.layer(self.norm(x))

    def init_state(self):
        return self.layer.init_state()

    def step(self, state, x):
        state, y = self.layer.step(state, self.norm(x))
        return state, x + y


class S5Mixer(eqx.Module):
    """y = gelu(S5(u)); y * sigmoid(W y) (S5's weighted GLU)."""

    s5: S5
    glu: jax.Array  # (H, H)

    def __init__(self, dim, state_dim=64, parallel=True, *, key):
        k1, k2 = jax.random.split(key)
        self.s5 = S5(dim, state_dim, parallel=parallel, key=k1)
        self.glu = _uniform(k2, (dim, dim), dim)

    def _glu(self, y):
        y = jax.nn.gelu(y)
        return y * jax.nn.sigmoid(linear(self.glu, None, y))

    def __call__(self, u):
        return self._glu(self.s5(u))

    def init_state(self):
        return self.s5.init_state()

    def step(self, state, u):
        state, y = self.s5.step(state, u)
        return state, self._glu(y)


class SequenceModel(eqx.Module):
    """tokens (T,) int -> logits (T, vocab)."""

    embed: jax.Array  # (vocab, d)
    blocks: tuple
    norm: LayerNorm
    head: jax.Array  # (vocab, d)

    def __call__(self, tokens):
        x = self.embed[tokens]
        for block in self.blocks:
            x = block(x)
        return linear(self.head, None, self.norm(x))

    def init_state(self):
        return tuple(b.init_state() for b in self.blocks)

    def step(self, state, token):
        """Recurrent generation step (SSM arms): state, token () -> (new state, logits (vocab,))."""
        x = self.embed[token]
        new = []
        for s, block in zip(state, self.blocks):
            s, x = block.step(s, x)
            new.append(s)
        return tuple(new), linear(self.head, None, self.norm(x))


def wave_options(num_cells=8, num_velocities=1, nu_mode="channel", nu_init=0.5):
    """Keyword arguments of WaveSSM for nu-Wave Mamba."""
    return dict(num_cells=num_cells, num_velocities=num_velocities, mode=nu_mode, nu_init=nu_init)


def build_model(arm, vocab_size, *, key, d_model=64, n_layers=2, state_dim=16, s5_state_dim=64, n_heads=4,
                num_cells=8, num_velocities=1, nu_mode="channel", nu_init=0.5, conv_width=4, parallel=True):
    """A SequenceModel for one of ``ARMS`` (see the module docstring)."""
    if arm not in ARMS:
        raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")
    keys = jax.random.split(key, n_layers + 2)

    def layer(k):
        if arm.startswith("transformer"):
            return TransformerBlock(d_model, n_heads, positions=arm.split("-")[1], key=k)
        if arm == "s5":
            return S5Mixer(d_model, s5_state_dim, parallel=parallel, key=k)
        if arm == "mamba":
            return MambaBlock(d_model, state_dim=state_dim, mixer="conv", conv_width=conv_width,
                              parallel=parallel, key=k)
        if arm == "nuwave-fixed1":
            wave = dict(num_cells=num_cells, num_velocities=1, mode="fixed", fixed_nu=1.0)
        else:
            wave = wave_options(num_cells, num_velocities, nu_mode, nu_init)
        return MambaBlock(d_model, state_dim=state_dim, mixer="wave", wave_kwargs=wave, parallel=parallel, key=k)

    blocks = tuple(
        layer(k) if arm.startswith("transformer") else ResidualBlock(LayerNorm(d_model), layer(k))
        for k in keys[:n_layers]
    )
    embed = jax.random.normal(keys[-2], (vocab_size, d_model)) * 0.02 * jnp.sqrt(d_model)
    head = _uniform(keys[-1], (vocab_size, d_model), d_model)
    return SequenceModel(embed, blocks, LayerNorm(d_model), head)


def count_params(model):
    """Number of scalar parameters (inexact arrays) in a module."""
    return sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array)))
