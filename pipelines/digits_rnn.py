"""A GRU reading each 8x8 digit row by row (8 steps of 8 pixels), against logistic regression."""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from toolkit.jobs import Baseline, Job
from toolkit.neural_network import RNNClassifier

SECONDS = {"quick": 6, "full": 9}


def run(full: bool = False) -> Job:
    X, y = load_digits(return_X_y=True, as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    # Cell, width and budget chosen by 5-fold cross-validation on the training rows.
    rnn = RNNClassifier(128, cell="gru", sequence_length=8, learning_rate=3e-3, max_epochs=60 if full else 30, batch_size=64, random_state=0, verbose=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs, on purpose
        model = Pipeline([("scale", MinMaxScaler()), ("gru", rnn)]).fit(X_train, y_train)
    linear = Pipeline([("scale", MinMaxScaler()), ("logistic", LogisticRegression(max_iter=1000))]).fit(X_train, y_train)
    return Job(
        model,
        X_test,
        "accuracy",
        model.score(X_test, y_test),
        Baseline("logistic regression", linear.score(X_test, y_test)),
        floor=0.93,
        details=f"{len(X_test)} held-out images, {rnn.n_iter_} epochs",
    )
