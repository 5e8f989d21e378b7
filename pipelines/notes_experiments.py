"""CS231n's assignment-2 experiments on the 8x8 digits (batch norm vs init scale, batch norm and
layer norm vs batch size, layer norm vs width, dropout, a convnet overfitting 100 samples,
normalisations in a convnet), each with the assignment's claim it checks, its figure and its
verdict (see pipelines/_experiments.py)."""

import textwrap
from pathlib import Path

from toolkit.jobs import Baseline, Job, import_file

experiments = import_file(Path(__file__).with_name("_experiments.py"))
kit = experiments.normalisation.kit

SECONDS = {"quick": 45, "full": 95}
SCALE = 1e-3  # an init scale where the assignment expects the plain deep net to fail and batch norm to train


def run(full: bool = False) -> Job:
    outcomes = experiments.run_all("full" if full else "quick")
    X_train, X_val, y_train, y_val = kit.digits_split()
    deep = {"hidden_layer_sizes": (100,) * 5, "weight_scale": SCALE, "batch_size": 50, **kit.fixed_budget(10)}
    model = kit.fit(experiments.normalisation.MLPClassifier(norm="batch", **deep), X_train, y_train)
    plain = kit.fit(experiments.normalisation.MLPClassifier(**deep), X_train, y_train)
    details = "\n".join(outcome.line() for outcome in outcomes)

    def plot(folder: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        for outcome in outcomes:
            outcome.table.to_csv(folder / f"{outcome.name}.csv", index=False)
            fig = plt.figure(figsize=(12, 4.2))
            outcome.draw(fig)
            heading = f"{outcome.title}: {outcome.verdict.upper()}"
            text = f"Claim: {outcome.claim}\nMeasured: {outcome.measured}"
            fig.suptitle(f"{heading}\n{textwrap.fill(text, 190, replace_whitespace=False)}", fontsize=8)
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
