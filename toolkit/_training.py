"""The one training loop every torch-backed estimator uses.

It follows skorch's split of one loop into small overridable steps (``fit_loop`` ->
``run_epoch`` -> ``train_step``), without its habit of doing work in ``__init__``.
Batches are cut from tensors already on the device by one permutation per epoch, so the
hot loop does no per-sample Python work and no host/device copy. Around it: a learning-rate
schedule stepped once per epoch, gradient clipping, early stopping that may restore the best
epoch's weights, and user callbacks (plain objects with optional ``on_train_begin``,
``on_epoch_end`` and ``on_train_end`` hooks, as skorch's and Keras').
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from toolkit._progress import progress_bar
from toolkit.nn.layers import has_batch_norm

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` is CUDA when torch sees a GPU, else the CPU; anything else is passed to torch.

    A string torch does not read as a device is a ValueError naming the ``device`` parameter.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device: {error}") from None


@contextmanager
def seeded_rng(seed: int, device: torch.device):
    """Fork torch's global RNG (the CPU's, and the GPU's in use) and seed it, so that
    initialisation and dropout are reproducible without disturbing the caller's RNG."""
    devices = [torch.cuda.current_device() if device.index is None else device.index] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type):
        torch.manual_seed(seed)
        yield


def make_optimizer(
    name: str,
    params,
    *,
    learning_rate: float,
    weight_decay: float,
    momentum: float,
    nesterov: bool,
    weight_decay_on: str = "all",
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` in {"adam", "adamw", "sgd", "rmsprop"}.

    ``weight_decay`` is an L2 penalty added to the gradient for adam, sgd and rmsprop, and
    decoupled weight decay for adamw; ``weight_decay_on="weights"`` gives it to the tensors of
    two or more dimensions alone (weight matrices and kernels) and 0 to the rest (biases,
    norm parameters), two parameter groups. Adam and AdamW use torch's fused kernel (one pass
    over all parameters per step; ~15 % of a small net's step time saved on CPU against the
    per-tensor loop) where every parameter is a float tensor on a CPU or CUDA device.
    """
    params = list(params)
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params) or None
    groups = [{"params": params}]
    if weight_decay_on == "weights":
        decayed = [p for p in params if p.dim() >= 2]
        kept = [p for p in params if p.dim() < 2]
        groups = [group for group in ({"params": decayed}, {"params": kept, "weight_decay": 0.0}) if group["params"]]
    if name == "adam":
        return torch.optim.Adam(groups, lr=learning_rate, weight_decay=weight_decay, fused=fused)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=learning_rate, weight_decay=weight_decay, fused=fused)
    if name == "sgd":
        return torch.optim.SGD(
            groups, lr=learning_rate, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=learning_rate, weight_decay=weight_decay, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}")


LR_SCHEDULES = {
    # name: torch's scheduler (default options in make_lr_scheduler)
    "step": torch.optim.lr_scheduler.StepLR,
    "exponential": torch.optim.lr_scheduler.ExponentialLR,
    "cosine": torch.optim.lr_scheduler.CosineAnnealingLR,
    "plateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
}


def make_lr_scheduler(schedule, optimizer: torch.optim.Optimizer, *, max_epochs: int):
    """The scheduler ``schedule`` describes, stepped once per epoch (None: a constant rate).

    ``schedule`` is a name in ``LR_SCHEDULES`` or a (name, options) pair: "step" (StepLR,
    default step_size = max_epochs // 3, gamma = 0.1), "exponential" (ExponentialLR, default
    gamma = 0.95), "cosine" (CosineAnnealingLR, default T_max = max_epochs), "plateau"
    (ReduceLROnPlateau on the monitored loss, default factor = 0.1, patience = 10); or a
    callable ``factory(optimizer) -> scheduler``, e.g. ``functools.partial(StepLR, step_size=5)``.
    """
    if schedule is None:
        return None
    if callable(schedule):
        return schedule(optimizer)
    name, options = (schedule, {}) if isinstance(schedule, str) else schedule
    if name not in LR_SCHEDULES or not isinstance(options, dict):
        raise ValueError(
            f"lr_schedule must be one of {sorted(LR_SCHEDULES)}, a (name, options dict) pair or a callable, got "
            f"{schedule!r}"
        )
    defaults = {
        "step": {"step_size": max(1, max_epochs // 3), "gamma": 0.1},
        "exponential": {"gamma": 0.95},
        "cosine": {"T_max": max_epochs},
        "plateau": {"factor": 0.1, "patience": 10},
    }[name]
    try:
        return LR_SCHEDULES[name](optimizer, **{**defaults, **options})
    except TypeError as error:
        raise ValueError(f"lr_schedule options {options!r} do not fit {LR_SCHEDULES[name].__name__}: {error}") from None


@dataclass(frozen=True)
class EMAUpdate:
    """The update of an exponential moving average of the weights, for torch's AveragedModel
    (a class, so that a fitted estimator pickles): w_ema <- d w_ema + (1 - d) w with
    d = min(decay, (1 + k) / (10 + k)) after k averaged steps (the warm-up diffusers' EMAModel
    uses), so that a short fit is not held near its initial weights. AveragedModel copies the
    weights on the first step."""

    decay: float

    def __call__(self, averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged) -> None:
        k = float(n_averaged)
        torch._foreach_lerp_(averaged, current, 1 - min(self.decay, (1 + k) / (10 + k)))


def call_hook(callbacks: Sequence, hook: str, *args) -> bool:
    """Call ``hook`` on every callback that has it; True when one of them returned True (stop)."""
    results = [getattr(callback, hook)(*args) for callback in callbacks if hasattr(callback, hook)]
    return any(result is True for result in results)


def batch_bounds(n_samples: int, batch_size: int, *, avoid_singletons: bool) -> list[tuple[int, int]]:
    """[start, stop) of each batch. With ``avoid_singletons`` a trailing batch of one sample
    joins the batch before it (batch norm cannot normalise a single sample)."""
    bounds = [(start, min(start + batch_size, n_samples)) for start in range(0, n_samples, batch_size)]
    if avoid_singletons and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n_samples)]
    return bounds


INFERENCE_BATCH_SIZE = 4096  # rows per forward pass outside training (evaluation, predict, sampling)


def inference_batches(n_samples: int) -> list[tuple[int, int]]:
    """[start, stop) of the blocks inference runs in: ``INFERENCE_BATCH_SIZE`` rows each."""
    return batch_bounds(n_samples, INFERENCE_BATCH_SIZE, avoid_singletons=False)


@dataclass
class StoppingRule:
    """Stop when the monitored loss has not improved by ``tol`` for ``patience`` epochs.

    Remembers the best loss and, when ``keep_best`` is set, a copy of the module's weights
    at that epoch so that they can be restored at the end.
    """

    patience: int
    tol: float
    keep_best: bool
    best: float = math.inf
    best_state: dict | None = None
    n_bad_epochs: int = 0

    def update(self, loss: float, module: nn.Module) -> bool:
        """Record one epoch's loss; return True when training should stop."""
        if loss < self.best - self.tol:
            self.n_bad_epochs = 0
        else:
            self.n_bad_epochs += 1
        if loss < self.best:
            self.best = loss
            if self.keep_best:
                self.best_state = copy.deepcopy(module.state_dict())
        return self.n_bad_epochs >= self.patience


@dataclass
class TrainingLoop:
    """Mini-batch training of ``module`` with ``optimizer`` on tensors already on ``device``.

    Parameters
    ----------
    module : nn.Module
        Maps a batch of inputs to what ``loss_fn`` compares with the targets.
    optimizer : torch.optim.Optimizer
    loss_fn : callable (outputs, targets) -> scalar tensor, a mean over the batch
    metric_fn : callable (outputs, targets) -> float, higher is better
    batch_size : int
    generator : torch.Generator
        Draws the per-epoch permutations (CPU), so shuffling is reproducible.
    history : list of dict
        One dict per epoch is appended (kept across calls: warm starts continue it).
    scheduler : torch learning-rate scheduler, optional
        Stepped after each epoch (ReduceLROnPlateau with the monitored loss).
    max_grad_norm : float, optional
        Gradients are scaled so that their global L2 norm is at most this before each step.
    callbacks : sequence of objects
        Their optional ``on_train_begin(owner, history)``, ``on_epoch_end(owner, history)``
        and ``on_train_end(owner, history)`` are called; ``on_epoch_end`` returning True
        stops training after that epoch.
    owner : object, optional
        What the callbacks receive first (the estimator).
    averaged : torch.optim.swa_utils.AveragedModel, optional
        Updated after every optimizer step (an exponential moving average of the weights).
    train_sample : (X, y) tensors, optional
        Training rows scored in eval mode after every epoch (``train_metric`` in the history).
    shard : (rank, world size), optional
        Data-parallel training (toolkit/_distributed.py): each epoch this rank trains on its
        DistributedSampler shard of the shuffled rows, batch_size / world of every global
        batch, through ``trainer`` (the DistributedDataParallel wrapper of ``module``); the
        epoch's loss is averaged over all ranks.
    trainer : nn.Module, optional
        What the training steps call instead of ``module`` (DDP's wrapper).
    max_steps : int, optional
        Optimizer steps after which training ends, mid-epoch if need be (the last epoch's
        loss is then the mean over the batches it ran).
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    metric_fn: MetricFn
    batch_size: int
    generator: torch.Generator
    history: list[dict] = field(default_factory=list)
    scheduler: object | None = None
    max_grad_norm: float | None = None
    callbacks: Sequence = ()
    owner: object | None = None
    averaged: torch.optim.swa_utils.AveragedModel | None = None
    max_steps: int | None = None
    train_sample: tuple[torch.Tensor, torch.Tensor] | None = None
    shard: tuple[int, int] | None = None
    trainer: nn.Module | None = None
    steps: int = 0

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on one batch; returns the (detached) batch loss.

        Gradients (clipped, with ``max_grad_norm``) stay in ``param.grad`` after the step,
        for inspection.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn((self.trainer or self.module)(X), y)
        loss.backward()
        if self.max_grad_norm is not None:
            nn.utils.clip_grad_norm_(self.module.parameters(), self.max_grad_norm)
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.module)
        self.steps += 1
        return loss.detach()

    def _epoch_order(self, n: int, device) -> tuple[torch.Tensor, int]:
        """(the rows this process trains on this epoch, in order; its batch size)."""
        if self.shard is None:
            return torch.randperm(n, generator=self.generator).to(device), self.batch_size
        from torch.utils.data import DistributedSampler

        rank, world = self.shard
        seed = int(torch.randint(2**31 - 1, (), generator=self.generator))  # the same on every rank
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
        return torch.tensor(list(sampler), device=device), max(1, self.batch_size // world)

    def run_epoch(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """One pass over (X, y) in shuffled batches; returns the mean training loss."""
        self.module.train()
        order, batch_size = self._epoch_order(X.shape[0], X.device)
        total, seen = torch.zeros((), device=X.device), 0
        for start, stop in batch_bounds(len(order), batch_size, avoid_singletons=has_batch_norm(self.module)):
            if self.max_steps is not None and self.steps >= self.max_steps:
                break
            index = order[start:stop]
            total += self.train_step(X[index], y[index]) * (stop - start)
            seen += stop - start
        if self.shard is not None:
            import torch.distributed as dist

            sums = torch.stack([total, torch.tensor(float(seen), device=X.device)])
            dist.all_reduce(sums)
            total, seen = sums[0], int(sums[1].item())
        return total.item() / max(seen, 1)

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(mean loss, metric) of the module in eval mode on (X, y)."""
        self.module.eval()
        chunks = [self.module(X[a:b]) for a, b in inference_batches(len(X))]
        # A module may return several tensors (a VAE's reconstruction, mean and log-variance).
        outputs = (
            tuple(torch.cat(parts) for parts in zip(*chunks)) if isinstance(chunks[0], tuple) else torch.cat(chunks)
        )
        return self.loss_fn(outputs, y).item(), self.metric_fn(outputs, y)

    def fit_loop(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        max_epochs: int,
        stopping: StoppingRule | None,
        validation: tuple[torch.Tensor, torch.Tensor] | None = None,
        verbose: bool = False,
        description: str | None = None,
    ) -> bool:
        """Train for up to ``max_epochs`` epochs, appending one dict per epoch to ``history``.

        The stopping rule watches the validation loss when ``validation`` is given, else the
        training loss; when it keeps the best weights they are restored at the end. Returns
        whether the rule or a callback stopped training (False: ``max_epochs`` or ``max_steps``
        ran out first). With ``verbose``, a tqdm bar (labelled ``description``) shows the
        epochs and the losses.
        """
        epochs = progress_bar(range(max_epochs), verbose=verbose, unit="epoch", leave=False, desc=description)
        stopped = False
        call_hook(self.callbacks, "on_train_begin", self.owner, self.history)
        for _ in epochs:
            started = time.perf_counter()
            learning_rate = self.optimizer.param_groups[0]["lr"]
            train_loss = self.run_epoch(X, y)
            valid_loss, valid_metric = self.evaluate(*validation) if validation is not None else (math.nan, math.nan)
            train_metric = self.evaluate(*self.train_sample)[1] if self.train_sample is not None else math.nan
            self.history.append(
                {
                    "epoch": len(self.history) + 1,
                    "train_loss": train_loss,
                    "train_metric": train_metric,
                    "valid_loss": valid_loss,
                    "valid_metric": valid_metric,
                    "learning_rate": learning_rate,
                    "duration": time.perf_counter() - started,
                }
            )
            shown = {"train_loss": f"{train_loss:.4g}"}
            if validation is not None:
                shown["valid_loss"] = f"{valid_loss:.4g}"
            epochs.set_postfix(shown)
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training loss became {train_loss} at epoch {len(self.history)}; "
                    "lower learning_rate or scale the inputs"
                )
            monitored = valid_loss if validation is not None else train_loss
            if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                self.scheduler.step(monitored)
            elif self.scheduler is not None:
                self.scheduler.step()
            if call_hook(self.callbacks, "on_epoch_end", self.owner, self.history):
                stopped = True
                break
            if stopping is not None and stopping.update(monitored, self.module):
                stopped = True
                break
            if self.max_steps is not None and self.steps >= self.max_steps:
                break
        if stopping is not None and stopping.best_state is not None:
            self.module.load_state_dict(stopping.best_state)
        call_hook(self.callbacks, "on_train_end", self.owner, self.history)
        return stopped
