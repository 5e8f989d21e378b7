"""The one training loop every torch-backed estimator uses.

It follows skorch's split of one loop into small overridable steps (``fit_loop`` ->
``run_epoch`` -> ``train_step``), without its habit of doing work in ``__init__``.
Batches are cut from tensors already on the device by one permutation per epoch, so the
hot loop does no per-sample Python work and no host/device copy.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

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
) -> torch.optim.Optimizer:
    """Build the optimizer ``name`` in {"adam", "adamw", "sgd", "rmsprop"}.

    ``weight_decay`` is an L2 penalty added to the gradient for adam, sgd and rmsprop, and
    decoupled weight decay for adamw.
    """
    if name == "adam":
        return torch.optim.Adam(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(
            params, lr=learning_rate, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=learning_rate, weight_decay=weight_decay, momentum=momentum)
    raise ValueError(f"unknown optimizer {name!r}")


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
    """

    module: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: LossFn
    metric_fn: MetricFn
    batch_size: int
    generator: torch.Generator
    history: list[dict] = field(default_factory=list)

    def train_step(self, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step on one batch; returns the (detached) batch loss.

        Gradients stay in ``param.grad`` after the step, for inspection.
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.module(X), y)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def run_epoch(self, X: torch.Tensor, y: torch.Tensor) -> float:
        """One pass over (X, y) in shuffled batches; returns the mean training loss."""
        self.module.train()
        n = X.shape[0]
        order = torch.randperm(n, generator=self.generator).to(X.device)
        total = torch.zeros((), device=X.device)
        for start, stop in batch_bounds(n, self.batch_size, avoid_singletons=has_batch_norm(self.module)):
            index = order[start:stop]
            total += self.train_step(X[index], y[index]) * (stop - start)
        return total.item() / n

    @torch.no_grad()
    def evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """(mean loss, metric) of the module in eval mode on (X, y)."""
        self.module.eval()
        chunks = [self.module(X[a:b]) for a, b in inference_batches(len(X))]
        # A module may return several tensors (a VAE's reconstruction, mean and log-variance).
        outputs = tuple(torch.cat(parts) for parts in zip(*chunks)) if isinstance(chunks[0], tuple) else torch.cat(chunks)
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
        training loss. On a validation stop the best weights are restored. Returns whether
        the rule stopped training (False: ``max_epochs`` ran out first). With ``verbose``, a
        tqdm bar (labelled ``description``) shows the epochs and the losses.
        """
        epochs = tqdm(range(max_epochs), disable=not verbose, unit="epoch", leave=False, desc=description)
        stopped = False
        for _ in epochs:
            started = time.perf_counter()
            train_loss = self.run_epoch(X, y)
            valid_loss, valid_metric = self.evaluate(*validation) if validation is not None else (math.nan, math.nan)
            self.history.append(
                {
                    "epoch": len(self.history) + 1,
                    "train_loss": train_loss,
                    "valid_loss": valid_loss,
                    "valid_metric": valid_metric,
                    "duration": time.perf_counter() - started,
                }
            )
            epochs.set_postfix(train_loss=f"{train_loss:.4g}", valid_loss=f"{valid_loss:.4g}")
            if not math.isfinite(train_loss):
                raise FloatingPointError(
                    f"training loss became {train_loss} at epoch {len(self.history)}; "
                    "lower learning_rate or scale the inputs"
                )
            monitored = valid_loss if validation is not None else train_loss
            if stopping is not None and stopping.update(monitored, self.module):
                stopped = True
                break
        if stopping is not None and stopping.best_state is not None:
            self.module.load_state_dict(stopping.best_state)
        return stopped
