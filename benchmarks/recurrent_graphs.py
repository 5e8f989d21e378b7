"""Recurrent graphs under onnxruntime: today's export (LSTM and GRU layers as ONNX's operators,
Elman layers as a MatMul and a Scan) against torch's traced export of the same net (the one
before, which could fix the time axis to the example's length, so it is exported here at
each length measured).

RNNClassifier, 64 hidden units, 8 features per step, each cell one- and two-directional; batch
1 and 64, sequence lengths 8 and 64; one intra-op thread; both graphs timed interleaved, the
median of 7 rounds of 50 runs each. Outputs are checked equal first.

    python benchmarks/recurrent_graphs.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
import warnings

import numpy as np
import onnxruntime as ort
from torch import nn

from toolkit._export_spec import InferenceSpec, OutputSpec
from toolkit.neural_network import RNNClassifier
from toolkit.nn.heads import ClassifierOutput, InputReshape
from toolkit.onnx import export, load
from toolkit.onnx._torch_graph import torch_to_onnx


def session(model_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def traced_graph(model: RNNClassifier, steps: int) -> bytes:
    """The export before: torch's exporter over the whole net, traced at ``steps`` steps."""
    net = nn.Sequential(InputReshape((-1, 8)), copy.deepcopy(model.module_).cpu().eval(), ClassifierOutput()).eval()
    spec = InferenceSpec(
        module=net,
        sample_shape=(None, 8),
        outputs=[OutputSpec("label", None, 1, exact=True), OutputSpec("probabilities", None, 2)],
        example=np.zeros((2, steps, 8), dtype=np.float32),
        classes=np.arange(10),
    )
    return torch_to_onnx(spec).SerializeToString()


def median_ms(run, rounds: int, calls: int = 50) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        times.append((time.perf_counter() - started) / calls * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    X, y = rng.random((400, 16, 8)).astype(np.float32), rng.integers(0, 10, 400)
    print(f"{'cell':5s} {'dirs':>4s} {'T':>3s} {'batch':>5s} {'traced ms':>10s} {'operators ms':>13s} {'ratio':>6s}")
    for cell in ("rnn", "lstm", "gru"):
        for bidirectional in (False, True):
            model = RNNClassifier(64, cell=cell, bidirectional=bidirectional, max_epochs=1, random_state=0).fit(X, y)
            with tempfile.TemporaryDirectory() as folder:
                export(model, folder)
                ours = load(folder, intra_op_num_threads=1).session
            for steps in (8, 64):
                theirs = session(traced_graph(model, steps))
                for batch in (1, 64):
                    rows = rng.random((batch, steps, 8)).astype(np.float32)
                    a, b = ours.run(["probabilities"], {"X": rows})[0], theirs.run(["probabilities"], {"X": rows})[0]
                    np.testing.assert_allclose(a, b, atol=1e-5)
                    old, new = [], []
                    for _ in range(args.rounds):  # interleaved rounds
                        old += median_ms(lambda: theirs.run(None, {"X": rows}), 1)
                        new += median_ms(lambda: ours.run(None, {"X": rows}), 1)
                    old_ms, new_ms = statistics.median(old), statistics.median(new)
                    directions = 2 if bidirectional else 1
                    print(
                        f"{cell:5s} {directions:>4d} {steps:>3d} {batch:>5d} {old_ms:>10.3f} {new_ms:>13.3f} "
                        f"{old_ms / new_ms:>5.2f}x"
                    )


if __name__ == "__main__":
    main()
