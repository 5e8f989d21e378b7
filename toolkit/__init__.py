"""toolkit: statistical models as scikit-learn estimators, exported to validated ONNX.

The top-level package imports nothing heavy, so that ``toolkit.serving`` can be used on
a machine with onnxruntime, numpy and pandas only.
"""

from toolkit._version import __version__

__all__ = ["__version__", "all_estimators", "show_config"]


def show_config(mode: str = "stdout"):
    """Print (or with ``mode="dicts"`` return) versions, devices and which pass each family takes
    on this machine (see :func:`toolkit._config.show_config`)."""
    from toolkit._config import show_config as show

    return show(mode)


def all_estimators(type_filter: str | None = None) -> list[tuple[str, type]]:
    """(name, class) of every public estimator (see :func:`toolkit._registry.all_estimators`)."""
    from toolkit._registry import all_estimators as find

    return find(type_filter)


def __getattr__(name: str):
    """The scale-out errors, imported on use (``DataParallelError`` needs torch)."""
    if name == "DataParallelError":
        from toolkit._distributed import DataParallelError

        return DataParallelError
    if name == "ClusterLost":
        from toolkit._dask import ClusterLost

        return ClusterLost
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")
