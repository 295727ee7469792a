"""Hygiene shared by every test module."""

import gc

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
