"""A GRU reading each 8x8 digit row by row (8 steps of 8 pixels), against logistic regression."""

import warnings
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.jobs import Job, import_file
from toolkit.neural_network import RNNClassifier

classifiers = import_file(Path(__file__).with_name("_classifiers.py"))

SECONDS = {"quick": 6, "full": 9}


def run(full: bool = False) -> Job:
    X, y = load_digits(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    # Cell, width and budget chosen by 5-fold cross-validation on the training rows.
    rnn = RNNClassifier(
        128,
        cell="gru",
        sequence_length=8,
        learning_rate=3e-3,
        max_epochs=60 if full else 30,
        batch_size=64,
        random_state=0,
        verbose=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model = Pipeline([("scale", MinMaxScaler()), ("gru", rnn)]).fit(X_train, y_train)
    details = f"{len(X_test)} held-out images, {rnn.n_iter_} epochs"
    return classifiers.against_logistic_regression(model, X_train, X_test, y_train, y_test, floor=0.93, details=details)
