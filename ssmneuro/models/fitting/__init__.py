"""Fitting: exact EM (Gaussian LDS), Laplace-EM (SLDS / rSLDS), initialisation, M-steps."""
