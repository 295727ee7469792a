"""ssmneuro.seq"""
from ssmneuro.seq import parallel_rnn  # noqa: F401  (issue 7: DEER / quasi-DEER / ELK / quasi-ELK)
