"""ssmneuro: state space models for neuroscience and machine learning, on one JAX inference core.

The public face: ``LDS``, ``SLDS``, ``RSLDS``, ``GPSLDS``, ``GPSDE``, ``save``, ``load``,
``enable_compilation_cache``. Sub-packages:
``inference`` (the core), ``models``, ``analysis``, ``plotting``, ``seq``, ``io``.
Names are imported lazily, so ``import ssmneuro`` stays fast and light.
"""

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "LDS": "ssmneuro.models",
    "SLDS": "ssmneuro.models",
    "RSLDS": "ssmneuro.models",
    "save": "ssmneuro.models",
    "load": "ssmneuro.models",
    "GPSLDS": "ssmneuro.models.gp",
    "GPSDE": "ssmneuro.models.gp",
    "enable_compilation_cache": "ssmneuro.config",
}

__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ssmneuro' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
