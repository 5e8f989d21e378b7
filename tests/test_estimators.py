"""Behaviour of the torch-backed estimators: inputs, targets, training options, errors."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tests._estimators import SMALL
from tests._warnings import SHORT_TRAINING
from toolkit.neural_network import (
    CNNClassifier,
    CNNRegressor,
    MLPClassifier,
    MLPRegressor,
    RNNClassifier,
    RNNRegressor,
)

pytestmark = SHORT_TRAINING

FAST = dict(max_epochs=3, random_state=0, device="cpu")


@pytest.fixture(scope="module")
def small_digits(digits):
    X, y = digits
    return X[:300].astype(np.float32), y[:300]


@pytest.mark.filterwarnings(
    "ignore:Stochastic Optimizer. Maximum iterations:sklearn.exceptions.ConvergenceWarning"
)  # the same 40 epochs for both
def test_mlp_learns_digits_as_well_as_sklearns(digits):
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SklearnMLP

    X_train, X_test, y_train, y_test = train_test_split(*digits, test_size=0.3, random_state=0)
    model = MLPClassifier((64,), learning_rate=3e-3, max_epochs=40, random_state=0).fit(X_train, y_train)
    reference = SklearnMLP((64,), learning_rate_init=3e-3, max_iter=40, random_state=0).fit(X_train, y_train)
    assert model.score(X_test, y_test) >= reference.score(X_test, y_test) - 0.01 > 0.9
    assert len(model.history_) == model.n_iter_ <= 40
    assert set(model.history_[0]) >= {"epoch", "train_loss", "valid_loss", "valid_metric"}
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]


def test_string_labels_are_kept(small_digits):
    X, y = small_digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    model = MLPClassifier((32,), **FAST).fit(X, labels)
    assert list(model.classes_) == sorted(set(labels))
    assert set(model.predict(X)) <= set(labels)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), model.classes_[proba.argmax(axis=1)])


def test_multi_output_regression(small_digits):
    X, _ = small_digits
    Y = np.c_[X[:, 10], X[:, 20] * 2]
    model = MLPRegressor((32,), max_epochs=50, random_state=0).fit(X, Y)
    assert model.predict(X).shape == (len(X), 2)
    assert model.score(X, Y) > 0.5
    single = MLPRegressor((32,), **FAST).fit(X, Y[:, 0])
    assert single.predict(X).shape == (len(X),)


@pytest.mark.parametrize(
    "make, layout",
    [
        (lambda: CNNClassifier((4,), **FAST), lambda X: X.reshape(-1, 1, 8, 8)),
        (lambda: CNNClassifier((4,), **FAST), lambda X: X.reshape(-1, 8, 8)),
        (lambda: CNNClassifier((4,), image_shape=(8, 8), **FAST), lambda X: X),
        (lambda: CNNRegressor((4,), image_shape=(1, 8, 8), **FAST), lambda X: X),
        (lambda: RNNClassifier(4, **FAST), lambda X: X.reshape(-1, 8, 8)),
        (lambda: RNNClassifier(4, sequence_length=8, **FAST), lambda X: X),
        (lambda: RNNRegressor(4, sequence_length=16, **FAST), lambda X: X),
    ],
)
def test_input_layouts(small_digits, make, layout):
    X, y = small_digits
    model = make().fit(layout(X), y)
    assert model.predict(layout(X)).shape == (len(X),)
    assert model.n_features_in_ == 64


def test_image_net_shape_is_read_from_the_layout(small_digits):
    X, y = small_digits
    assert CNNClassifier((4,), image_shape=(8, 8), **FAST).fit(X, y).net_shape_ == (1, 8, 8)
    assert CNNClassifier((4,), **FAST).fit(X.reshape(-1, 8, 8), y).net_shape_ == (1, 8, 8)
    assert CNNClassifier((4,), **FAST).fit(X, y).net_shape_ == (1, 1, 64)
    assert RNNClassifier(4, sequence_length=8, **FAST).fit(X, y).net_shape_ == (8, 8)
    assert RNNClassifier(4, **FAST).fit(X[:, :5], y).net_shape_ == (5, 1)


def test_rnn_reads_other_sequence_lengths_when_given_3d(small_digits):
    X, y = small_digits
    model = RNNClassifier(8, **FAST).fit(X.reshape(-1, 8, 8), y)
    assert model.predict(X.reshape(-1, 8, 8)[:, :5]).shape == (300,)  # 5 steps instead of 8
    with pytest.raises(ValueError, match=r"samples of shape \(16, 4\).*fitted on samples of shape \(8, 8\)"):
        model.predict(X.reshape(-1, 16, 4))


def test_masked_rnn_ignores_trailing_padding(small_digits):
    X, y = small_digits
    seqs = X.reshape(-1, 8, 8) + 0.5  # no step is all zeros
    model = RNNClassifier(8, cell="gru", bidirectional=True, mask_value=0.0, **FAST).fit(seqs, y)
    padded = np.concatenate([seqs, np.zeros((len(seqs), 4, 8), np.float32)], axis=1)
    np.testing.assert_allclose(model.predict_proba(padded), model.predict_proba(seqs), rtol=1e-5, atol=1e-6)


def test_same_random_state_gives_identical_predictions(small_digits):
    X, y = small_digits
    for make in (
        lambda: MLPClassifier((16,), dropout=0.2, norm="batch", **FAST),
        lambda: CNNClassifier((4,), image_shape=(8, 8), dropout=0.1, **FAST),
        lambda: RNNClassifier(4, sequence_length=8, early_stopping=True, **FAST),
    ):
        a, b = make().fit(X, y), make().fit(X, y)
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
        assert [h["train_loss"] for h in a.history_] == [h["train_loss"] for h in b.history_]
    seeded = MLPClassifier((16,), **FAST).fit(X, y)
    other_seed = MLPClassifier((16,), **{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(other_seed.predict_proba(X), seeded.predict_proba(X))


def test_fit_does_not_disturb_the_global_torch_rng(small_digits):
    import torch

    X, y = small_digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    MLPClassifier((8,), dropout=0.5, **FAST).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_lowers_the_loss(small_digits, optimizer):
    X, y = small_digits
    model = MLPClassifier(
        (32,), optimizer=optimizer, learning_rate=1e-2, nesterov=optimizer == "sgd", max_epochs=8, random_state=0
    ).fit(X, y)
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]


def test_early_stopping_restores_the_best_epoch(small_digits):
    X, y = small_digits
    model = MLPClassifier(
        (64,), early_stopping=True, n_iter_no_change=3, max_epochs=200, learning_rate=3e-2, random_state=0
    ).fit(X, y)
    losses = [h["valid_loss"] for h in model.history_]
    assert len(losses) < 200
    best = int(np.argmin(losses))
    assert len(losses) - 1 - best >= 3
    assert all(np.isfinite(h["valid_metric"]) for h in model.history_)


def test_warm_start_and_partial_fit_continue_training(small_digits):
    X, y = small_digits
    model = MLPClassifier((16,), warm_start=True, **FAST).fit(X, y)
    weights = model.module_.layers[0].weight.detach().clone()
    model.fit(X, y)
    assert len(model.history_) == 6
    assert not np.array_equal(weights, model.module_.layers[0].weight.detach())

    online = MLPClassifier((16,), random_state=0, device="cpu")
    online.partial_fit(X[:100], y[:100], classes=np.arange(10))
    online.partial_fit(X[100:], y[100:])
    assert len(online.history_) == 2 and list(online.classes_) == list(range(10))
    with pytest.raises(ValueError, match=r"labels \[10\] not among the classes"):
        online.partial_fit(X[:2], np.array([10, 1]))


def test_dataframe_feature_names_and_pipeline(small_digits):
    X, y = small_digits
    frame = pd.DataFrame(X, columns=[f"px{i}" for i in range(64)])
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), **FAST)).fit(frame, y)
    assert model[-1].n_features_in_ == 64
    direct = MLPClassifier((16,), **FAST).fit(frame, y)
    assert list(direct.feature_names_in_) == list(frame.columns)
    with pytest.raises(ValueError, match="feature names"):
        direct.predict(frame[frame.columns[::-1]])


def test_clone_get_set_params_and_grid_search(small_digits):
    X, y = small_digits
    model = MLPClassifier((8,), **FAST)
    assert clone(model).get_params() == model.get_params()
    assert model.set_params(learning_rate=0.01).learning_rate == 0.01
    search = GridSearchCV(
        MLPClassifier(max_epochs=3, device="cpu", random_state=0), {"hidden_layer_sizes": [(8,), (16,)]}, cv=2
    ).fit(X, y)
    assert search.best_params_["hidden_layer_sizes"] in [(8,), (16,)]


def test_summary_dataframe(small_digits):
    X, y = small_digits
    summary = CNNClassifier((4, 8), image_shape=(8, 8), **FAST).fit(X, y).summary()
    assert list(summary.columns) == ["type", "output_shape", "params", "flops", "receptive_field"]
    conv = summary.loc["blocks.0.0"]
    assert conv["params"] == 4 * (3 * 3 * 1 + 1) and conv["flops"] == 8 * 8 * 4 * (3 * 3 + 1)
    assert MLPRegressor((5,), **FAST).fit(X, y).summary()["params"].sum() == 65 * 5 + 6


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("Estimator", [MLPClassifier, CNNClassifier, RNNClassifier])
def test_unfitted_use_raises_not_fitted(Estimator, small_digits):
    with pytest.raises(NotFittedError):
        Estimator().predict(small_digits[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_refused(small_digits, bad):
    X, y = small_digits
    X = X.copy()
    X[3, 5] = bad
    with pytest.raises(ValueError, match="NaN|infinity"):
        MLPClassifier(**FAST).fit(X, y)


def test_wrong_number_of_features(small_digits):
    X, y = small_digits
    model = MLPClassifier((8,), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="X has 63 features, but MLPClassifier is expecting 64"):
        model.predict(X[:, :63])


def test_wrong_image_shape(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"image_shape=\(1, 7, 7\) holds 49 values per image, but X has 64"):
        CNNClassifier(image_shape=(7, 7), **FAST).fit(X, y)
    model = CNNClassifier((4,), **FAST).fit(X.reshape(-1, 8, 8), y)
    with pytest.raises(ValueError, match=r"samples of shape \(4, 16\)"):
        model.predict(X.reshape(-1, 4, 16))


def test_wrong_sequence_length(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="64 features per row, which is not a multiple of sequence_length=7"):
        RNNClassifier(sequence_length=7, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="sequences of length 8, but sequence_length=4"):
        RNNClassifier(sequence_length=4, **FAST).fit(X.reshape(-1, 8, 8), y)


def test_non_numeric_columns_are_named(small_digits):
    X, y = small_digits
    frame = pd.DataFrame(X[:, :3], columns=["a", "b", "c"]).assign(colour="red")
    with pytest.raises(TypeError, match=r"non-numeric column\(s\) \['colour'\]"):
        MLPClassifier(**FAST).fit(frame, y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"optimizer": "lbfgs"}, "'optimizer' parameter"),
        ({"learning_rate": -1.0}, "'learning_rate' parameter"),
        ({"activation": "swish"}, "'activation' parameter"),
        ({"hidden_layer_sizes": (8, 0)}, "hidden_layer_sizes must be a non-empty sequence of positive ints"),
        ({"dropout": 1.0}, "'dropout' parameter"),
        ({"device": "toaster"}, "device='toaster' is not a torch device"),
    ],
)
def test_invalid_hyper_parameters(small_digits, params, match):
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**{**FAST, **params}).fit(*small_digits)


def test_invalid_conv_parameters(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="divisible by groups=3"):
        CNNClassifier((8,), norm="group", groups=3, image_shape=(8, 8), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="kernel_size has 3 entries but there are 2 conv blocks"):
        CNNClassifier((8, 8), kernel_size=(3, 3, 3), **FAST).fit(X, y)
    with pytest.raises(ValueError, match='padding="same" needs an odd kernel_size'):
        CNNClassifier((8,), kernel_size=2, image_shape=(8, 8), **FAST).fit(X, y)
    with pytest.raises(ValueError, match="leaves no output"):
        CNNClassifier((8,), kernel_size=9, padding=0, image_shape=(8, 8), **FAST).fit(X, y)


def test_targets_are_checked(small_digits):
    X, y = small_digits
    with pytest.raises(ValueError, match="single class"):
        MLPClassifier(**FAST).fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier(**FAST).fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        MLPRegressor(**FAST).fit(X, y[:-1])


def test_verbose_shows_a_progress_bar_with_the_losses(small_digits, capsys):
    X, y = small_digits
    MLPClassifier((8,), verbose=True, early_stopping=True, **FAST).fit(X, y)
    err = capsys.readouterr().err
    assert "epoch" in err and "train_loss=" in err and "valid_loss=" in err


def test_the_notes_three_layer_convnet_is_a_cnn_configuration(small_digits):
    """conv - relu - 2x2 max pool - affine - relu - affine."""
    X, y = small_digits
    model = CNNClassifier(
        (32,), norm=None, head="flatten", dense=(100,), image_shape=(8, 8), max_epochs=30, random_state=0
    )
    model.fit(X[:200], y[:200])
    summary = model.summary()
    assert list(summary["type"]) == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    assert list(summary["output_shape"]) == [(32, 8, 8), (32, 8, 8), (32, 4, 4), (512,), (100,), (100,), (10,)]
    assert model.score(X[200:], y[200:]) > 0.85
    with pytest.raises(ValueError, match="dense must be a sequence of positive ints"):
        CNNClassifier((8,), dense=(0,), image_shape=(8, 8)).fit(X[:20], y[:20])


@pytest.mark.parametrize("name", sorted(SMALL))
def test_every_public_estimator_clones_refuses_use_before_fit_and_exports(name):
    """Over the registry (tests/_estimators.py): ``clone`` keeps the parameters, an unfitted
    estimator's methods raise NotFittedError, and the class implements the export protocol."""
    from toolkit.onnx import SupportsOnnxExport

    model = SMALL[name].make()
    assert clone(model).get_params() == model.get_params()
    assert isinstance(model, SupportsOnnxExport)
    method = next(getattr(model, m) for m in ("predict", "transform", "sample") if hasattr(model, m))
    with pytest.raises(NotFittedError):
        method(SMALL[name].fit_data()[0]) if method.__name__ != "sample" else method(2)
