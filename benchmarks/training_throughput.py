"""Training throughput: toolkit's MLPClassifier vs a hand-written torch loop.

Same net (64 -> 256 -> 128 -> 10, ReLU), same Adam settings, batch size and number of epochs,
on scikit-learn's digits tiled 10 times (17,970 rows). Runs alternate between the two and the
median of several repetitions is compared. Goal: ratio (toolkit / hand-written) <= 1.2.

    python benchmarks/training_throughput.py [--epochs 20] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from torch import nn

from toolkit.neural_network import MLPClassifier

HIDDEN = (256, 128)


def hand_written(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(64, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(), nn.Linear(HIDDEN[1], 10)
    )
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    started = time.perf_counter()
    X_t, y_t = torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    for _ in range(epochs):
        order = torch.randperm(len(X_t))
        running = 0.0
        for start in range(0, len(X_t), batch_size):
            index = order[start : start + batch_size]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(net(X_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
            running += loss.item() * len(index)
    return time.perf_counter() - started


def toolkit_fit(X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int) -> float:
    model = MLPClassifier(
        HIDDEN, batch_size=batch_size, max_epochs=epochs, n_iter_no_change=epochs + 1, random_state=0, device="cpu"
    )
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    elapsed = time.perf_counter() - started
    assert len(model.history_) == epochs
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    X, y = load_digits(return_X_y=True)
    X, y = np.tile(X / 16.0, (10, 1)), np.tile(y, 10)
    times = {"hand-written torch loop": [], "toolkit MLPClassifier": []}
    toolkit_fit(X[:500], y[:500], 1, args.batch_size)  # warm-up
    for _ in range(args.repeats):
        times["hand-written torch loop"].append(hand_written(X, y, args.epochs, args.batch_size))
        times["toolkit MLPClassifier"].append(toolkit_fit(X, y, args.epochs, args.batch_size))
    n_samples = len(X) * args.epochs
    print(
        f"digits x10: {len(X)} rows, {args.epochs} epochs, batch {args.batch_size}, torch threads "
        f"{torch.get_num_threads()}"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:26s} median {median:6.2f} s  ({n_samples / median:9.0f} samples/s)")
    ratio = statistics.median(times["toolkit MLPClassifier"]) / statistics.median(times["hand-written torch loop"])
    print(f"ratio toolkit / hand-written = {ratio:.3f}  (goal <= 1.2)")


if __name__ == "__main__":
    main()
