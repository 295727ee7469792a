"""The shared inference core: pure, jit-able functions; knows nothing of models, files or plots."""

from ssmneuro.inference.scan import dense_scan, diagonal_scan
