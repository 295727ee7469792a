"""Shared reference for the seq layer tests: the recurrent step loop."""

import equinox as eqx
import jax


@eqx.filter_jit
def step_loop(layer, xs):
    """The recurrent reference: ``layer.step`` over xs (T, ...) from ``layer.init_state()``."""
    return jax.lax.scan(lambda s, x: layer.step(s, x), layer.init_state(), xs)[1]
