"""toolkit: statistical models as scikit-learn estimators, exported to validated ONNX.

The top-level package imports nothing heavy, so that ``toolkit.serving`` can be used on
a machine with onnxruntime, numpy and pandas only.
"""

__version__ = "0.1.0"


def show_config(mode: str = "stdout"):
    """Print (or with ``mode="dicts"`` return) versions, devices and which pass each family takes
    on this machine (see :func:`toolkit._config.show_config`)."""
    from toolkit._config import show_config as show

    return show(mode)
