"""StandardScaler + MLPClassifier on the breast-cancer DataFrame (scikit-learn's copy), against logistic regression."""

from pathlib import Path

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.jobs import Job, import_file
from toolkit.neural_network import MLPClassifier

classifiers = import_file(Path(__file__).with_name("_classifiers.py"))

SECONDS = {"quick": 1, "full": 2}


def run(full: bool = False) -> Job:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    # Batch size and weight decay chosen by 5-fold cross-validation on the training rows.
    mlp = MLPClassifier(
        (64, 32), batch_size=32, weight_decay=1e-3, max_epochs=200 if full else 100, random_state=0, verbose=True
    )
    model = Pipeline([("scale", StandardScaler()), ("mlp", mlp)]).fit(X_train, y_train)
    details = f"{len(X_test)} held-out rows, {mlp.n_iter_} epochs"
    return classifiers.against_logistic_regression(model, X_train, X_test, y_train, y_test, floor=0.93, details=details)
