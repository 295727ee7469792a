"""fitting_jit: jax.jit whose top-level CPU compilations carry CPU_COMPILER_OPTIONS, and that still nests."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models.fitting import jit as fjit


def _poly(x, power):
    return jnp.sum(x**power) + jnp.cumsum(x)[-1]


def test_same_values_as_jax_jit_and_lower_works():
    f = partial(fjit.fitting_jit, static_argnums=(1,))(_poly)
    x = jnp.linspace(-1.0, 2.0, 7)
    np.testing.assert_allclose(f(x, 3), jax.jit(_poly, static_argnums=(1,))(x, 3), rtol=1e-6)
    np.testing.assert_allclose(f.lower(x, 3).compile()(x), f(x, 3), rtol=1e-6)


def test_options_reach_top_level_cpu_compilations_only(monkeypatch):
    """With an option XLA does not know, a top-level call must fail (so the options are passed) while the same
    function called inside another jit or vmap must not (JAX forbids options on a nested jit)."""
    if jax.default_backend() != "cpu":
        pytest.skip("the options apply on the CPU")
    monkeypatch.setattr(fjit, "CPU_COMPILER_OPTIONS", {"xla_no_such_option_for_the_test": True})
    f = fjit.fitting_jit(lambda x: 2.0 * x)
    x = jnp.arange(3.0)
    with pytest.raises(Exception, match="xla_no_such_option_for_the_test"):
        f(x)
    np.testing.assert_allclose(jax.jit(lambda y: f(y) + 1.0)(x), 2.0 * x + 1.0)
    np.testing.assert_allclose(jax.vmap(f)(x), 2.0 * x)


def test_real_options_compile_and_agree():
    f = fjit.fitting_jit(lambda a: jnp.linalg.cholesky(a @ a.T + jnp.eye(4)))
    a = jax.random.normal(jax.random.key(0), (4, 4))
    np.testing.assert_allclose(f(a), jnp.linalg.cholesky(a @ a.T + jnp.eye(4)), rtol=1e-5, atol=1e-6)
