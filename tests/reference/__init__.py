"""Numpy reference implementations of the notes' layers, used as test oracles."""
