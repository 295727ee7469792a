"""ssmneuro.seq"""
