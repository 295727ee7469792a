"""Hygiene shared by every test module."""

import gc
import os

# Compile with LLVM at -O0: most of the suite's time is XLA:CPU compiling small programs, and the backend's
# optimisation level is ~60% of that (the copy task's train step: 12 s -> 4.5 s). The HLO programs and their
# floating-point semantics are unchanged (no fast-math at any level); only the machine code is less optimised,
# which the suite's small problems barely notice. Set before JAX starts its backend; notebook kernels inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip()

import jax
import pytest


@pytest.fixture(scope="module", autouse=True)
def release_compiled_code():
    """Free each module's compiled XLA executables once the module is done.

    XLA:CPU keeps the machine code of every compiled program in its own memory mappings. A long-lived
    pytest-xdist worker that compiles a few thousand programs passes Linux's default limit of 65,530
    mappings per process (``vm.max_map_count``); the next compilation then segfaults inside XLA.
    Clearing JAX's caches between modules keeps a worker at a few thousand mappings.
    """
    yield
    jax.clear_caches()
    gc.collect()


def pytest_xdist_make_scheduler(config, log):
    """Under ``--dist loadfile``, each notebook is a work unit of its own (not the whole test_notebooks.py).

    Every notebook runs in its own kernel and shares nothing with the others; as one unit the six (~7 min)
    ran on one worker at the end of the run while the other worker idled.
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class NotebooksApart(LoadFileScheduling):
        def _split_scope(self, nodeid):
            return nodeid if nodeid.startswith("tests/test_notebooks.py::") else super()._split_scope(nodeid)

    return NotebooksApart(config, log)
