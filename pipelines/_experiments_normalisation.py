"""CS231n's normalisation experiments with fully connected nets (assignment 2) on the 8x8 digits:
batch norm against the weight-init scale, batch norm and layer norm against the batch size, and
layer norm against the width it normalises (the notebook's inline question 3)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from toolkit.jobs import import_file
from toolkit.neural_network import MLPClassifier

kit = import_file(Path(__file__).with_name("_experiment_kit.py"))


# ----------------------------------------------------------------------------- init scale
HORIZON = 6  # epochs over which the loss curves are compared (the CI budget's)


def batch_norm_vs_init_scale(size: str) -> list:
    """A 6-layer net (five hidden layers of 100) with and without batch norm, weights from
    N(0, scale^2): the training loss per epoch and the final accuracies at each scale."""
    X_train, X_val, y_train, y_val = kit.digits_split()
    scales = np.logspace(-4, 0, 9)
    epochs = kit.pick(size, 6, 10, 20)
    rows, curves = [], []
    for norm in ("batch", None):
        for scale in scales:
            model = MLPClassifier(
                (100,) * 5, norm=norm, weight_scale=float(scale), batch_size=50, **kit.fixed_budget(epochs)
            )
            model = kit.fit(model, X_train, y_train)
            losses = [h["train_loss"] for h in model.history_][:HORIZON]  # the same horizon at every size
            ratio = losses[-1] / losses[0] if np.isfinite(losses[-1]) else np.inf
            rows.append(
                {"norm": norm or "none", "weight_scale": scale, "loss_ratio": ratio, **kit.final(model, X_val, y_val)}
            )
            curves += kit.curves(model, norm=norm or "none", weight_scale=scale)
    table = pd.DataFrame(rows)
    bn, plain = (table[table["norm"] == k].set_index("weight_scale") for k in ("batch", "none"))
    bn_falls = bool((bn["loss_ratio"] < 0.5).all())
    stalls = plain["loss_ratio"] > 0.5  # not even halved: falls very slowly, or diverges (above 1, or inf)
    verdict = "agree" if bn_falls and stalls.sum() * 2 >= len(scales) else "disagree"
    measured = (
        f"training loss at epoch {HORIZON} / epoch 1 with batch norm {bn['loss_ratio'].min():.2f} .. "
        f"{bn['loss_ratio'].max():.2f} (training accuracy {bn['train_accuracy'].min():.2f} .. "
        f"{bn['train_accuracy'].max():.2f}); without it the loss does not halve at "
        f"{int(stalls.sum())} of {len(scales)} scales (ratios "
        + ", ".join(f"{s:.0e}: {r:.2f}" for s, r in plain["loss_ratio"].items())
        + ")"
    )
    curve_table = pd.DataFrame(curves)

    def draw(fig):
        axes = fig.subplots(1, 3)
        for ax, norm in zip(axes[:2], ("batch", "none")):
            for scale, part in curve_table[curve_table["norm"] == norm].groupby("weight_scale"):
                ax.semilogy(part["epoch"], part["train_loss"], label=f"{scale:.0e}")
            ax.set_title(f"training loss, {'batch norm' if norm == 'batch' else 'no norm'}")
            ax.set_xlabel("epoch")
        axes[0].legend(title="weight scale", fontsize=7)
        for label, part in (("batch norm", bn), ("no norm", plain)):
            axes[2].semilogx(part.index, part["val_accuracy"], "o-", label=label)
        axes[2].set_xlabel("weight scale")
        axes[2].set_title("validation accuracy")
        axes[2].legend()

    claim = (
        "Without batch norm the training loss falls very slowly at most weight scales (vanishing "
        "gradients) or diverges at large ones; with batch norm it falls at every scale."
    )
    return [
        kit.Experiment(
            "1_bn_init_scale", "1. batch norm vs weight-init scale", claim, verdict, measured, curve_table, draw
        )
    ]


# ----------------------------------------------------------------------------- batch size
def normalisation_vs_batch_size(size: str) -> list:
    """The assignment's setting: 1,000 training samples, five hidden layers of 100, weights at
    scale 2e-2, Adam at 1e-3; batch norm and layer norm at batch sizes 5, 10 and 50 against the
    net without normalisation at batch size 5. Validation curves on a held-out fifth."""
    X_train, X_val, y_train, y_val = kit.digits_split()
    X_train, y_train = X_train[:1000], y_train[:1000]
    epochs = kit.pick(size, 6, 10, 20)
    sizes = (5, 10, 50)
    runs = [("none", 5)] + [(norm, b) for norm in ("batch", "layer") for b in sizes]
    rows, curves = [], []
    for norm, batch in runs:
        model = MLPClassifier(
            (100,) * 5,
            norm=None if norm == "none" else norm,
            weight_scale=2e-2,
            batch_size=batch,
            **kit.held_out_curves(),
            **kit.fixed_budget(epochs),
        )
        model = kit.fit(model, X_train, y_train)
        curve = [h["valid_metric"] for h in model.history_]
        rows.append(
            {
                "norm": norm,
                "batch_size": batch,
                "early_val_accuracy": kit.early_mean(curve),
                "late_val_accuracy": kit.late_mean(curve),
                **kit.final(model, X_val, y_val),
            }
        )
        curves += kit.curves(model, norm=norm, batch_size=batch)
    table = pd.DataFrame(rows).set_index(["norm", "batch_size"])
    curve_table = pd.DataFrame(curves)
    plain = table.loc[("none", 5)]

    def finals(norm: str) -> pd.Series:  # where each run ends: its last third of epochs, held out
        return table.loc[norm]["late_val_accuracy"]

    bn, ln = finals("batch"), finals("layer")
    bn_early = table.loc["batch"]["early_val_accuracy"]
    bn_above = bool((bn > plain["late_val_accuracy"]).all() and (bn_early > plain["early_val_accuracy"]).all())
    bn_order = bool(bn[50] >= max(bn[5], bn[10]) - 0.01 and min(bn[5], bn[10]) >= bn[50] - 0.1)
    bn_verdict = "agree" if bn_above and bn_order else "disagree"
    bn_measured = (
        f"validation accuracy over the last third of the epochs: no norm at 5 {plain['late_val_accuracy']:.3f}; "
        "batch norm at 5, 10, 50: "
        + ", ".join(f"{v:.3f}" for v in bn)
        + "; mean over the first half of the epochs: no norm "
        f"{plain['early_val_accuracy']:.3f}, batch norm " + ", ".join(f"{v:.3f}" for v in bn_early)
    )
    ln_spread = float(ln.max() - ln.min())
    ln_verdict = "agree" if ln_spread <= 0.03 and (ln > plain["late_val_accuracy"]).all() else "disagree"
    ln_measured = (
        "validation accuracy over the last third of the epochs, layer norm at 5, 10, 50: "
        + ", ".join(f"{v:.3f}" for v in ln)
        + f" (spread {ln_spread:.3f}; batch norm's {float(bn.max() - bn.min()):.3f}); no norm at 5 "
        f"{plain['late_val_accuracy']:.3f}"
    )

    def drawing(norm: str):
        def draw(fig):
            ax = fig.subplots()
            for (kind, batch), part in curve_table.groupby(["norm", "batch_size"]):
                if kind in (norm, "none"):
                    ax.plot(part["epoch"], part["val_accuracy"], label=f"{kind}, batch {batch}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation accuracy (held-out fifth)")
            ax.legend()

        return draw

    bn_claim = (
        "Batch norm at batch sizes 5, 10 and 50 against no normalisation at batch size 5: the normalised "
        "nets start higher, rise faster and end higher (about 0.95); batch size 50 does best, 5 and 10 a "
        "little lower."
    )
    ln_claim = (
        "Layer norm's accuracy is about the same at batch sizes 5, 10 and 50, and above the net "
        "without normalisation: it does not depend on the batch."
    )
    return [
        kit.Experiment(
            "2_bn_batch_size",
            "2. batch norm vs batch size",
            bn_claim,
            bn_verdict,
            bn_measured,
            curve_table,
            drawing("batch"),
        ),
        kit.Experiment(
            "3_ln_batch_size",
            "3. layer norm vs batch size",
            ln_claim,
            ln_verdict,
            ln_measured,
            curve_table,
            drawing("layer"),
        ),
    ]


# ----------------------------------------------------------------------------- width
def layer_norm_vs_width(size: str) -> list:
    """Two hidden layers of width w, with layer norm and without, for w = 1, 2, 4, ... 512."""
    X_train, X_val, y_train, y_val = kit.digits_split()
    X_train, y_train = X_train[:1000], y_train[:1000]
    widths = kit.pick(size, (1, 2, 8, 64), tuple(2**k for k in range(10)), tuple(2**k for k in range(10)))
    epochs = kit.pick(size, 8, 10, 20)
    rows = []
    for norm in ("layer", None):
        for width in widths:
            model = MLPClassifier(
                (width, width), norm=norm, batch_size=50, learning_rate=3e-3, **kit.fixed_budget(epochs)
            )
            rows.append(
                {"norm": norm or "none", "width": width, **kit.final(kit.fit(model, X_train, y_train), X_val, y_val)}
            )
    table = pd.DataFrame(rows)
    accuracy = table.pivot(index="width", columns="norm", values="val_accuracy")
    deficit = accuracy["none"] - accuracy["layer"]
    smallest, widest = widths[0], widths[-1]
    tiny = [w for w in widths if w <= 4]
    agrees = bool(
        accuracy["layer"].idxmin() == smallest
        and accuracy.loc[smallest, "layer"] <= 0.2  # a constant output: chance
        and deficit[tiny].max() >= 0.1  # behind the plain net at a tiny width ...
        and abs(deficit[widest]) <= 0.05  # ... and not at a wide one
    )
    measured = "validation accuracy with / without layer norm: " + "; ".join(
        f"width {w}: {accuracy.loc[w, 'layer']:.3f} / {accuracy.loc[w, 'none']:.3f}" for w in widths
    )

    def draw(fig):
        ax = fig.subplots()
        for norm, label in (("layer", "layer norm"), ("none", "no norm")):
            ax.semilogx(accuracy.index, accuracy[norm], "o-", base=2, label=label)
        ax.axhline(0.1, color="grey", linestyle=":", label="chance")
        ax.set_xlabel("hidden width (the dimension layer norm normalises)")
        ax.set_ylabel("validation accuracy")
        ax.legend()

    claim = (
        "Layer norm works worst when the dimension it normalises is very small: with one feature its "
        "output is a constant."
    )
    return [
        kit.Experiment(
            "4_ln_width",
            "4. layer norm vs the width it normalises",
            claim,
            "agree" if agrees else "disagree",
            measured,
            table,
            draw,
        )
    ]
