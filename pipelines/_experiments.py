"""CS231n's normalisation and regularisation experiments (assignment 2: batch norm and
initialisation, batch norm / layer norm and batch size, dropout, convnets) on the 8x8 digits:
each returns a tidy table, a figure and a check of what the assignment predicts (agree /
disagree, with the figures behind it)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from toolkit.neural_network import CNNClassifier, MLPClassifier


@dataclass
class Experiment:
    """One experiment's outcome: ``table`` (tidy, one row per run or epoch), whether the run
    agrees with the prediction, the sentence saying so with its figures, and ``draw(fig)``."""

    name: str
    title: str
    table: pd.DataFrame
    agrees: bool
    check: str
    draw: Callable


def digits_split(seed: int = 0):
    """Pixels scaled to [0, 1], 75 % / 25 % stratified."""
    digits = load_digits()
    return train_test_split(
        digits.data / 16.0, digits.target, test_size=0.25, random_state=seed, stratify=digits.target
    )


def _fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # fixed budgets, on purpose
        return model.fit(X, y)


def _fixed_budget(epochs: int) -> dict:
    return {"max_epochs": epochs, "n_iter_no_change": epochs, "random_state": 0, "device": "cpu"}


def _final(model, X_val, y_val) -> dict:
    last = model.history_[-1]
    return {
        "train_accuracy": last["train_metric"],
        "val_accuracy": model.score(X_val, y_val),
        "loss": last["train_loss"],
    }


def _curves(model, **labels) -> list[dict]:
    return [
        {**labels, "epoch": h["epoch"], "train_accuracy": h["train_metric"], "val_accuracy": h["valid_metric"]}
        for h in model.history_
    ]


# ----------------------------------------------------------------------------- 1
def batch_norm_vs_init_scale(full: bool) -> Experiment:
    """A 6-layer MLP with and without batch norm, weights from N(0, scale^2)."""
    X_train, X_val, y_train, y_val = digits_split()
    scales = np.logspace(-4, 0, 9 if full else 5)
    rows = []
    for norm in ("batch", None):
        for scale in scales:
            model = MLPClassifier(
                (100,) * 5, norm=norm, weight_scale=float(scale), batch_size=50, **_fixed_budget(20 if full else 10)
            )
            rows.append(
                {"norm": norm or "none", "weight_scale": scale, **_final(_fit(model, X_train, y_train), X_val, y_val)}
            )
    table = pd.DataFrame(rows)
    bn, plain = (table[table["norm"] == k].set_index("weight_scale") for k in ("batch", "none"))
    collapsed = plain["train_accuracy"] < 0.3
    agrees = bool(
        collapsed.any() and (bn["train_accuracy"][collapsed] > 0.8).all() and bn["train_accuracy"].min() > 0.8
    )
    check = (
        f"batch norm trains at every scale (training accuracy {bn['train_accuracy'].min():.2f} .. "
        f"{bn['train_accuracy'].max():.2f}); without it {int(collapsed.sum())} of {len(scales)} scales stay at chance "
        f"(training accuracy {plain['train_accuracy'].min():.2f} at scale {plain['train_accuracy'].idxmin():.0e})"
    )

    def draw(fig):
        axes = fig.subplots(1, 3)
        for ax, column in zip(axes, ("train_accuracy", "val_accuracy", "loss")):
            for label, part in (("batch norm", bn), ("no norm", plain)):
                ax.semilogx(part.index, part[column], "o-", label=label)
            ax.set_xlabel("weight scale")
            ax.set_title(column.replace("_", " "))
        axes[2].set_yscale("log")
        axes[0].legend()

    return Experiment("1_bn_init_scale", "1. batch norm vs weight-init scale (6-layer MLP)", table, agrees, check, draw)


# ----------------------------------------------------------------------------- 2
def normalisation_vs_batch_size(full: bool) -> Experiment:
    """A 5-layer MLP with batch norm, layer norm or none, trained for the same epochs at each batch size."""
    X_train, X_val, y_train, y_val = digits_split()
    sizes = (5, 10, 50, 200) if full else (5, 10, 50)
    rows, curves = [], []
    for norm in ("batch", "layer", None):
        for size in sizes:
            model = MLPClassifier(
                (100,) * 4,
                norm=norm,
                batch_size=size,
                early_stopping=True,  # a held-out fifth of the training rows gives the curves
                validation_fraction=0.2,
                restore_best_weights=False,
                **_fixed_budget(30 if full else 15),
            )
            model = _fit(model, X_train, y_train)
            rows.append({"norm": norm or "none", "batch_size": size, **_final(model, X_val, y_val)})
            curves += _curves(model, norm=norm or "none", batch_size=size)
    table = pd.DataFrame(rows)
    val = table.pivot(index="batch_size", columns="norm", values="val_accuracy")
    small, large = sizes[0], sizes[-1]
    bn_drop = val.loc[large, "batch"] - val.loc[small, "batch"]
    ln_drop = val.loc[large, "layer"] - val.loc[small, "layer"]
    agrees = bool(bn_drop > 0.005 and ln_drop < bn_drop)
    check = (
        f"from batch size {large} to {small} batch norm's validation accuracy goes {val.loc[large, 'batch']:.3f} -> "
        f"{val.loc[small, 'batch']:.3f}, layer norm's {val.loc[large, 'layer']:.3f} -> {val.loc[small, 'layer']:.3f}"
    )
    curve_table = pd.DataFrame(curves)

    def draw(fig):
        axes = fig.subplots(1, len(sizes), sharey=True)
        for ax, size in zip(axes, sizes):
            for norm, part in curve_table[curve_table["batch_size"] == size].groupby("norm"):
                ax.plot(part["epoch"], part["val_accuracy"], label=norm)
            ax.set_title(f"batch size {size}")
            ax.set_xlabel("epoch")
        axes[0].set_ylabel("validation accuracy")
        axes[0].legend()

    return Experiment("2_norm_batch_size", "2. normalisation vs batch size", table, agrees, check, draw)


# ----------------------------------------------------------------------------- 3
def _flip_labels(y, fraction: float, rng) -> np.ndarray:
    """Move ``fraction`` of the labels to another class, drawn uniformly."""
    y = y.copy()
    flipped = rng.random(len(y)) < fraction
    y[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    return y


def dropout_keep_probability(full: bool) -> Experiment:
    """Dropout's keep probability against the train / validation accuracy gap, each point the mean
    of three training subsets and seeds, in two settings:

    - the assignment's own (500 clean samples, one hidden layer of 512, 25 epochs at batch 100): on the
      digits its 125 Adam steps do not reach overfitting (train ~0.96, validation ~0.93 without
      dropout), so dropout has little gap to narrow and mostly costs accuracy on both;
    - an overfitting one (300 samples with 20 % of their labels moved to another class, two layers
      of 512, 60 epochs at batch 50): without dropout the net memorises the wrong labels (train
      1.0, validation ~0.81). The check is made here, where the prediction has something to act
      on: dropout narrows the gap without costing validation accuracy.
    """
    X_train, X_val, y_train, y_val = digits_split()
    keeps = (0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.0) if full else (0.25, 0.5, 1.0)
    settings = {
        "assignment: 500 clean samples, 512": (500, 0.0, (512,), 100, 5e-4, 25),
        "overfitting: 300 samples, 20 % wrong labels, 512 x 2": (300, 0.2, (512, 512), 50, 1e-3, 60),
    }
    rows = []
    for name, (n, noise, hidden, batch, rate, epochs) in settings.items():
        for seed in range(3):
            rng = np.random.default_rng(seed)
            subset = rng.permutation(len(X_train))[:n]
            labels = _flip_labels(y_train[subset], noise, rng)
            for keep in keeps:
                budget = {**_fixed_budget(epochs), "random_state": seed}
                model = MLPClassifier(hidden, dropout=1 - keep, batch_size=batch, learning_rate=rate, **budget)
                fitted = _fit(model, X_train[subset], labels)
                rows.append({"setting": name, "seed": seed, "keep_probability": keep, **_final(fitted, X_val, y_val)})
    table = pd.DataFrame(rows)
    table["gap"] = table["train_accuracy"] - table["val_accuracy"]
    means = table.groupby(["setting", "keep_probability"], sort=False)[["gap", "val_accuracy"]].mean()
    overfitting = means.loc[list(settings)[1]]
    low = min(keeps)
    agrees = bool(
        overfitting.loc[low, "gap"] < overfitting.loc[1.0, "gap"]
        and overfitting.loc[low, "val_accuracy"] >= overfitting.loc[1.0, "val_accuracy"]
    )

    def summary(name: str) -> str:
        without, with_ = means.loc[(name, 1.0)], means.loc[(name, low)]
        return (
            f"{name}: gap {without['gap']:.3f} without dropout, {with_['gap']:.3f} at keep {low} "
            f"(validation {without['val_accuracy']:.3f} -> {with_['val_accuracy']:.3f})"
        )

    check = "; ".join(summary(name) for name in settings)

    def draw(fig):
        axes = fig.subplots(1, len(settings), squeeze=False)[0]
        for ax, name in zip(axes, settings):
            part = table[table["setting"] == name].groupby("keep_probability")
            for column, label in (("train_accuracy", "train"), ("val_accuracy", "validation")):
                ax.errorbar(
                    part[column].mean().index, part[column].mean(), yerr=part[column].std(), fmt="o-", label=label
                )
            ax.set_xlabel("keep probability")
            ax.set_ylabel("accuracy (mean of 3 seeds)")
            ax.set_title(name, fontsize=8)
            ax.legend()

    return Experiment("3_dropout", "3. dropout against the train / validation gap", table, agrees, check, draw)


# ----------------------------------------------------------------------------- 4
def three_layer_convnet_overfits(full: bool) -> Experiment:
    X_train, X_val, y_train, y_val = digits_split()
    X_small, y_small = X_train[:100], y_train[:100]
    model = CNNClassifier(
        channels=(32,),
        kernel_size=3,
        norm=None,
        pool="max",
        head="flatten",
        dense=(100,),
        image_shape=(8, 8),
        batch_size=50,
        **_fixed_budget(60),
    )
    model = _fit(model, X_small, y_small)
    table = pd.DataFrame(_curves(model))
    table["val_accuracy"] = np.nan
    final = _final(model, X_val, y_val)
    agrees = bool(final["train_accuracy"] == 1.0 and final["val_accuracy"] < 0.95)
    reached = table.loc[table["train_accuracy"] == 1.0, "epoch"]
    check = (
        f"training accuracy {final['train_accuracy']:.2f} on the 100 samples "
        f"({'from epoch ' + str(int(reached.iloc[0])) if len(reached) else 'never 1.0'}), validation "
        f"{final['val_accuracy']:.2f}"
    )

    def draw(fig):
        ax = fig.subplots()
        ax.plot(table["epoch"], table["train_accuracy"], label="train (100 samples)")
        ax.axhline(final["val_accuracy"], color="C1", linestyle="--", label="validation, final")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.legend()

    return Experiment("4_convnet_overfit", "4. three-layer convnet overfits 100 samples", table, agrees, check, draw)


# ----------------------------------------------------------------------------- 5
def convnet_normalisations(full: bool) -> Experiment:
    X_train, X_val, y_train, y_val = digits_split()
    rows, curves = [], []
    for norm in ("batch", "layer", "group", "instance"):
        model = CNNClassifier(
            channels=(16, 32),
            norm=norm,
            groups=4,
            image_shape=(8, 8),
            batch_size=50,
            early_stopping=True,
            validation_fraction=0.2,
            restore_best_weights=False,
            **_fixed_budget(40 if full else 25),
        )
        model = _fit(model, X_train, y_train)
        rows.append({"norm": norm, **_final(model, X_val, y_val)})
        curves += _curves(model, norm=norm)
    table = pd.DataFrame(rows).set_index("norm")
    accuracy = table["val_accuracy"]
    agrees = bool(accuracy.min() >= 0.95 and abs(accuracy["group"] - accuracy["batch"]) <= 0.02)
    check = "every normalisation trains the convnet, group norm close to batch norm: validation accuracy " + ", ".join(
        f"{k} {v:.3f}" for k, v in accuracy.items()
    )
    curve_table = pd.DataFrame(curves)

    def draw(fig):
        ax = fig.subplots()
        for norm, part in curve_table.groupby("norm"):
            ax.plot(part["epoch"], part["val_accuracy"], label=norm)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy")
        ax.legend()

    return Experiment("5_convnet_norms", "5. normalisations in a convnet", table.reset_index(), agrees, check, draw)


EXPERIMENTS = [
    batch_norm_vs_init_scale,
    normalisation_vs_batch_size,
    dropout_keep_probability,
    three_layer_convnet_overfits,
    convnet_normalisations,
]
