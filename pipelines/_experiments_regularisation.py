"""CS231n's dropout and convnet experiments (assignment 2) on the 8x8 digits: dropout in the
assignment's own setting and in an overfitting one of ours, a three-layer convnet overfitting 100
samples, and batch, group and layer norm in a convnet over several seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.jobs import import_file
from toolkit.neural_network import CNNClassifier, MLPClassifier

kit = import_file(Path(__file__).with_name("_experiment_kit.py"))

KEEP = 0.25  # the assignment's dropout choice, a keep probability, against 1 (no dropout)


def _flip_labels(y, fraction: float, rng) -> np.ndarray:
    """Move ``fraction`` of the labels to another class, drawn uniformly."""
    y = y.copy()
    flipped = rng.random(len(y)) < fraction
    y[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    return y


def _dropout_runs(setting: dict, seeds: int) -> pd.DataFrame:
    X_train, X_val, y_train, y_val = kit.digits_split()
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        subset = rng.permutation(len(X_train))[: setting["n"]]
        labels = _flip_labels(y_train[subset], setting["noise"], rng)
        for keep in (1.0, KEEP):
            model = MLPClassifier(
                setting["hidden"],
                dropout=1 - keep,
                batch_size=setting["batch"],
                learning_rate=setting["rate"],
                **kit.fixed_budget(setting["epochs"], seed),
            )
            fitted = kit.fit(model, X_train[subset], labels)
            ten = fitted.history_[min(9, len(fitted.history_) - 1)]["train_metric"]
            rows.append(
                {
                    "seed": seed,
                    "keep_probability": keep,
                    "train_accuracy_epoch_10": ten,
                    **kit.final(fitted, X_val, y_val),
                }
            )
    table = pd.DataFrame(rows)
    table["gap"] = table["train_accuracy"] - table["val_accuracy"]
    return table


def _dropout_draw(table: pd.DataFrame, title: str):
    def draw(fig):
        ax = fig.subplots()
        means = table.groupby("keep_probability")[["train_accuracy", "val_accuracy"]]
        for column, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
            ax.errorbar(means.mean().index, means.mean()[column], yerr=means.std()[column], fmt="o-", label=label)
        ax.set_xlabel("keep probability (1: no dropout)")
        ax.set_ylabel("accuracy (mean over seeds)")
        ax.set_title(title, fontsize=8)
        ax.legend()

    return draw


def dropout(size: str) -> list:
    """The assignment's setting (500 samples, one hidden layer of 512, 25 epochs of batch 100,
    Adam at 5e-4, keep 0.25 against none) and an overfitting one of ours (300 samples with a
    fifth of their labels moved to another class, two layers of 512, 60 epochs of batch 50)."""
    seeds = kit.pick(size, 2, 3, 5)
    notes = _dropout_runs({"n": 500, "noise": 0.0, "hidden": (512,), "batch": 100, "rate": 5e-4, "epochs": 25}, seeds)
    ours = _dropout_runs(
        {"n": 300, "noise": 0.2, "hidden": (512, 512), "batch": 50, "rate": 1e-3, "epochs": kit.pick(size, 40, 60, 60)},
        seeds,
    )

    def summary(table):
        means = table.groupby("keep_probability").mean()
        return means.loc[1.0], means.loc[KEEP]

    without, with_ = summary(notes)
    overfits = without["train_accuracy_epoch_10"] >= 0.98 and without["gap"] >= 0.1
    regularises = with_["val_accuracy"] > without["val_accuracy"] and with_["gap"] < without["gap"]
    verdict = ("agree" if regularises else "disagree") if overfits else "inconclusive"
    figures = (
        f"without dropout training accuracy {without['train_accuracy_epoch_10']:.3f} at epoch 10, "
        f"{without['train_accuracy']:.3f} at the end, validation {without['val_accuracy']:.3f} (gap "
        f"{without['gap']:.3f}); with keep {KEEP}: training {with_['train_accuracy']:.3f}, validation "
        f"{with_['val_accuracy']:.3f} (gap {with_['gap']:.3f}); means over {seeds} seeds"
    )
    measured = (
        figures if overfits else f"the setting does not overfit the digits, so dropout has no gap to close: {figures}"
    )
    claim = (
        "Without dropout the training accuracy races to about 1.0 within 10 epochs while the validation "
        "accuracy stays far below it; with dropout the training accuracy stays lower (about 0.9) and the "
        "validation accuracy is higher, the gap smaller: dropout acts as a regulariser."
    )
    without, with_ = summary(ours)
    our_verdict = (
        "agree" if with_["gap"] < without["gap"] and with_["val_accuracy"] >= without["val_accuracy"] else "disagree"
    )
    our_measured = (
        f"without dropout training {without['train_accuracy']:.3f}, validation {without['val_accuracy']:.3f} "
        f"(gap {without['gap']:.3f}); with keep {KEEP}: training {with_['train_accuracy']:.3f}, validation "
        f"{with_['val_accuracy']:.3f} (gap {with_['gap']:.3f}); means over {seeds} seeds"
    )
    our_claim = (
        "(our own setting, not the assignment's) Where a net overfits, 300 samples with a fifth of "
        "their labels wrong and two layers of 512, dropout narrows the train / validation gap without "
        "costing validation accuracy."
    )
    return [
        kit.Experiment(
            "5_dropout",
            "5. dropout, the assignment's setting",
            claim,
            verdict,
            measured,
            notes,
            _dropout_draw(notes, "500 samples, 512 hidden, 25 epochs of batch 100"),
        ),
        kit.Experiment(
            "6_dropout_overfitting",
            "6. dropout, an overfitting setting of ours",
            our_claim,
            our_verdict,
            our_measured,
            ours,
            _dropout_draw(ours, "300 samples, 20 % wrong labels, 512 x 2"),
        ),
    ]


def three_layer_convnet_overfits(size: str) -> list:
    """CS231n's three-layer convnet (conv - relu - 2x2 max pool - affine - relu - affine) on 100 samples."""
    X_train, X_val, y_train, y_val = kit.digits_split()
    X_small, y_small = X_train[:100], y_train[:100]
    model = CNNClassifier(
        channels=(32,),
        kernel_size=7,
        norm=None,
        pool="max",
        head="flatten",
        dense=(100,),
        image_shape=(8, 8),
        batch_size=50,
        **kit.fixed_budget(kit.pick(size, 40, 60, 60)),
    )
    model = kit.fit(model, X_small, y_small)
    table = pd.DataFrame(kit.curves(model))
    last = kit.final(model, X_val, y_val)
    verdict = "agree" if last["train_accuracy"] == 1.0 and last["val_accuracy"] < 0.95 else "disagree"
    reached = table.loc[table["train_accuracy"] == 1.0, "epoch"]
    measured = (
        f"training accuracy {last['train_accuracy']:.2f} on the 100 samples "
        f"({'from epoch ' + str(int(reached.iloc[0])) if len(reached) else 'never 1.0'}), validation "
        f"{last['val_accuracy']:.2f}"
    )

    def draw(fig):
        ax = fig.subplots()
        ax.plot(table["epoch"], table["train_accuracy"], label="train (100 samples)")
        ax.axhline(last["val_accuracy"], color="C1", linestyle="--", label="validation, final")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.legend()

    claim = "The three-layer convnet overfits 100 training samples: training accuracy 1.0, validation far lower."
    return [
        kit.Experiment(
            "7_convnet_overfit", "7. three-layer convnet on 100 samples", claim, verdict, measured, table, draw
        )
    ]


def convnet_normalisations(size: str) -> list:
    """A two-block convnet with batch, group (4 groups) or layer norm, over several seeds."""
    X_train, X_val, y_train, y_val = kit.digits_split()
    seeds = kit.pick(size, 3, 3, 5)
    rows = []
    for seed in range(seeds):
        for norm in ("batch", "group", "layer"):
            model = CNNClassifier(
                channels=(16, 32),
                norm=norm,
                groups=4,
                image_shape=(8, 8),
                batch_size=50,
                **kit.fixed_budget(kit.pick(size, 10, 10, 25), seed),
            )
            rows.append({"seed": seed, "norm": norm, **kit.final(kit.fit(model, X_train, y_train), X_val, y_val)})
    table = pd.DataFrame(rows)
    stats = table.groupby("norm")["val_accuracy"].agg(["mean", "std"])
    noise = float(2 * stats["std"].max() / np.sqrt(seeds))  # two standard errors of the noisiest mean
    batch, group, layer = (stats.loc[k, "mean"] for k in ("batch", "group", "layer"))
    if batch - layer <= noise:
        verdict = "inconclusive" if abs(batch - layer) <= noise else "disagree"
    else:
        verdict = "agree" if layer - noise <= group <= batch + noise else "disagree"
    measured = (
        "validation accuracy over "
        f"{seeds} seeds (mean +- std): "
        + ", ".join(f"{k} {stats.loc[k, 'mean']:.3f} +- {stats.loc[k, 'std']:.3f}" for k in ("batch", "group", "layer"))
        + f"; noise (two standard errors) {noise:.3f}"
    )

    def draw(fig):
        ax = fig.subplots()
        for k, norm in enumerate(("layer", "group", "batch")):
            values = table.loc[table["norm"] == norm, "val_accuracy"]
            ax.plot([k] * len(values), values, "o", alpha=0.6)
            ax.errorbar(k, values.mean(), yerr=values.std(), fmt="_", color="black", markersize=20)
        ax.set_xticks(range(3), ["layer", "group", "batch"])
        ax.set_ylabel("validation accuracy, per seed")

    claim = (
        "Layer norm does worse than batch norm in a convnet (units near the image border are rarely active "
        "and have statistics unlike the others, which layer norm pools together); group norm is the "
        "compromise between them."
    )
    return [kit.Experiment("8_convnet_norms", "8. normalisations in a convnet", claim, verdict, measured, table, draw)]
