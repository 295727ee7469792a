"""ssmneuro.plotting"""
