"""fit(tol=...) stops early once converged; enable_compilation_cache lets a new process skip compilation."""

import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import ssmneuro
from ssmneuro.models import LDS, RSLDS
from ssmneuro.models.fitting.loop import PATIENCE, converged


def test_converged_rule():
    rising = np.array([-100.0, -50.0, -20.0, -10.0, -5.0, -2.0])
    flat = np.array([-10.0, -9.99999, -9.99999, -9.99998, -9.99998, -9.99998])
    assert not converged(rising, 1e-4)
    assert converged(flat, 1e-4)
    assert not converged(flat, None)
    assert not converged(flat[:PATIENCE], 1e-4)  # too few iterations to judge
    # several fits: all must have converged; a fit still at -inf has not
    assert not converged(np.stack([flat, rising]), 1e-4)
    assert not converged(np.stack([flat, np.full(6, -np.inf)]), 1e-4)


@pytest.fixture(scope="module")
def lds_data():
    model = LDS(latent_dim=2, emission_dim=4)
    params = model.random_params(jax.random.key(0))
    _, _, y = model.sample(params, jax.random.key(1), 300)
    return model, np.asarray(y)


def test_tol_stops_exact_em_early(lds_data):
    model, y = lds_data
    full = model.fit(y, key=jax.random.key(2), num_iters=150, verbose=False)
    early = model.fit(y, key=jax.random.key(2), num_iters=150, verbose=False, tol=1e-4)
    n = len(early.elbos)
    assert PATIENCE < n < 150
    np.testing.assert_allclose(early.elbos, full.elbos[:n], rtol=1e-6)  # the same iterations, cut short
    best = np.maximum.accumulate(full.elbos)
    assert converged(best[:n], 1e-4)  # it stopped at the first iteration where the rule holds
    assert not any(converged(best[:k], 1e-4) for k in range(1, n))


def test_tol_validation(lds_data):
    model, y = lds_data
    with pytest.raises(ValueError, match="tol"):
        model.fit(y, key=jax.random.key(0), tol=-1.0, verbose=False)


def test_tol_with_many_fits():
    model = RSLDS(2, 2, 3, transitions="recurrent_only")
    params = model.random_params(jax.random.key(0))
    _, _, y = model.sample(params, jax.random.key(1), 120)
    res = model.fit(np.asarray(y), key=jax.random.key(3), num_iters=60, num_fits=2, tol=1e-3, verbose=False)
    assert res.all_elbos.shape[0] == 2 and res.all_elbos.shape[1] == len(res.elbos) <= 60


SCRIPT = textwrap.dedent("""
    import sys, jax, numpy as np
    import ssmneuro
    from jax import monitoring
    hits = []
    monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
    ssmneuro.enable_compilation_cache(sys.argv[1], min_compile_seconds=0.0)
    model = ssmneuro.LDS(latent_dim=2, emission_dim=3)
    y = np.asarray(model.sample(model.random_params(jax.random.key(0)), jax.random.key(1), 50)[2])
    model.fit(y, key=jax.random.key(2), num_iters=3, verbose=False)
    print("HITS", len(hits))
""")


def test_compilation_cache_is_reused_by_a_new_process(tmp_path):
    run = lambda: subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "xla")], capture_output=True,
                                 text=True, check=True).stdout
    first = run()
    assert any((tmp_path / "xla").iterdir()), "nothing was written to the cache"
    second = run()
    assert int(first.split("HITS")[1]) == 0 and int(second.split("HITS")[1]) > 0, (first, second)




def test_screened_fits_keep_the_best_early_elbo_and_equal_a_plain_fit():
    model = RSLDS(2, 2, 3, transitions="recurrent_only")
    params = model.random_params(jax.random.key(0))
    _, _, y = model.sample(params, jax.random.key(1), 120)
    y = np.asarray(y)
    key = jax.random.key(5)
    res = model.fit(y, key=key, num_iters=8, num_fits=3, screen_iters=3, verbose=False)
    assert res.all_elbos.shape == (3, 3)
    assert res.kept_fit == int(np.argmax(res.all_elbos.max(1)))
    plain = model.fit(y, key=jax.random.split(key, 3)[res.kept_fit], num_iters=8, verbose=False)
    np.testing.assert_allclose(res.elbos, plain.elbos, rtol=1e-6)
    np.testing.assert_allclose(res.elbos[:3], res.all_elbos[res.kept_fit], rtol=1e-6)
    with pytest.raises(ValueError, match="screen_iters"):
        model.fit(y, key=key, num_iters=8, num_fits=3, screen_iters=9, verbose=False)
