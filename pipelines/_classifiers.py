"""What the classifier pipelines share: held-out accuracy against logistic regression on the same scaled inputs."""

from pathlib import Path

from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from toolkit.jobs import Baseline, Job, confusion_matrix_figure


def against_logistic_regression(
    model: Pipeline, X_train, X_test, y_train, y_test, *, floor: float, details: str
) -> Job:
    """The job of a fitted (scaler, classifier) Pipeline: its held-out accuracy, and that of a
    logistic regression fitted behind a fresh copy of the same scaler."""
    scaler = clone(model.steps[0][1])
    linear = Pipeline([("scale", scaler), ("logistic", LogisticRegression(max_iter=1000))]).fit(X_train, y_train)
    accuracy = model.score(X_test, y_test)

    def plot(folder: Path) -> None:
        title = f"{model.steps[-1][1].__class__.__name__}: held-out accuracy {accuracy:.3f}"
        confusion_matrix_figure(model, X_test, y_test, folder / "confusion.png", title)

    return Job(
        model,
        X_test,
        "accuracy",
        accuracy,
        Baseline("logistic regression", linear.score(X_test, y_test)),
        floor=floor,
        details=details,
        plot=plot,
    )
