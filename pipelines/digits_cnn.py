"""CNNClassifier on scikit-learn's 8x8 digits (pixel columns reshaped to images in the net), against logistic
regression."""

import warnings
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.jobs import Job, import_file

classifiers = import_file(Path(__file__).with_name("_classifiers.py"))
digits = import_file(Path(__file__).with_name("_digits.py"))

SECONDS = {"quick": 4, "full": 9}


def run(full: bool = False) -> Job:
    X, y = load_digits(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    cnn = digits.cnn(100 if full else 25, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the quick budget ends before early stopping, on purpose
        model = Pipeline([("scale", MinMaxScaler()), ("cnn", cnn)]).fit(X_train, y_train)
    details = f"{len(X_test)} held-out images, {cnn.n_iter_} epochs"
    return classifiers.against_logistic_regression(model, X_train, X_test, y_train, y_test, floor=0.95, details=details)
