"""Numpy reference implementations of CS231n's layers, used as test oracles."""
