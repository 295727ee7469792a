"""ssmneuro.io"""
