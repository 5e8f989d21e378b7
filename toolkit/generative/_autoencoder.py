"""``AutoEncoder``: a plain (deterministic) auto-encoder as a scikit-learn transformer."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._export_spec import CONVERTED_MIN_OPSET, InferenceSpec, OutputSpec
from toolkit._training import inference_batches
from toolkit.generative._latent import BaseAutoEncoder
from toolkit.nn.heads import InputReshape
from toolkit.nn.vae import AutoEncoderNet


class AutoEncoder(BaseAutoEncoder):
    """Plain auto-encoder: x -> z = f(x) -> x' = g(z), fitted by minimising ||x - x'||^2.

    A deterministic auto-encoder, dense or convolutional (the same encoders and decoders as
    :class:`VAE`, without the noise and the KL term): a non-linear counterpart of PCA whose
    ``transform`` gives the codes z and ``inverse_transform`` the reconstructions, so it
    works as a Pipeline step (e.g. before a GaussianMixture). The loss is the squared error
    summed over each sample's values, averaged over the batch. Rows are centred per feature
    and divided by one common scale (the root mean variance), images mapped from their
    [min, max] to [0, 1]: both keep the loss proportional to ||x - x'||^2 in the input's
    units, the quantity PCA minimises (a per-feature standardisation would weigh a nearly
    constant pixel as much as the informative ones).

    Fitted attributes: ``module_`` (the torch net), ``history_``, ``n_iter_``,
    ``optimizer_steps_``, ``data_offset_`` / ``data_scale_``, ``n_features_in_``,
    ``feature_names_in_`` (DataFrame input).

    Parameters
    ----------
    latent_dim : int, default=2
    architecture : {"mlp", "conv"}, default="mlp"
        "conv" reads images: stride-2 convolutions down, upsampling + convolutions up.
    hidden : sequence of int, default=(256, 128)
        Hidden widths of the "mlp" encoder (the decoder mirrors them).
    channels : sequence of int, default=(32, 64)
        Channels of the "conv" encoder's levels (the decoder mirrors them).
    image_shape : (H, W) or (C, H, W), optional
        Shape of one image when X holds flat rows.
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
    max_epochs : int or None, default=None
        The budget in epochs when given; otherwise ``max_steps`` sets it.
    max_steps : int, default=10000
        Optimizer steps per fit when ``max_epochs`` is None: a budget that does not shrink
        with the data (2,000 rows at batch 200 are only 10 steps an epoch).
    ema_decay : float in [0, 1), default=0.0
        Sampling, scoring and export use an exponential moving average of the weights,
        updated after every step (w_ema <- d w_ema + (1 - d) w, d = min(ema_decay,
        (1 + k) / (10 + k)) at the k-th, diffusers' warm-up; the first step copies w), as
        diffusion code bases do; 0 uses the trained weights themselves.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (and
        with ``restore_best_weights`` return to the best epoch's weights). Without it, the
        training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int or None, default=20
        The loss is deterministic, so the held-out loss is a clean signal: without a stop a
        net of the default size overfits a data set of digits' size (held-out error rises
        again after a few hundred epochs). None trains for the whole budget.
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

    def __init__(
        self,
        latent_dim=2,
        *,
        architecture="mlp",
        hidden=(256, 128),
        channels=(32, 64),
        image_shape=None,
        optimizer="adam",
        learning_rate=1e-3,
        momentum=0.9,
        nesterov=False,
        weight_decay=0.0,
        weight_decay_on="all",
        weight_scale=None,
        batch_size="auto",
        max_epochs=None,
        max_steps=10_000,
        ema_decay=0.0,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
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
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden = hidden
        self.channels = channels
        self.image_shape = image_shape
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.weight_decay_on = weight_decay_on
        self.weight_scale = weight_scale
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_steps = max_steps
        self.ema_decay = ema_decay
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

    def _fit_scaling(self, X: np.ndarray) -> None:
        super()._fit_scaling(X)
        if self.data_scale_.ndim:  # rows: one common scale instead of one per feature
            common = np.sqrt(X.var(axis=0).mean()) or 1.0
            self.data_scale_ = np.full_like(self.data_scale_, common)

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        return AutoEncoderNet(*self._encoder_and_decoder(net_shape, self.latent_dim))

    @staticmethod
    def _loss(reconstruction: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return ((reconstruction - x) ** 2).flatten(1).sum(dim=1).mean()

    def _metric(self, reconstruction: torch.Tensor, x: torch.Tensor) -> float:
        return -self._loss(reconstruction, x).item()

    def _decoded_mean(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return net.decoder(z)

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """The codes z = f(x).

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim), float32
        """
        check_is_fitted(self, "module_")
        x = self._scale(self._check_X(X, reset=False))
        encoder = self._inference_net().encoder
        return torch.cat([encoder(self._to_tensor(x[a:b])) for a, b in inference_batches(len(x))]).cpu().numpy()

    def score(self, X, y=None) -> float:
        """Minus the mean squared reconstruction error per sample, ||x - g(f(x))||^2 summed over
        the values of a sample, in the input's units (higher is better).

        Parameters
        ----------
        X : array-like or DataFrame
        y : None
            Ignored.
        """
        original = self._check_X(X, reset=False).reshape(len(X), -1)
        rebuilt = np.asarray(self.inverse_transform(self.transform(X))).reshape(len(original), -1)
        return -float(((rebuilt - original) ** 2).sum(axis=1).mean())

    def __onnx_spec__(self) -> list[InferenceSpec]:
        """Two graphs: ``encoder`` (X -> z) and ``decoder`` (Z -> reconstruction in the input's units)."""
        check_is_fitted(self, "module_")
        net = self._exportable_module()
        feature_names = [str(c) for c in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None
        encoder = nn.Sequential(InputReshape(self.net_shape_), self._scaling(), net.encoder)
        decoder = nn.Sequential(net.decoder, self._unscaling(), InputReshape(self.input_shape_))
        return [
            InferenceSpec(
                module=encoder.eval(),
                sample_shape=self.input_shape_,
                outputs=[OutputSpec("z", self.transform, 2)],
                example=np.zeros((2, *self.input_shape_), dtype=np.float32),
                feature_names=feature_names,
                graph="encoder",
                min_opset=CONVERTED_MIN_OPSET,
            ),
            InferenceSpec(
                module=decoder.eval(),
                sample_shape=(self.latent_dim,),
                outputs=[OutputSpec("reconstruction", self.inverse_transform, 1 + len(self.input_shape_))],
                example=np.zeros((2, self.latent_dim), dtype=np.float32),
                input_name="Z",
                graph="decoder",
                input_method=self.transform,
                min_opset=CONVERTED_MIN_OPSET,
            ),
        ]
