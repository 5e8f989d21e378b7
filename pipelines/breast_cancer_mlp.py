"""StandardScaler + MLPClassifier on the breast-cancer DataFrame (scikit-learn's copy)."""

from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from toolkit.jobs import Job
from toolkit.neural_network import MLPClassifier


def run(full: bool = False) -> Job:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "mlp",
                MLPClassifier(
                    (64, 32),
                    dropout=0.1,
                    weight_decay=1e-4,
                    early_stopping=True,
                    max_epochs=300 if full else 150,
                    random_state=0,
                ),
            ),
        ]
    ).fit(X_train, y_train)
    return Job(model, X_test, "accuracy", model.score(X_test, y_test), floor=0.95)
