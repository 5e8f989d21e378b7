"""``toolkit.show_config()``: versions, devices, and which pass each family takes on this machine."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import platform
import sys

from toolkit._cpu_budget import cpu_budget
from toolkit._version import __version__

DISTRIBUTIONS = ("torch", "onnxruntime", "numpy", "scikit-learn", "scipy", "pandas", "onnx", "skl2onnx")


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _devices() -> dict:
    import onnxruntime

    devices = {"onnxruntime_providers": onnxruntime.get_available_providers()}
    try:
        import torch
    except ImportError:
        devices["torch_cuda"] = "torch not installed"
        return devices
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        devices["torch_cuda"] = f"available: {', '.join(names)} (CUDA {torch.version.cuda})"
    else:
        devices["torch_cuda"] = "not available" + (
            f" (torch built for CUDA {torch.version.cuda})" if torch.version.cuda else " (a CPU build of torch)"
        )
    return devices


def _mixture_pass() -> str:
    try:
        from toolkit.mixture import _fused_pass
    except ImportError as error:
        return f"needs toolkit[train] ({error.name} missing)"
    kernel = _fused_pass.kernel
    if kernel is None:
        return "torch pass (the compiled EM kernel was not built: no C compiler at install, or see the import warning)"
    built = [name for name, compiled in kernel.builds().items() if compiled]
    running = kernel.instruction_set()
    if running == "none":
        return f"torch pass (this CPU runs none of the compiled builds: {built or 'none compiled'})"
    requested = _fused_pass.requested_build()
    chosen = running if requested == "auto" else f"{requested} ({_fused_pass.BUILD_VARIABLE}={requested})"
    return f"compiled EM kernel, {chosen} build (compiled builds: {', '.join(built)}); on CUDA: the torch pass"


def _ar_pass() -> str:
    try:
        from toolkit.timeseries import _ar_math
    except ImportError as error:
        return f"needs toolkit[train] ({error.name} missing)"
    if _ar_math.kernel is None:
        return (
            "numpy passes (the compiled AR kernel was not built: no C compiler at install, or see the import warning)"
        )
    return "compiled AR kernel (its loops cloned for AVX-512, AVX2 and baseline; the CPU's widest runs)"


def config() -> dict:
    """What :func:`show_config` prints, as a dict."""
    return {
        "toolkit": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": f"{platform.system()} {platform.machine()}",
        "versions": {name: _version(name) for name in DISTRIBUTIONS},
        "devices": _devices(),
        "passes": {"GaussianMixture": _mixture_pass(), "ARForecaster": _ar_pass()},
        "cpu_budget": dataclasses.asdict(cpu_budget()),
    }


def show_config(mode: str = "stdout") -> dict | None:
    """Print (or return) toolkit's build and run-time configuration.

    Versions of toolkit and the libraries it runs on, whether torch sees a CUDA device and
    which onnxruntime providers there are, the CPU budget (the threads toolkit's work uses, from
    the CPU affinity, a cgroup CPU quota or OMP_NUM_THREADS, and which decided), and which pass
    each family with a compiled kernel takes on this machine: GaussianMixture's compiled EM
    kernel (and its AVX-512 or AVX2 build) or the torch pass, ARForecaster's compiled kernel or
    numpy's passes.

    Parameters
    ----------
    mode : {"stdout", "dicts"}, default="stdout"
        Print the configuration, or return it as a dict (as ``numpy.show_config``).

    Returns
    -------
    dict or None
    """
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"mode must be 'stdout' or 'dicts', got {mode!r}")
    info = config()
    if mode == "dicts":
        return info
    print(f"toolkit {info['toolkit']}: Python {info['python']}, {info['platform']}")
    print("versions: " + ", ".join(f"{name} {version}" for name, version in info["versions"].items()))
    print(f"CUDA (torch): {info['devices']['torch_cuda']}")
    print(f"onnxruntime providers: {', '.join(info['devices']['onnxruntime_providers'])}")
    budget = info["cpu_budget"]
    print(f"CPU budget: {budget['threads']} thread(s) ({budget['source']})")
    for family, which in info["passes"].items():
        print(f"{family}: {which}")
    return None
