"""Recurrent nets (RNN / LSTM / GRU) for sequences."""

from __future__ import annotations

import copy
import dataclasses
from numbers import Integral, Real

import numpy as np
from torch import nn

from toolkit._export_spec import InferenceSpec
from toolkit._net_estimator import BaseNeuralNet, PredictorNet
from toolkit._param_validation import Interval, StrOptions
from toolkit.neural_network._mixins import NeuralClassifierMixin, NeuralRegressorMixin
from toolkit.nn.rnn import CELLS, RecurrentNet


def sequence_net_shape(sample_shape: tuple[int, ...], sequence_length) -> tuple[int, int]:
    """(T, D) of the sequences in inputs whose samples have ``sample_shape``.

    Samples may be (T, D), or flat rows of T * D values (step after step) with
    ``sequence_length=T``. Flat rows without it are univariate sequences (n_features, 1).
    """
    if len(sample_shape) == 2:
        if sequence_length is not None and sequence_length != sample_shape[0]:
            raise ValueError(f"X holds sequences of length {sample_shape[0]}, but sequence_length={sequence_length}")
        return sample_shape
    if len(sample_shape) == 1:
        n_features = sample_shape[0]
        if sequence_length is None:
            return (n_features, 1)
        if n_features % sequence_length:
            raise ValueError(
                f"X has {n_features} features per row, which is not a multiple of sequence_length={sequence_length}"
            )
        return (sequence_length, n_features // sequence_length)
    raise ValueError(f"X must hold sequences as (N, T, D) or flat rows (N, T*D); got samples of shape {sample_shape}")


class _RNNBase(PredictorNet):
    _parameter_constraints: dict = {
        **BaseNeuralNet._parameter_constraints,
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "cell": [StrOptions(set(CELLS))],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "bidirectional": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "sequence_length": [Interval(Integral, 1, None, closed="left"), None],
        "mask_value": [Real, None],
    }

    def __init__(
        self,
        hidden_size=64,
        *,
        cell="lstm",
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        sequence_length=None,
        mask_value=None,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        weight_decay_on="all",
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
        self.hidden_size = hidden_size
        self.cell = cell
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.sequence_length = sequence_length
        self.mask_value = mask_value
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.weight_decay_on = weight_decay_on
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

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        return sequence_net_shape(sample_shape, self.sequence_length)

    def _free_net_shape(self) -> tuple[int, ...]:
        # Inputs given as (N, T, D) may have another T at predict time.
        return (-1, self.net_shape_[1]) if len(self.input_shape_) == 2 else self.net_shape_

    def _free_input_shape(self) -> tuple[int | None, ...]:
        return (None, self.input_shape_[1]) if len(self.input_shape_) == 2 else self.input_shape_

    def _sample_shape_matches(self, sample_shape: tuple[int, ...]) -> bool:
        if len(self.input_shape_) == 2:
            return len(sample_shape) == 2 and sample_shape[1] == self.input_shape_[1]
        return sample_shape == self.input_shape_

    def __onnx_spec__(self) -> InferenceSpec:
        """The recurrent layers as ONNX's RNN / LSTM / GRU operators (any sequence length,
        whatever the process exported before; see :mod:`toolkit.neural_network._rnn_export`),
        then the head and its output layers exported by torch."""
        from toolkit.neural_network._rnn_export import recurrent_graph, with_head  # onnx: on export only

        spec = super().__onnx_spec__()
        net = copy.deepcopy(self.module_).cpu().eval()
        width = net.head.in_features
        head = InferenceSpec(
            module=nn.Sequential(net.head, *self._output_layers()).eval(),
            sample_shape=(width,),
            outputs=spec.outputs,
            example=np.zeros((2, width), dtype=np.float32),
            input_name="state",
            classes=spec.classes,
            graph="head",
        )
        core = recurrent_graph(net, spec.sample_shape, self.net_shape_[1], input_name=spec.input_name)
        build = lambda parts: with_head(core, parts["head"])  # noqa: E731
        # onnx converts the layers' Identity no lower than its version 16
        return dataclasses.replace(spec, module=None, parts=(head,), build=build, min_opset=16)

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        return RecurrentNet(
            net_shape[1],
            n_outputs,
            cell=self.cell,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            bidirectional=self.bidirectional,
            dropout=self.dropout,
            mask_value=None if self.mask_value is None else float(self.mask_value),
        )


class RNNClassifier(NeuralClassifierMixin, _RNNBase):
    """Recurrent classifier: stacked RNN / LSTM / GRU layers, a softmax head on the last state.

    X may be sequences (N, T, D) or flat rows (N, T*D) with ``sequence_length=T``; sequences
    given as (N, T, D) may have another length T at predict time.

    Parameters
    ----------
    hidden_size : int, default=64
    cell : {"rnn", "lstm", "gru"}, default="lstm"
        "rnn" is the Elman cell with tanh.
    num_layers : int, default=1
    bidirectional : bool, default=False
    dropout : float, default=0.0
        Inverted dropout between layers and before the head.
    sequence_length : int, optional
        T, when X holds flat rows.
    mask_value : float, optional
        Padding value: trailing steps equal to it in every feature are padding and do not
        change the output (pad variable-length sequences at the end).
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        torch's optimizers, with g the gradient plus ``weight_decay`` * w: "sgd" is
        b <- momentum b + g (b = g at the first step), then w <- w - lr (g + momentum b)
        with ``nesterov``, else w <- w - lr b; "rmsprop" is v <- 0.99 v + 0.01 g^2, then
        w <- w - lr g / (sqrt(v) + 1e-8), or with momentum b <- momentum b + g / (sqrt(v) +
        1e-8), w <- w - lr b; "adam" is Adam with betas (0.9, 0.999) and eps 1e-8, its moments
        bias-corrected; "adamw" is Adam on the gradient alone after w <- w (1 - lr weight_decay).
    learning_rate : float, default=1e-3
    momentum : float, default=0.9
        Momentum of "sgd" and "rmsprop" (0: none).
    nesterov : bool, default=False
        Nesterov momentum for "sgd".
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay`` * w added to the gradient, the gradient of
        0.5 * weight_decay * sum w^2 (decoupled weight decay for "adamw").
    weight_decay_on : {"all", "weights"}, default="all"
        The parameters ``weight_decay`` reaches: all, or the weight matrices and kernels alone
        (tensors of two or more dimensions, not biases nor the norms' scales and shifts), the
        penalty 0.5 * reg * (sum W1^2 + W2^2 + ...) of CS231n's nets and scikit-learn's MLP ``alpha``.
    weight_scale : float or None, default=None
        None keeps the default initialisation (Kaiming-normal weights, zero biases); a float
        draws every weight matrix of the linear, convolutional and recurrent layers from
        N(0, weight_scale^2) with zero biases (the initialisation experiment of pipelines/notes_experiments.py).
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples).
    max_epochs : int, default=200
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (and
        with ``restore_best_weights`` return to the best epoch's weights). Without it, the
        training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    lr_schedule : str, (str, dict), callable or None, default=None
        Learning rate per epoch: None keeps ``learning_rate``; "step", "exponential",
        "cosine" or "plateau" (torch's StepLR, ExponentialLR, CosineAnnealingLR over
        ``max_epochs``, ReduceLROnPlateau on the watched loss), optionally with options as
        ("step", {"step_size": 10, "gamma": 0.5}); or a callable taking the optimizer and
        returning a torch scheduler. ``history_`` records each epoch's rate.
    max_grad_norm : float or None, default=None
        Clip the gradients' global L2 norm to this before each optimizer step.
    restore_best_weights : bool, default=True
        With ``early_stopping``, end with the weights of the epoch with the lowest
        validation loss (False: the last epoch's).
    callbacks : list of objects or None, default=None
        Objects with any of ``on_train_begin(estimator, history)``,
        ``on_epoch_end(estimator, history)`` and ``on_train_end(estimator, history)``;
        ``history`` is ``history_``, and ``on_epoch_end`` returning True stops training.
        ``history_`` holds one dict per epoch: ``epoch``, ``train_loss`` (the mean over the
        epoch's batches), ``train_metric`` (the score, accuracy for classifiers and R^2 for
        regressors, of up to 1,000 training rows in eval mode after the epoch; NaN for the
        generative nets), ``valid_loss`` and ``valid_metric`` (the held-out split's, NaN
        without ``early_stopping``), ``learning_rate`` and ``duration`` in seconds.
    device : str, default="auto"
        "auto" is CUDA when torch sees a GPU, else "cpu"; or any torch device string.
    distributed : {None, "ddp"}, default=None
        "ddp": data-parallel training with torch's DistributedDataParallel in ``n_procs``
        processes started by torch's elastic launcher (gloo on the CPU, NCCL on CUDA, one GPU
        per process); ``batch_size`` stays the global batch, split evenly across processes,
        and the fitted estimator comes back to this process. Under ``torchrun`` (across
        machines) ``fit`` joins the job instead and trains this rank's shard. A worker that
        fails makes ``fit`` raise ``toolkit.DataParallelError``, the estimator left as it was.
        ``partial_fit`` always trains in this process. See toolkit/_distributed.py.
    n_procs : int, default=2
        Processes of a ``distributed="ddp"`` fit launched from this process.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the validation split; bit-for-bit on CPU.
    verbose : bool, default=False
        A tqdm bar over epochs showing train and validation loss.
    warm_start : bool, default=False
        Continue from the fitted weights and optimizer state on the next ``fit``.
    """


class RNNRegressor(NeuralRegressorMixin, _RNNBase):
    """Recurrent regressor: stacked RNN / LSTM / GRU layers, a linear head on the last state.

    X may be sequences (N, T, D) or flat rows (N, T*D) with ``sequence_length=T``; sequences
    given as (N, T, D) may have another length T at predict time.

    Parameters
    ----------
    hidden_size : int, default=64
    cell : {"rnn", "lstm", "gru"}, default="lstm"
        "rnn" is the Elman cell with tanh.
    num_layers : int, default=1
    bidirectional : bool, default=False
    dropout : float, default=0.0
        Inverted dropout between layers and before the head.
    sequence_length : int, optional
        T, when X holds flat rows.
    mask_value : float, optional
        Padding value: trailing steps equal to it in every feature are padding and do not
        change the output (pad variable-length sequences at the end).
    optimizer : {"adam", "adamw", "sgd", "rmsprop"}, default="adam"
        torch's optimizers, with g the gradient plus ``weight_decay`` * w: "sgd" is
        b <- momentum b + g (b = g at the first step), then w <- w - lr (g + momentum b)
        with ``nesterov``, else w <- w - lr b; "rmsprop" is v <- 0.99 v + 0.01 g^2, then
        w <- w - lr g / (sqrt(v) + 1e-8), or with momentum b <- momentum b + g / (sqrt(v) +
        1e-8), w <- w - lr b; "adam" is Adam with betas (0.9, 0.999) and eps 1e-8, its moments
        bias-corrected; "adamw" is Adam on the gradient alone after w <- w (1 - lr weight_decay).
    learning_rate : float, default=1e-3
    momentum : float, default=0.9
        Momentum of "sgd" and "rmsprop" (0: none).
    nesterov : bool, default=False
        Nesterov momentum for "sgd".
    weight_decay : float, default=0.0
        L2 penalty: ``weight_decay`` * w added to the gradient, the gradient of
        0.5 * weight_decay * sum w^2 (decoupled weight decay for "adamw").
    weight_decay_on : {"all", "weights"}, default="all"
        The parameters ``weight_decay`` reaches: all, or the weight matrices and kernels alone
        (tensors of two or more dimensions, not biases nor the norms' scales and shifts), the
        penalty 0.5 * reg * (sum W1^2 + W2^2 + ...) of CS231n's nets and scikit-learn's MLP ``alpha``.
    weight_scale : float or None, default=None
        None keeps the default initialisation (Kaiming-normal weights, zero biases); a float
        draws every weight matrix of the linear, convolutional and recurrent layers from
        N(0, weight_scale^2) with zero biases (the initialisation experiment of pipelines/notes_experiments.py).
    batch_size : int or "auto", default="auto"
        "auto" is min(200, n_samples).
    max_epochs : int, default=200
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (and
        with ``restore_best_weights`` return to the best epoch's weights). Without it, the
        training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    tol : float, default=1e-4
    lr_schedule : str, (str, dict), callable or None, default=None
        Learning rate per epoch: None keeps ``learning_rate``; "step", "exponential",
        "cosine" or "plateau" (torch's StepLR, ExponentialLR, CosineAnnealingLR over
        ``max_epochs``, ReduceLROnPlateau on the watched loss), optionally with options as
        ("step", {"step_size": 10, "gamma": 0.5}); or a callable taking the optimizer and
        returning a torch scheduler. ``history_`` records each epoch's rate.
    max_grad_norm : float or None, default=None
        Clip the gradients' global L2 norm to this before each optimizer step.
    restore_best_weights : bool, default=True
        With ``early_stopping``, end with the weights of the epoch with the lowest
        validation loss (False: the last epoch's).
    callbacks : list of objects or None, default=None
        Objects with any of ``on_train_begin(estimator, history)``,
        ``on_epoch_end(estimator, history)`` and ``on_train_end(estimator, history)``;
        ``history`` is ``history_``, and ``on_epoch_end`` returning True stops training.
        ``history_`` holds one dict per epoch: ``epoch``, ``train_loss`` (the mean over the
        epoch's batches), ``train_metric`` (the score, accuracy for classifiers and R^2 for
        regressors, of up to 1,000 training rows in eval mode after the epoch; NaN for the
        generative nets), ``valid_loss`` and ``valid_metric`` (the held-out split's, NaN
        without ``early_stopping``), ``learning_rate`` and ``duration`` in seconds.
    device : str, default="auto"
        "auto" is CUDA when torch sees a GPU, else "cpu"; or any torch device string.
    distributed : {None, "ddp"}, default=None
        "ddp": data-parallel training with torch's DistributedDataParallel in ``n_procs``
        processes started by torch's elastic launcher (gloo on the CPU, NCCL on CUDA, one GPU
        per process); ``batch_size`` stays the global batch, split evenly across processes,
        and the fitted estimator comes back to this process. Under ``torchrun`` (across
        machines) ``fit`` joins the job instead and trains this rank's shard. A worker that
        fails makes ``fit`` raise ``toolkit.DataParallelError``, the estimator left as it was.
        ``partial_fit`` always trains in this process. See toolkit/_distributed.py.
    n_procs : int, default=2
        Processes of a ``distributed="ddp"`` fit launched from this process.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and the validation split; bit-for-bit on CPU.
    verbose : bool, default=False
        A tqdm bar over epochs showing train and validation loss.
    warm_start : bool, default=False
        Continue from the fitted weights and optimizer state on the next ``fit``.
    """
