"""Convolutional nets for images."""

from __future__ import annotations

from numbers import Integral, Real

from torch import nn

from toolkit._input_checks import check_positive_ints, image_net_shape
from toolkit._net_estimator import BaseNeuralNet, PredictorNet
from toolkit._param_validation import Interval, StrOptions
from toolkit.neural_network._mixins import NeuralClassifierMixin, NeuralRegressorMixin
from toolkit.nn.cnn import HEADS, ConvNet, per_block
from toolkit.nn.layers import ACTIVATIONS


class _CNNBase(PredictorNet):
    _parameter_constraints: dict = {
        **BaseNeuralNet._parameter_constraints,
        "channels": ["array-like"],
        "kernel_size": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "stride": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "padding": [Interval(Integral, 0, None, closed="left"), StrOptions({"same"}), "array-like"],
        "norm": [StrOptions({"batch", "layer", "group", "instance"}), None],
        "groups": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "pool": [StrOptions({"max", "avg"}), None, "array-like"],
        "pool_size": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "head": [StrOptions(set(HEADS))],
        "dense": ["array-like"],
        "image_shape": ["array-like", None],
        "kaiming_mode": [StrOptions({"fan_in", "fan_out"})],
    }

    def __init__(
        self,
        channels=(32, 64),
        *,
        kernel_size=3,
        stride=1,
        padding="same",
        norm="batch",
        groups=8,
        activation="relu",
        pool="max",
        pool_size=2,
        dropout=0.0,
        head="gap",
        dense=(),
        image_shape=None,
        kaiming_mode="fan_in",
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
        self.channels = channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.norm = norm
        self.groups = groups
        self.activation = activation
        self.pool = pool
        self.pool_size = pool_size
        self.dropout = dropout
        self.head = head
        self.dense = dense
        self.image_shape = image_shape
        self.kaiming_mode = kaiming_mode
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

    def _check_parameters(self) -> None:
        super()._check_parameters()
        channels = check_positive_ints(self.channels, "channels")
        check_positive_ints(self.dense, "dense", allow_empty=True)
        for name in ("kernel_size", "stride", "padding", "pool"):
            per_block(getattr(self, name), len(channels), name)
        if self.norm == "group" and any(c % self.groups for c in channels):
            raise ValueError(
                f'norm="group" needs every channel count {list(channels)} divisible by groups={self.groups}'
            )
        if self.image_shape is not None and len(self.image_shape) not in (2, 3):
            raise ValueError(f"image_shape must be (H, W) or (C, H, W), got {self.image_shape!r}")

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        return image_net_shape(sample_shape, self.image_shape)

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        return ConvNet(
            net_shape,
            n_outputs,
            channels=check_positive_ints(self.channels, "channels"),
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            norm=self.norm,
            groups=self.groups,
            activation=self.activation,
            pool=self.pool,
            pool_size=self.pool_size,
            dropout=self.dropout,
            head=self.head,
            dense=check_positive_ints(self.dense, "dense", allow_empty=True),
            kaiming_mode=self.kaiming_mode,
        )


class CNNClassifier(NeuralClassifierMixin, _CNNBase):
    """Convolutional classifier: conv blocks, global average pooling (or flattening), dense
    layers and a linear softmax head.

    X may be images (N, C, H, W), one-channel images (N, H, W), or flat rows (N, C*H*W)
    with ``image_shape`` (so a DataFrame of pixel columns works in a Pipeline).

    Parameters
    ----------
    channels : sequence of int, default=(32, 64)
        Output channels of each conv block [conv -> norm -> activation -> pool -> dropout].
    kernel_size, stride : int or sequence of int, default=3, 1
    padding : int, "same" or a sequence of those, default="same"
    norm : {"batch", "layer", "group", "instance"} or None, default="batch"
    groups : int, default=8
        Groups of ``norm="group"``.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}, default="relu"
    pool : {"max", "avg"}, None or a sequence of those, default="max"
        The pooling of every block, or of each block (None: that block has none).
    pool_size : int, default=2
        Window and stride of the pooling, never larger than the map it pools.
    dropout : float, default=0.0
    head : {"gap", "flatten"}, default="gap"
        What the dense layers read: each channel's global average ("gap"), or every
        position of the last maps flattened ("flatten").
    dense : sequence of int, default=()
        Widths of dense layers [linear -> activation -> dropout] before the output layer.
        CS231n's three-layer convnet in numpy (conv - relu - 2x2 max pool - affine - relu -
        affine, weights from weight_scale * randn) is ``CNNClassifier((32,), kernel_size=7,
        norm=None, head="flatten", dense=(100,), weight_scale=1e-3)``; its PyTorch convnet
        (conv 5x5 pad 2 - relu - conv 3x3 pad 1 - relu - affine, Kaiming fan_out) is
        ``CNNClassifier((c1, c2), kernel_size=(5, 3), padding=(2, 1), norm=None, pool=None,
        head="flatten", kaiming_mode="fan_out")``.
    image_shape : (H, W) or (C, H, W), optional
        Shape of one image when X holds flat rows.
    kaiming_mode : {"fan_in", "fan_out"}, default="fan_in"
        The default initialisation's Kaiming-normal variance, 2 / fan_in (He et al.) or
        2 / fan_out (torch's recipe, and CS231n's PyTorch convnet); ``weight_scale`` overrides it.
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


class CNNRegressor(NeuralRegressorMixin, _CNNBase):
    """Convolutional regressor: conv blocks, global average pooling (or flattening), dense
    layers and a linear head.

    X may be images (N, C, H, W), one-channel images (N, H, W), or flat rows (N, C*H*W)
    with ``image_shape`` (so a DataFrame of pixel columns works in a Pipeline).

    Parameters
    ----------
    channels : sequence of int, default=(32, 64)
        Output channels of each conv block [conv -> norm -> activation -> pool -> dropout].
    kernel_size, stride : int or sequence of int, default=3, 1
    padding : int, "same" or a sequence of those, default="same"
    norm : {"batch", "layer", "group", "instance"} or None, default="batch"
    groups : int, default=8
        Groups of ``norm="group"``.
    activation : {"relu", "leaky_relu", "tanh", "sigmoid"}, default="relu"
    pool : {"max", "avg"}, None or a sequence of those, default="max"
        The pooling of every block, or of each block (None: that block has none).
    pool_size : int, default=2
        Window and stride of the pooling, never larger than the map it pools.
    dropout : float, default=0.0
    head : {"gap", "flatten"}, default="gap"
        What the dense layers read: each channel's global average ("gap"), or every
        position of the last maps flattened ("flatten").
    dense : sequence of int, default=()
        Widths of dense layers [linear -> activation -> dropout] before the output layer.
        CS231n's three-layer convnet in numpy (conv - relu - 2x2 max pool - affine - relu -
        affine, weights from weight_scale * randn) is ``CNNClassifier((32,), kernel_size=7,
        norm=None, head="flatten", dense=(100,), weight_scale=1e-3)``; its PyTorch convnet
        (conv 5x5 pad 2 - relu - conv 3x3 pad 1 - relu - affine, Kaiming fan_out) is
        ``CNNClassifier((c1, c2), kernel_size=(5, 3), padding=(2, 1), norm=None, pool=None,
        head="flatten", kaiming_mode="fan_out")``.
    image_shape : (H, W) or (C, H, W), optional
        Shape of one image when X holds flat rows.
    kaiming_mode : {"fan_in", "fan_out"}, default="fan_in"
        The default initialisation's Kaiming-normal variance, 2 / fan_in (He et al.) or
        2 / fan_out (torch's recipe, and CS231n's PyTorch convnet); ``weight_scale`` overrides it.
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Tabular rows are one-row images whose global average pooling discards feature
        # positions: scikit-learn's R^2 > 0.5 check on make_regression is not a CNN's task.
        tags.regressor_tags.poor_score = True
        return tags
