"""Five of CS231n's assignment-2 experiments on the 8x8 digits (batch norm vs init scale,
normalisation vs batch size, dropout, a convnet overfitting 100 samples, normalisations in a
convnet), each checked against what the assignment predicts (see pipelines/_experiments.py)."""

import textwrap
from pathlib import Path

from toolkit.jobs import Baseline, Job, import_file

experiments = import_file(Path(__file__).with_name("_experiments.py"))

SECONDS = {"quick": 29, "full": 60}
SCALE = 1e-3  # an init scale where the assignment expects the plain deep net to fail and batch norm to train


def run(full: bool = False) -> Job:
    outcomes = [experiment(full) for experiment in experiments.EXPERIMENTS]
    X_train, X_val, y_train, y_val = experiments.digits_split()
    deep = {"hidden_layer_sizes": (100,) * 5, "weight_scale": SCALE, "batch_size": 50, **experiments._fixed_budget(10)}
    model = experiments._fit(experiments.MLPClassifier(norm="batch", **deep), X_train, y_train)
    plain = experiments._fit(experiments.MLPClassifier(**deep), X_train, y_train)
    details = "\n".join(f"{o.title}: {'agree' if o.agrees else 'DISAGREE'}: {o.check}" for o in outcomes)

    def plot(folder: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        for outcome in outcomes:
            outcome.table.to_csv(folder / f"{outcome.name}.csv", index=False)
            fig = plt.figure(figsize=(12, 3.6))
            outcome.draw(fig)
            verdict = "agrees with the prediction" if outcome.agrees else "DISAGREES with the prediction"
            fig.suptitle(f"{outcome.title}: {verdict}\n{textwrap.fill(outcome.check, 170)}", fontsize=9)
            fig.tight_layout()
            fig.savefig(folder / f"{outcome.name}.png", dpi=80)
            plt.close(fig)
        (folder / "checks.txt").write_text(details + "\n")

    return Job(
        model,
        X_val,
        "accuracy",
        model.score(X_val, y_val),
        Baseline(f"the same 6-layer net without batch norm, init scale {SCALE:g}", plain.score(X_val, y_val)),
        floor=0.8,
        details=details,
        plot=plot,
    )
