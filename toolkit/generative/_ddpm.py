"""``DDPM``: a denoising diffusion probabilistic model (Ho et al. 2020) as an estimator."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._export_spec import InferenceSpec
from toolkit._input_checks import check_positive_ints, check_samples
from toolkit._param_validation import Interval, StrOptions
from toolkit._training import inference_batches
from toolkit.generative._base import BaseGenerativeNet
from toolkit.generative._ddpm_likelihood import DDPMLikelihood
from toolkit.generative._sampler import DiffusionSampler
from toolkit.generative._schedule import NoiseSchedule
from toolkit.nn.diffusion import DiffusionObjective, MLPDenoiser, UNet


class DDPM(DDPMLikelihood, BaseGenerativeNet):
    """Denoising diffusion probabilistic model: a net learns the noise eps(x_t, t) that the
    forward process q(x_t | x_0) added; sampling runs the reverse process from N(0, I).

    The loss is the paper's simple objective E_(t, x_0, eps) ||eps - eps_theta(x_t, t)||^2.
    Samplers: "ddpm" (ancestral, Algorithm 2; with ``n_sampling_steps`` < ``n_steps`` on a
    respaced schedule) and "ddim" (Song et al. 2021; ``eta`` = 0 deterministic). Data are
    mapped to the net's scale first (rows standardised per feature, images from their
    [min, max] to [-1, 1]) and samples mapped back.

    Parameters
    ----------
    schedule : {"linear", "cosine"}, default="linear"
        See :class:`~toolkit.generative.NoiseSchedule`.
    n_steps : int, default=1000
        T, the forward process's steps.
    architecture : {"auto", "mlp", "unet"}, default="auto"
        The denoiser: "mlp" (residual MLP with a sinusoidal time embedding) for rows,
        "unet" for images; "auto" picks "unet" for images (X of more than two dimensions,
        or ``image_shape`` given) and "mlp" otherwise.
    hidden : int, default=128
        Width of the "mlp" denoiser's blocks.
    n_blocks : int, default=3
        Residual blocks of the "mlp" denoiser.
    channels : sequence of int, default=(32, 64)
        Channels per level of the "unet" (len - 1 down-samplings).
    groups : int, default=8
        GroupNorm groups of the "unet".
    time_embedding_dim : int, default=64
    clip_sample : bool or "auto", default="auto"
        Clip the predicted x_0 to the training data's range at every sampling step (as
        diffusers' DDPMScheduler), in ``sample`` and in the exported sampler graph: pixels
        stay in range however few steps are taken. "auto" clips images and not rows.
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
    max_steps : int, default=20000
        Optimizer steps per fit when ``max_epochs`` is None: a budget that does not shrink
        with the data (2,000 rows at batch 200 are only 10 steps an epoch).
    ema_decay : float in [0, 1), default=0.999
        Sampling, scoring and export use an exponential moving average of the weights,
        updated after every step (w_ema <- d w_ema + (1 - d) w, d = min(ema_decay,
        (1 + k) / (10 + k)) at the k-th, diffusers' warm-up; the first step copies w), as
        diffusion code bases do; 0 uses the trained weights themselves.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers),
        stop when its loss has not improved by ``tol`` for ``n_iter_no_change`` epochs (and
        with ``restore_best_weights`` return to the best epoch's weights). Without it, the
        training loss is watched the same way.
    validation_fraction : float, default=0.1
    n_iter_no_change : int or None, default=None
        None trains for the whole budget: the loss of a generative net is noisy (the DDPM's
        draws t and the noise anew each batch) and sample quality keeps improving after it
        flattens, so a patience rule on it stops too soon. An int restores the rule.
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

    _parameter_constraints: dict = {
        **BaseGenerativeNet._parameter_constraints,
        "schedule": [StrOptions({"linear", "cosine"})],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "architecture": [StrOptions({"auto", "mlp", "unet"})],
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "n_blocks": [Interval(Integral, 1, None, closed="left")],
        "channels": ["array-like"],
        "groups": [Interval(Integral, 1, None, closed="left")],
        "time_embedding_dim": [Interval(Integral, 2, None, closed="left")],
        "clip_sample": ["boolean", StrOptions({"auto"})],
    }
    _IMAGE_ARCHITECTURES = ("unet",)

    def __init__(
        self,
        *,
        schedule="linear",
        n_steps=1000,
        architecture="auto",
        hidden=128,
        n_blocks=3,
        channels=(32, 64),
        groups=8,
        time_embedding_dim=64,
        clip_sample="auto",
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
        max_steps=20_000,
        ema_decay=0.999,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=None,
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
        self.schedule = schedule
        self.n_steps = n_steps
        self.architecture = architecture
        self.hidden = hidden
        self.n_blocks = n_blocks
        self.channels = channels
        self.groups = groups
        self.time_embedding_dim = time_embedding_dim
        self.clip_sample = clip_sample
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

    # ------------------------------------------------------------------ the net
    def _check_parameters(self) -> None:
        super()._check_parameters()
        check_positive_ints(self.channels, "channels")
        if self.time_embedding_dim % 2:
            raise ValueError(f"time_embedding_dim must be even, got {self.time_embedding_dim}")

    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        images = len(sample_shape) > 1 or self.image_shape is not None
        self.architecture_ = ("unet" if images else "mlp") if self.architecture == "auto" else self.architecture
        return super()._net_shape(sample_shape)

    def _architecture(self) -> str:
        return self.architecture_

    def _image_range(self) -> tuple[float, float]:
        return (-1.0, 1.0)

    def _initialize(self) -> None:
        self.schedule_ = NoiseSchedule(self.schedule, self.n_steps)
        super()._initialize()

    def _fit_scaling(self, X: np.ndarray) -> None:
        """The data scaling, and ``clip_range_``: the training data's range in the net's scale
        ([-1, 1] for images; per feature for rows), or None when ``clip_sample`` is off."""
        super()._fit_scaling(X)
        images = len(self.net_shape_) == 3 or self.image_shape is not None
        if not (images if self.clip_sample == "auto" else self.clip_sample):
            self.clip_range_ = None
        elif images:
            self.clip_range_ = (np.float32(-1.0), np.float32(1.0))
        else:
            scaled = self._scale(X)
            self.clip_range_ = (scaled.min(axis=0), scaled.max(axis=0))
        integral = images and np.array_equal(X, np.round(X)) and X.max() > X.min()
        self.n_levels_ = int(X.max() - X.min()) + 1 if integral else None

    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        if self.architecture_ == "unet":
            denoiser = UNet(
                net_shape, check_positive_ints(self.channels, "channels"), self.groups, self.time_embedding_dim
            )
        else:
            denoiser = MLPDenoiser(net_shape[0], self.hidden, self.n_blocks, self.time_embedding_dim)
        return DiffusionObjective(denoiser, self.schedule_.alpha_bar)

    @staticmethod
    def _loss(outputs, x0: torch.Tensor) -> torch.Tensor:
        predicted, eps = outputs
        return F.mse_loss(predicted, eps)

    def _metric(self, outputs, x0: torch.Tensor) -> float:
        return -self._loss(outputs, x0).item()

    # ---------------------------------------------------------------- denoising
    def _check_noisy(self, X_t, name: str) -> torch.Tensor:
        """Samples in the net's scaled space, on the fit's device."""
        X_t = check_samples(X_t, tuple(self.net_shape_), name, "the net's scaled space")
        return torch.from_numpy(X_t).to(self.device_)

    @torch.no_grad()
    def predict_noise(self, X_t, t) -> np.ndarray:
        """eps_theta(x_t, t): the noise the net sees in x_t at step t.

        Parameters
        ----------
        X_t : array of shape (n, *net_shape_)
            Noisy samples in the net's scaled space.
        t : int or array of int of shape (n,)
            Steps in 0..n_steps-1.

        Returns
        -------
        eps : ndarray of shape (n, *net_shape_)
        """
        check_is_fitted(self, "module_")
        x = self._check_noisy(X_t, "X_t")
        t = torch.as_tensor(self.schedule_.check_steps(t, len(x)), device=self.device_)
        denoiser = self._inference_net().denoiser
        return torch.cat([denoiser(x[a:b], t[a:b]) for a, b in inference_batches(len(x))]).cpu().numpy()

    @torch.no_grad()
    def denoising_loss(self, X) -> float:
        """Mean squared error of the predicted noise on X, one (t, eps) draw per row from a
        generator seeded by ``random_state``: the training objective on held-out data."""
        check_is_fitted(self, "module_")
        x0 = torch.from_numpy(self._scale(self._check_X(X, reset=False))).to(self.device_)
        generator = self._generator(self.random_state)
        t = torch.randint(0, self.n_steps, (len(x0),), generator=generator).to(self.device_)
        eps = self._randn(tuple(x0.shape), generator)
        objective = self._inference_net()
        total = 0.0
        for a, b in inference_batches(len(x0)):
            predicted = objective.denoiser(objective.noisy(x0[a:b], t[a:b], eps[a:b]), t[a:b])
            total += F.mse_loss(predicted, eps[a:b], reduction="sum").item()
        return total / eps.numel()

    def score(self, X, y=None) -> float:
        """Minus the mean denoising loss on X (scikit-learn's higher-is-better convention)."""
        return -self.denoising_loss(X)

    # ----------------------------------------------------------------- sampling
    def _sampler(self, sampler: str, n_sampling_steps, eta) -> DiffusionSampler:
        """The reverse process for these settings (checked), clipping to ``clip_range_``."""
        return DiffusionSampler(self.schedule_, sampler, n_sampling_steps, eta, self.clip_range_)

    def sample(
        self,
        n_samples: int = 1,
        random_state=None,
        *,
        sampler: str = "ddpm",
        n_sampling_steps: int | None = None,
        eta: float = 0.0,
    ):
        """Draw samples by the reverse process.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
            Seeds the initial noise and the per-step noise.
        sampler : {"ddpm", "ddim"}, default="ddpm"
        n_sampling_steps : int, optional
            Steps visited (evenly spaced); default all ``n_steps``.
        eta : float, default=0.0
            DDIM's noise scale (0: deterministic; 1: DDPM's variance).

        Returns
        -------
        X : DataFrame (fitted on one: its columns), or ndarray of the input's sample shape
        """
        n_samples = self._check_n_samples(n_samples)
        reverse = self._sampler(sampler, n_sampling_steps, eta)
        generator = self._generator(random_state)
        shape = (n_samples, *self.net_shape_)
        denoiser = self._inference_net().denoiser
        x = reverse.run(denoiser, self._randn(shape, generator), lambda i: self._randn(shape, generator))
        return self._to_input_form(x)

    def sample_from_noise(
        self, initial_noise, step_noise, *, sampler: str = "ddpm", n_sampling_steps: int | None = None, eta: float = 0.0
    ):
        """The reverse process fed given noise, so that a run can be repeated and compared.

        Parameters
        ----------
        initial_noise : array of shape (n, *net_shape_)
            x_T.
        step_noise : array of shape (n, S, *net_shape_)
            z of each of the S visited steps (S = ``n_sampling_steps`` or ``n_steps``).
        sampler, n_sampling_steps, eta
            As in :meth:`sample`.
        """
        check_is_fitted(self, "module_")
        reverse = self._sampler(sampler, n_sampling_steps, eta)
        x = self._check_noisy(initial_noise, "initial_noise")
        noise = np.asarray(step_noise, dtype=np.float32)
        expected = (len(x), len(reverse), *self.net_shape_)
        if noise.shape != expected:
            raise ValueError(f"step_noise must have shape {expected} (n, steps, *net_shape_), got {noise.shape}")
        noise = torch.from_numpy(np.ascontiguousarray(noise)).to(self.device_)
        return self._to_input_form(reverse.run(self._inference_net().denoiser, x, lambda i: noise[:, i]))

    def sampling_noise(
        self, n_samples: int, random_state=None, *, n_sampling_steps: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Noise for :meth:`sample_from_noise` (and the exported sampler graph).

        Returns
        -------
        initial_noise : ndarray of shape (n_samples, *net_shape_)
        step_noise : ndarray of shape (n_samples, S, *net_shape_)
        """
        n_samples = self._check_n_samples(n_samples)
        n_visited = len(self.schedule_.timesteps(n_sampling_steps))
        rng = check_random_state(random_state)
        initial = rng.standard_normal((n_samples, *self.net_shape_)).astype(np.float32)
        return initial, rng.standard_normal((n_samples, n_visited, *self.net_shape_)).astype(np.float32)

    def diffuse(self, X, t=None, random_state=None) -> tuple[np.ndarray, np.ndarray]:
        """Draw x_t ~ q(x_t | x_0) for the rows of X (the forward process, in the net's scale).

        Parameters
        ----------
        X : array-like or DataFrame
            Clean samples x_0 in the input's units and form.
        t : int or array of int of shape (n,), optional
            Steps; default evenly spread over 0..n_steps-1 across the rows.
        random_state : int, RandomState instance or None

        Returns
        -------
        X_t : ndarray of shape (n, *net_shape_)
        t : ndarray of int64 of shape (n,)
        """
        check_is_fitted(self, "module_")
        x0 = self._scale(self._check_X(X, reset=False))
        t = self.schedule_.check_steps(
            np.linspace(0, self.n_steps - 1, len(x0)).round().astype(np.int64) if t is None else t, len(x0)
        )
        eps = check_random_state(random_state).standard_normal(x0.shape).astype(np.float32)
        return self.schedule_.diffuse(x0, t, eps).astype(np.float32), t

    # ------------------------------------------------------------------- export
    def __onnx_spec__(
        self, sampler: str = "ddpm", n_sampling_steps: int | None = None, eta: float = 0.0
    ) -> list[InferenceSpec]:
        """Two graphs: ``denoiser`` (X_t, t) -> eps in the net's scale, and ``sampler``:
        (initial_noise, step_noise) -> samples in the data's units, the whole reverse process
        for the sampler settings given here (recorded in model.json); see
        :mod:`toolkit.generative._ddpm_export`."""
        check_is_fitted(self, "module_")
        reverse = self._sampler(sampler, n_sampling_steps, eta)
        settings = {"sampler": sampler, "n_sampling_steps": n_sampling_steps, "eta": eta}
        from toolkit.generative._ddpm_export import diffusion_specs  # onnx, imported for exports only

        return diffusion_specs(self, self._exportable_module().denoiser, reverse, settings)
