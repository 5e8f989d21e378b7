"""Multi-layer perceptrons for tabular data."""

from __future__ import annotations

from numbers import Integral, Real

from torch import nn

from toolkit._input_checks import check_positive_ints
from toolkit._net_estimator import TRAINING_PARAMETERS_DOC, BaseNeuralNet, PredictorNet
from toolkit._param_validation import Interval, StrOptions
from toolkit.neural_network._mixins import NeuralClassifierMixin, NeuralRegressorMixin
from toolkit.nn.layers import ACTIVATIONS
from toolkit.nn.mlp import DenseNet


class _MLPBase(PredictorNet):
    _parameter_constraints: dict = {
        **BaseNeuralNet._parameter_constraints,
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "norm": [StrOptions({"batch", "layer"}), None],
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        *,
        activation="relu",
        norm=None,
        dropout=0.0,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        weight_scale=None,
        batch_size="auto",
        max_epochs=200,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        lr_schedule=None,
        max_grad_norm=None,
        restore_best_weights=True,
        callbacks=None,
        device="auto",
        distributed=None,
        n_procs=2,
        random_state=None,
        verbose=False,
        warm_start=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.norm = norm
        self.dropout = dropout
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.weight_scale = weight_scale
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.lr_schedule = lr_schedule
        self.max_grad_norm = max_grad_norm
        self.restore_best_weights = restore_best_weights
        self.callbacks = callbacks
        self.device = device
        self.distributed = distributed
        self.n_procs = n_procs
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(sample_shape) != 1:
            raise ValueError(
                f"{type(self).__name__} needs 2-D X (n_samples, n_features); got samples of shape {sample_shape}"
            )
        return sample_shape

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        return DenseNet(
            net_shape[0],
            n_outputs,
            hidden=check_positive_ints(self.hidden_layer_sizes, "hidden_layer_sizes"),
            activation=self.activation,
            norm=self.norm,
            dropout=self.dropout,
        )


_MLP_DOC = (
    """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}, default="relu"
    norm : {"batch", "layer"} or None, default=None
        Normalisation after each hidden linear layer, before its activation.
    dropout : float, default=0.0
        Inverted dropout probability after each hidden activation.
"""
    + TRAINING_PARAMETERS_DOC
)


class MLPClassifier(NeuralClassifierMixin, _MLPBase):
    __doc__ = (
        """Multi-layer perceptron classifier trained with softmax cross-entropy.

    Fitted attributes: ``classes_``, ``module_`` (the torch net), ``history_`` (one dict per
    epoch: train_loss, train_metric and valid_metric = accuracy, valid_loss), ``n_iter_``, ``n_features_in_``,
    ``feature_names_in_`` (DataFrame input).
"""
        + _MLP_DOC
    )


class MLPRegressor(NeuralRegressorMixin, _MLPBase):
    __doc__ = (
        """Multi-layer perceptron regressor (single or multi-output) trained on 1/2 squared error.

    Fitted attributes: ``n_outputs_``, ``module_``, ``history_`` (train / valid_metric = R^2),
    ``n_iter_``, ``n_features_in_``, ``feature_names_in_`` (DataFrame input).
"""
        + _MLP_DOC
    )
