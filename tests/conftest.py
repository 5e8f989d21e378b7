import os

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits():
    """The 8x8 digits scaled to [0, 1]: (X (1797, 64) float, y (1797,) int)."""
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    # Each xdist worker its share of the CPU budget (two workers with two threads each on two
    # cores oversubscribe the CPU and run several times slower): torch's threads, and through
    # OMP_NUM_THREADS the budget of every session and server process the tests start.
    from toolkit._cpu_budget import cpu_budget

    share = max(1, cpu_budget().threads // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    os.environ["OMP_NUM_THREADS"] = str(share)
    torch.set_num_threads(share)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped when torch sees no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
