"""Captioning throughput: CaptionGenerator's greedy decoding in torch vs its exported ONE-graph
decoder (encoder + Loop) under onnxruntime.

A captioner trained briefly on generated shape scenes (its captions end after 4 to 12 words,
as a trained model's do) captions held-out images at batch 1 and 64: ``model.predict`` (torch,
with input validation and the word lookup) against ``toolkit.onnx.load(folder).predict``
(onnxruntime, with its shape checks; the words are joined inside the graph). Both on the same
threads, timed interleaved (median of 7 rounds). Goal: ONNX >= 2x faster at batch 1 and no
slower at 64.

    python benchmarks/captioning.py [--scenes 6000] [--epochs 5]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings

import numpy as np
import torch
from _timing import interleaved_ms

from toolkit.datasets import make_shape_scenes
from toolkit.neural_network import CaptionGenerator
from toolkit.onnx import export, load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=6000, help="training scenes")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    X, captions, _ = make_shape_scenes(args.scenes, random_state=0)
    X_test, _, _ = make_shape_scenes(64, random_state=1)
    model = CaptionGenerator(
        channels=(16, 32), batch_size=64, max_epochs=args.epochs, lr_schedule="cosine", random_state=0, device="cpu"
    )
    model.fit(X, captions)
    lengths = [len(c.split()) for c in model.predict(X_test)]
    words = f"{min(lengths)}-{max(lengths)} words"
    print(f"captioner: {args.scenes} scenes, {args.epochs} epochs; held-out captions of {words}")
    print(f"torch threads {torch.get_num_threads()}; onnxruntime threads: its default (the same cores)")
    with tempfile.TemporaryDirectory() as folder:
        export(model, folder)
        onnx_model = load(folder)
        assert np.array_equal(onnx_model.predict(X_test).astype(str), model.predict(X_test).astype(str))
        for batch in (1, 64):
            rows = X_test[:batch]
            per_round = 50 if batch == 1 else 5
            torch_ms, onnx_ms = interleaved_ms(
                [lambda: model.predict(rows), lambda: onnx_model.predict(rows)], per_round=per_round
            )
            print(
                f"batch {batch:3d}: torch {torch_ms:8.2f} ms ({batch / torch_ms * 1e3:8.0f} captions/s)   "
                f"onnxruntime {onnx_ms:8.2f} ms ({batch / onnx_ms * 1e3:8.0f} captions/s)   "
                f"ratio torch/onnx {torch_ms / onnx_ms:5.2f}x"
                f"   (goal {'>= 2x' if batch == 1 else '>= 1x'})"
            )


if __name__ == "__main__":
    main()
