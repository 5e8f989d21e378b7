"""toolkit: statistical models as scikit-learn estimators, exported to validated ONNX.

The top-level package imports nothing heavy, so that ``toolkit.serving`` can be used on
a machine with onnxruntime, numpy and pandas only.
"""

__version__ = "0.1.0"
