"""Gaussian-process SDE models: GP-SDE (Duncker et al. 2019) and GP-SLDS (Hu et al. 2024)."""

from ssmneuro.models.gp.gpsde import GPSDE, GPSLDS, GPFitResult, GPSDEPosterior
from ssmneuro.models.gp.kernels import RBF, SSL, Linear, Sum
from ssmneuro.models.gp.variational import GPSDEParams

__all__ = ["GPSDE", "GPSLDS", "GPFitResult", "GPSDEPosterior", "GPSDEParams", "RBF", "SSL", "Linear", "Sum"]
