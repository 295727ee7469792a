"""ssmneuro.analysis"""
