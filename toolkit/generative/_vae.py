"""``VAE``: a variational auto-encoder as a scikit-learn transformer."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from toolkit._export_spec import CONVERTED_MIN_OPSET, InferenceSpec, OutputSpec
from toolkit._param_validation import Interval, StrOptions
from toolkit._training import inference_batches
from toolkit.generative._latent import BaseAutoEncoder
from toolkit.nn.heads import InputReshape
from toolkit.nn.vae import (
    GaussianEncoder,
    ObservationMean,
    ObservationModel,
    VAEModel,
    VariationalAutoEncoder,
    gaussian_kl,
)


class VAE(BaseAutoEncoder):
    """Variational auto-encoder (Kingma & Welling 2014), fitted by maximising the ELBO.

    ELBO(x) = E_q(z|x)[log p(x | z)] - beta * KL(q(z | x) || N(0, I)), with
    q(z | x) = N(mean(x), diag(exp(log_var(x)))) and one reparameterised draw
    z = mean + exp(log_var / 2) * eps per row and step. As a transformer, ``transform``
    gives the latent means and ``inverse_transform`` decodes latent points back to the
    input space, so it works as a step of a Pipeline (e.g. StandardScaler -> VAE ->
    GaussianMixture to cluster in the latent space).

    Inputs are mapped to the net's scale first: rows standardised per feature, images
    linearly from their [min, max] to [0, 1]; outputs are mapped back, and ELBOs are in
    nats of the input's own units (the Gaussian likelihood includes the scaling's
    Jacobian; a Bernoulli likelihood is a probability of the [0, 1] values and has none).

    Parameters
    ----------
    latent_dim : int, default=2
    architecture : {"mlp", "conv"}, default="mlp"
        "conv" reads images: stride-2 convolutions down, upsampling + convolutions up.
    hidden : sequence of int, default=(256, 128)
        Hidden widths of the "mlp" encoder (the decoder mirrors them).
    channels : sequence of int, default=(32, 64)
        Channels of the "conv" encoder's levels (the decoder mirrors them).
    likelihood : {"gaussian", "bernoulli"}, default="gaussian"
        p(x | z): Gaussian with a learned variance per value, or Bernoulli (needs values
        that scale to [0, 1]: images, or rows already in [0, 1]).
    beta : float, default=1.0
        Weight of the KL term (beta-VAE); the reported ELBO always uses beta = 1.
    kl_warmup : float in [0, 1], default=0.5
        Share of the training budget over which the KL term's weight rises linearly from 0
        to ``beta`` (epoch by epoch). Without it a VAE with a learned observation variance
        often lets q(z | x) collapse onto the prior and explains the data as noise (on 8
        Gaussians on a circle: samples no better than one Gaussian's).
    n_elbo_samples : int, default=8
        Draws of z per row in ``elbo`` / ``score``, from a generator seeded by ``random_state``.
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
        **BaseAutoEncoder._parameter_constraints,
        "likelihood": [StrOptions({"gaussian", "bernoulli"})],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Real, 0, 1, closed="both")],
        "n_elbo_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        latent_dim=2,
        *,
        architecture="mlp",
        hidden=(256, 128),
        channels=(32, 64),
        likelihood="gaussian",
        beta=1.0,
        kl_warmup=0.5,
        n_elbo_samples=8,
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
        self.latent_dim = latent_dim
        self.architecture = architecture
        self.hidden = hidden
        self.channels = channels
        self.likelihood = likelihood
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.n_elbo_samples = n_elbo_samples
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
    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        encoder, decoder = self._encoder_and_decoder(net_shape, 2 * self.latent_dim)
        encoder = GaussianEncoder(encoder, self.latent_dim)
        return VAEModel(VariationalAutoEncoder(encoder, decoder), ObservationModel(self.likelihood, net_shape))

    def _fit_scaling(self, X: np.ndarray) -> None:
        super()._fit_scaling(X)
        if self.likelihood == "bernoulli":
            scaled = self._scale(X)
            if scaled.min() < -1e-6 or scaled.max() > 1 + 1e-6:
                raise ValueError(
                    "likelihood='bernoulli' needs values in [0, 1] after scaling: pass images, or rows in [0, 1] "
                    f"(X scales to [{scaled.min():.3g}, {scaled.max():.3g}] by per-feature standardisation)"
                )

    def _log_jacobian(self) -> float:
        """log |d scaled / d x| summed over one sample: the Gaussian ELBO in input units."""
        if self.likelihood != "gaussian":
            return 0.0
        return -float(np.sum(np.broadcast_to(np.log(self.data_scale_), self.net_shape_)))

    def _elbo_terms(self, x: torch.Tensor, noise: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x | z), KL) per row for z = mean + std * noise (noise None: training's own draw)."""
        model = self._inference_net()
        mean, log_var = model.autoencoder.encoder(x)
        if noise is None:
            noise = torch.randn_like(mean)
        decoded = model.autoencoder.decoder(mean + torch.exp(0.5 * log_var) * noise)
        return model.observation.log_likelihood(decoded, x), gaussian_kl(mean, log_var)

    def _loss(self, outputs, x: torch.Tensor) -> torch.Tensor:
        decoded, mean, log_var = outputs
        reconstruction = self.module_.observation.log_likelihood(decoded, x)
        weight = self.beta * getattr(self, "_kl_scale", 1.0)  # below 1 only during the warm-up
        return -(reconstruction - weight * gaussian_kl(mean, log_var)).mean()

    def _internal_callbacks(self, max_epochs: int) -> list:
        return [KLWarmup(max(1, round(self.kl_warmup * max_epochs)))] if self.kl_warmup > 0 else []

    def _metric(self, outputs, x: torch.Tensor) -> float:
        return -self._loss(outputs, x).item()

    # --------------------------------------------------------------- transformer
    @torch.no_grad()
    def encode(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Mean and log-variance of q(z | x).

        Returns
        -------
        mean, log_var : ndarray of shape (n_samples, latent_dim)
        """
        check_is_fitted(self, "module_")
        x = self._scale(self._check_X(X, reset=False))
        encoder = self._inference_net().autoencoder.encoder
        parts = [encoder(self._to_tensor(x[a:b])) for a, b in inference_batches(len(x))]
        return tuple(torch.cat([p[i] for p in parts]).cpu().numpy() for i in range(2))

    def transform(self, X) -> np.ndarray:
        """Latent means E[z | x]; shape (n_samples, latent_dim)."""
        return self.encode(X)[0]

    def _decoded_mean(self, net: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return net.observation.mean(net.autoencoder.decoder(z))

    @torch.no_grad()
    def sample(self, n_samples: int = 1, random_state=None, *, observation_noise: bool = False):
        """Draw z ~ N(0, I) and decode it, in the input's units and form.

        Parameters
        ----------
        n_samples : int, default=1
        random_state : int, RandomState instance or None
        observation_noise : bool, default=False
            Draw x ~ p(x | z) (the model's full generative process) instead of returning the
            mean E[x | z] (the usual picture of a VAE's samples).
        """
        n_samples = self._check_n_samples(n_samples)
        generator = self._generator(random_state)
        mean = self._decode(self._randn((n_samples, self.latent_dim), generator))
        if observation_noise:
            mean = self._inference_net().observation.draw(mean, generator)
        return self._to_input_form(mean)

    # ------------------------------------------------------------------- ELBO
    @torch.no_grad()
    def elbo(self, X) -> pd.DataFrame:
        """Per-sample ELBO and its two terms, in nats (``n_elbo_samples`` draws of z per row).

        Returns
        -------
        DataFrame with columns ``reconstruction`` (E_q[log p(x | z)]), ``kl``
        (KL(q(z | x) || p(z)), closed form) and ``elbo`` (reconstruction - kl); index as X's
        when X is a DataFrame.
        """
        check_is_fitted(self, "module_")
        x = self._scale(self._check_X(X, reset=False))
        generator = self._generator(self.random_state)
        reconstruction, kl = [], []
        for a, b in inference_batches(len(x)):
            batch = self._to_tensor(x[a:b])
            draws = [
                self._elbo_terms(batch, self._randn((b - a, self.latent_dim), generator))
                for _ in range(self.n_elbo_samples)
            ]
            reconstruction.append(torch.stack([d[0] for d in draws]).mean(dim=0))
            kl.append(draws[0][1])
        reconstruction = torch.cat(reconstruction).cpu().numpy().astype(np.float64) + self._log_jacobian()
        kl = torch.cat(kl).cpu().numpy().astype(np.float64)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame({"reconstruction": reconstruction, "kl": kl, "elbo": reconstruction - kl}, index=index)

    @torch.no_grad()
    def log_likelihood(self, X, n_samples: int = 100, random_state=None) -> np.ndarray:
        """Importance-weighted estimate of log p(x) per sample, in nats of the input's units.

        The ELBO bounds log p(x) = log E_q(z|x)[p(x | z) p(z) / q(z | x)] from below by moving
        the log inside the expectation (Jensen). Averaging k importance weights inside the
        log gives the tighter IWAE bound (Burda et al. 2016),

            L_k(x) = E[log (1/k) sum_i p(x | z_i) p(z_i) / q(z_i | x)],  z_1..z_k ~ q(z | x),

        with L_1 = ELBO <= L_k <= L_(k+1) <= log p(x), and L_k -> log p(x) as k grows. This
        returns one draw of the estimate per sample (a Gaussian likelihood includes the
        scaling's Jacobian, so the figure is in the input's own units).

        Parameters
        ----------
        X : array-like or DataFrame
        n_samples : int, default=100
            k, the draws of z per sample; 1 gives a one-draw estimate of the ELBO.
        random_state : int, RandomState instance or None
            Seeds the draws (None: ``random_state`` of the estimator).

        Returns
        -------
        log_p : ndarray of shape (n_samples_X,)
        """
        check_is_fitted(self, "module_")
        if not isinstance(n_samples, Integral) or isinstance(n_samples, bool) or n_samples < 1:
            raise ValueError(f"n_samples must be an int >= 1, got {n_samples!r}")
        x = self._scale(self._check_X(X, reset=False))
        model = self._inference_net()
        generator = self._generator(self.random_state if random_state is None else random_state)
        out = []
        chunk = max(1, 4096 // n_samples)  # rows per pass, so that k draws of z fit in one batch
        for a in range(0, len(x), chunk):
            batch = self._to_tensor(x[a : a + chunk])  # (B, *net_shape)
            mean, log_var = model.autoencoder.encoder(batch)  # (B, L)
            noise = self._randn((n_samples, *mean.shape), generator)  # (k, B, L)
            z = mean + torch.exp(0.5 * log_var) * noise
            flat_z = z.reshape(-1, mean.shape[1])  # (k B, L)
            repeated = batch.unsqueeze(0).expand(n_samples, *batch.shape).reshape(-1, *batch.shape[1:])
            log_px = model.observation.log_likelihood(model.autoencoder.decoder(flat_z), repeated).reshape(
                n_samples, -1
            )
            log_pz = -0.5 * (z**2 + math.log(2 * math.pi)).sum(dim=2)
            log_qz = -0.5 * (noise**2 + log_var + math.log(2 * math.pi)).sum(dim=2)
            out.append(torch.logsumexp(log_px + log_pz - log_qz, dim=0) - math.log(n_samples))
        return torch.cat(out).double().cpu().numpy() + self._log_jacobian()

    def score(self, X, y=None) -> float:
        """Mean ELBO per sample in nats (higher is better); :meth:`log_likelihood` gives the
        tighter importance-weighted estimate of log p(x)."""
        return float(self.elbo(X)["elbo"].mean())

    # ------------------------------------------------------------------- export
    def __onnx_spec__(self) -> list[InferenceSpec]:
        """Two graphs: ``encoder`` (X -> mean, log_var) and ``decoder`` (Z -> E[x | z] in input units)."""
        check_is_fitted(self, "module_")
        model = self._exportable_module()
        feature_names = [str(c) for c in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None
        encoder = nn.Sequential(InputReshape(self.net_shape_), self._scaling(), model.autoencoder.encoder)
        decoder = nn.Sequential(
            model.autoencoder.decoder,
            ObservationMean(model.observation),
            self._unscaling(),
            InputReshape(self.input_shape_),
        )
        return [
            InferenceSpec(
                module=encoder.eval(),
                sample_shape=self.input_shape_,
                outputs=[OutputSpec("mean", self.transform, 2), OutputSpec("log_var", self.encode, 2, item=1)],
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


class KLWarmup:
    """Raises the VAE's KL weight linearly from 0 to 1 (times ``beta``) over ``epochs`` epochs."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_begin(self, vae: VAE, history: list) -> None:
        vae._kl_scale = min(1.0, len(history) / self.epochs)  # a warm start continues the ramp

    def on_epoch_end(self, vae: VAE, history: list) -> None:
        vae._kl_scale = min(1.0, len(history) / self.epochs)

    def on_train_end(self, vae: VAE, history: list) -> None:
        vae._kl_scale = 1.0
