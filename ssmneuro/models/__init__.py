"""ssmneuro.models: switching linear dynamical systems (LDS, SLDS, recurrent SLDS).

Public names are loaded lazily so that ``import ssmneuro.models`` (which ``ssmneuro.models.gp`` does
first) stays light and never fails while optional parts are being built.
"""

import importlib

_PUBLIC = {
    "LDS": "ssmneuro.models.slds",
    "SLDS": "ssmneuro.models.slds",
    "RSLDS": "ssmneuro.models.slds",
    "FitResult": "ssmneuro.models.params",
    "Posterior": "ssmneuro.models.params",
    "SLDSParams": "ssmneuro.models.params",
    "save": "ssmneuro.models.io",
    "load": "ssmneuro.models.io",
}

__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ssmneuro.models' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
