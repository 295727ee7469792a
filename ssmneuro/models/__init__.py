"""ssmneuro.models"""
