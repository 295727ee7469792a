"""Parameter recovery for Poisson, Bernoulli and calcium emissions (LDS fitted by Laplace-EM from the
default initialisation): the dynamics eigenvalues come within 0.02 of the truth; calcium also recovers
the per-neuron indicator decays (within 0.05)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssmneuro.models import LDS


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield

TRUE_A = 0.97 * np.array([[np.cos(0.15), -np.sin(0.15)], [np.sin(0.15), np.cos(0.15)]])
SIZES = {"poisson": (1500, 20), "bernoulli": (2500, 40), "calcium": (1500, 20)}


def simulate(emissions):
    T, N = SIZES[emissions]
    model = LDS(latent_dim=2, emission_dim=N, emissions=emissions)
    p = model.random_params(jax.random.key(0), jnp.float64)
    C = jax.random.normal(jax.random.key(5), (N, 2)) * (1.0 if emissions == "bernoulli" else 0.5)
    e = p.emissions._replace(weights=C, biases=jnp.full((N,), 0.5 if emissions == "poisson" else 0.0))
    if emissions == "calcium":
        e = e._replace(decays=jnp.linspace(0.7, 0.95, N), noise=jnp.full((N,), 0.05))
    p = p._replace(dynamics=p.dynamics._replace(weights=jnp.asarray(TRUE_A)[None], covs=0.02 * jnp.eye(2)[None]),
                   emissions=e)
    _, _, y = model.sample(p, jax.random.key(2), T)
    return model, p, np.asarray(y)


@pytest.mark.parametrize("emissions", ["poisson", "bernoulli", "calcium"])
def test_dynamics_eigenvalues_recovered(emissions):
    model, p, y = simulate(emissions)
    result = model.fit(y, key=jax.random.key(3), num_iters=12, verbose=False)
    true = np.sort_complex(np.linalg.eigvals(TRUE_A))
    fit = np.sort_complex(np.linalg.eigvals(np.asarray(result.params.dynamics.weights[0])))
    assert np.max(np.abs(true - fit)) < 0.02, (true, fit)
    if emissions == "calcium":
        np.testing.assert_allclose(result.params.emissions.decays, p.emissions.decays, atol=0.05)
