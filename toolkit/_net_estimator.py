"""The base of every torch-backed estimator: parameter checks, training, inference, export.

:class:`BaseNeuralNet` owns the algorithm (initialisation, the training loop, warm start,
data parallelism, checks of predict-time inputs); subclasses fill in hooks, declared on the
class that calls them. The abstract ones are enforced (``ABCMeta``: a class missing one cannot
be instantiated, and the error names it); the others have defaults.

=============================  ===============  ==============================================
hook                           declared on      what it gives
=============================  ===============  ==============================================
``_net_shape(sample_shape)``   BaseNeuralNet    abstract: the per-sample shape the net reads
``_build_net(shape, n_out)``   BaseNeuralNet    abstract: a freshly initialised ``nn.Module``
``_n_outputs()``               BaseNeuralNet    abstract: the net's output width (0: none)
``_loss(outputs, targets)``    BaseNeuralNet    abstract: the training loss (a scalar tensor)
``_metric(outputs, targets)``  BaseNeuralNet    abstract: the score history_ records (a float)
``__onnx_spec__(**options)``   BaseNeuralNet    abstract: the export protocol's spec
``_sample_shape_matches``      BaseNeuralNet    whether a predict-time sample shape fits
``_free_net_shape()``          BaseNeuralNet    ``net_shape_`` with -1 on axes free at predict
``_free_input_shape()``        BaseNeuralNet    ``input_shape_`` with None on free axes
``_budget(n_batches)``         BaseNeuralNet    (epochs, optimizer steps or None) of a fit
``_budget_text()``             BaseNeuralNet    that budget as the user set it, for messages
``_ema_decay()``               BaseNeuralNet    decay of the weights' moving average (0: none)
``_internal_callbacks(n)``     BaseNeuralNet    the estimator's own callbacks, run first
``_stratify(targets)``         BaseNeuralNet    labels to stratify the validation split by
``_check_parameters()``        BaseNeuralNet    checks the constraint table cannot express
``_encode_targets(y, n, ..)``  SupervisedNet    abstract: y as the training targets
``_output_layers()``           PredictorNet     abstract: modules after the net in the export
``_output_specs()``            PredictorNet     abstract: the export's outputs
=============================  ===============  ==============================================

:class:`SupervisedNet` adds ``fit(X, y)`` (the generative nets fit X alone); :class:`PredictorNet`
exports the net with an output head (the classifiers and regressors, whose target mixins in
``toolkit/neural_network/_mixins.py`` fill in the targets, loss, metric and head).
:class:`StepBudget` fills in the budget hooks of the nets that count it in optimizer steps
(the generative nets and the captioner): ``max_steps`` unless ``max_epochs`` is given.
"""

from __future__ import annotations

import copy
import math
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn
from torch.optim.swa_utils import AveragedModel

from toolkit._distributed import in_launched_worker, launch_data_parallel, process_group
from toolkit._export_spec import CONVERTED_MIN_OPSET, InferenceSpec
from toolkit._fit_state import fitting
from toolkit._input_checks import check_features
from toolkit._param_validation import Interval, StrOptions
from toolkit._training import (
    LR_SCHEDULES,
    EMAUpdate,
    StoppingRule,
    TrainingLoop,
    inference_batches,
    make_lr_scheduler,
    make_optimizer,
    resolve_device,
    seeded_rng,
)
from toolkit.nn.heads import InputReshape
from toolkit.nn.layers import normal_weights
from toolkit.nn.summary import summarize

# Training rows scored after each epoch for history_'s train_metric (a fixed random subset, as
# CS231n's Solver checks training accuracy on 1,000 rows): the cost stays one small eval pass.
TRAINING_SCORE_ROWS = 1000


class BaseNeuralNet(BaseEstimator, metaclass=ABCMeta):
    """Base class of the torch-backed estimators (not for direct use; see the hook table above)."""

    _scores_training = True  # history_ records train_metric (the generative nets: no score to record)

    _parameter_constraints: dict = {
        "optimizer": [StrOptions({"adam", "adamw", "sgd", "rmsprop"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterov": ["boolean"],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "weight_decay_on": [StrOptions({"all", "weights"})],
        "weight_scale": [Interval(Real, 0, None, closed="neither"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [None, StrOptions(set(LR_SCHEDULES)), tuple, callable],
        "max_grad_norm": [None, Interval(Real, 0, None, closed="neither")],
        "restore_best_weights": ["boolean"],
        "callbacks": [None, list],
        "device": [str, torch.device],
        "distributed": [None, StrOptions({"ddp"})],
        "n_procs": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }

    # ----------------------------------------------------------------- hooks
    @abstractmethod
    def _net_shape(self, sample_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Per-sample shape the net reads, for inputs of per-sample shape ``sample_shape``."""

    @abstractmethod
    def _build_net(self, net_shape: tuple[int, ...], n_outputs: int) -> nn.Module:
        """A freshly initialised net for inputs of ``net_shape`` and ``n_outputs`` outputs."""

    @abstractmethod
    def _n_outputs(self) -> int:
        """The net's output width, known once the targets are encoded (0: sized by the input alone)."""

    @abstractmethod
    def _loss(self, outputs, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of a batch: the net's outputs against the targets; a scalar tensor."""

    @abstractmethod
    def _metric(self, outputs, targets: torch.Tensor) -> float:
        """The score ``history_`` records for a batch in eval mode (accuracy, R^2, ...)."""

    @abstractmethod
    def __onnx_spec__(self, **options) -> InferenceSpec | list[InferenceSpec]:
        """The export protocol (:mod:`toolkit._export_spec`): the graphs of the fitted net."""

    def _sample_shape_matches(self, sample_shape: tuple[int, ...]) -> bool:
        """Whether a predict-time sample shape fits the fitted net (default: equal to the fit's)."""
        return sample_shape == self.input_shape_

    def _free_net_shape(self) -> tuple[int, ...]:
        """``net_shape_`` with -1 on any axis allowed to vary at predict time."""
        return self.net_shape_

    def _free_input_shape(self) -> tuple[int | None, ...]:
        """``input_shape_`` with None on any axis allowed to vary at predict time."""
        return self.input_shape_

    def _budget(self, n_batches: int) -> tuple[int, int | None]:
        """(epochs, optimizer steps or None) a fit runs at most, for ``n_batches`` batches per
        epoch: ``max_epochs`` here; the generative nets count in steps by default."""
        return self.max_epochs, None

    def _budget_text(self) -> str:
        """The training budget as the user set it, for messages."""
        return f"max_epochs={self.max_epochs}"

    def _ema_decay(self) -> float:
        """Decay of the moving average of the weights that inference uses; 0: none."""
        return 0.0

    def _internal_callbacks(self, max_epochs: int) -> list:
        """Callbacks of the estimator's own that run before the user's (e.g. a warm-up)."""
        return []

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        """Labels to stratify the early-stopping split by (None: a plain random split)."""
        return None

    def _check_parameters(self) -> None:
        """Checks across parameters that the constraint table cannot express."""
        self._validate_params()
        resolve_device(self.device)

    def _inference_net(self) -> nn.Module:
        """The net inference runs, in eval mode: the moving average of the weights when there
        is one (``ema_``), else the trained weights themselves."""
        net = self.ema_.module if getattr(self, "ema_", None) is not None else self.module_
        return net.eval()

    # ------------------------------------------------------------- fitting
    def _initialize(self) -> None:
        """Create ``module_``, ``optimizer_`` and ``history_`` for a fresh fit."""
        self.seed_ = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        self.device_ = resolve_device(self.device)
        with seeded_rng(self.seed_, self.device_):
            self.module_ = self._build_net(self.net_shape_, self._n_outputs()).to(self.device_)
            if self.weight_scale is not None:
                normal_weights(self.module_, self.weight_scale)
        self.optimizer_ = make_optimizer(
            self.optimizer,
            self.module_.parameters(),
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            weight_decay_on=self.weight_decay_on,
            momentum=self.momentum,
            nesterov=self.nesterov,
        )
        self.lr_scheduler_ = None  # made on the first _train, which knows the epoch budget
        decay = self._ema_decay()
        self.ema_ = AveragedModel(self.module_, multi_avg_fn=EMAUpdate(decay), use_buffers=True) if decay > 0 else None
        self.history_ = []
        self.optimizer_steps_ = 0

    def _train(self, X: np.ndarray, targets: np.ndarray, *, max_epochs: int, partial: bool) -> None:
        """Train on checked inputs and targets: here, in this rank of a launched data-parallel
        job, or by launching one (``distributed="ddp"``)."""
        if self.distributed == "ddp" and not partial:
            if not in_launched_worker():
                launch_data_parallel(self, X, targets, max_epochs)
                return
            with process_group(self.device_) as (rank, world, device):
                self._move_to(device)
                trainer = nn.parallel.DistributedDataParallel(self.module_)
                self._train_loop(X, targets, max_epochs=max_epochs, partial=False, shard=(rank, world), trainer=trainer)
            return
        self._train_loop(X, targets, max_epochs=max_epochs, partial=partial)

    def _move_to(self, device: torch.device) -> None:
        """Module, optimizer state and moving average onto ``device`` (a rank's own GPU)."""
        if device == self.device_:
            return
        self.device_ = device
        self.module_.to(device)
        for state in self.optimizer_.state.values():
            for key, value in state.items():
                if torch.is_tensor(value) and key != "step":
                    state[key] = value.to(device)
        if self.ema_ is not None:
            self.ema_.to(device)

    def _train_loop(
        self,
        X: np.ndarray,
        targets: np.ndarray,
        *,
        max_epochs: int,
        partial: bool,
        shard: tuple[int, int] | None = None,
        trainer: nn.Module | None = None,
    ) -> None:
        """Train for ``max_epochs`` (or the fit's budget) with the one training loop: the
        early-stopping split, the scheduler, the stopping rule and the ConvergenceWarning;
        ``shard`` (rank, world) and ``trainer`` (the DDP wrapper) for a data-parallel rank."""
        seed = self.seed_ + len(self.history_)
        validation = None
        if self.early_stopping and not partial:
            X, X_val, targets, t_val = train_test_split(
                X, targets, test_size=self.validation_fraction, random_state=seed, stratify=self._stratify(targets)
            )
            validation = (self._to_tensor(X_val), self._to_tensor(t_val))
        train_sample = None
        if self._scores_training:
            rows = np.random.default_rng(seed).permutation(len(X))[:TRAINING_SCORE_ROWS]
            train_sample = (self._to_tensor(X[rows]), self._to_tensor(targets[rows]))
        n = len(X)
        batch_size = min(200, n) if self.batch_size == "auto" else min(self.batch_size, n)
        max_epochs, max_steps = (max_epochs, None) if partial else self._budget(math.ceil(n / batch_size))
        if self.lr_scheduler_ is None and self.lr_schedule is not None:
            self.lr_scheduler_ = make_lr_scheduler(self.lr_schedule, self.optimizer_, max_epochs=max_epochs)
        loop = TrainingLoop(
            module=self.module_,
            optimizer=self.optimizer_,
            loss_fn=self._loss,
            metric_fn=self._metric,
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(seed),
            history=self.history_,
            scheduler=self.lr_scheduler_,
            max_grad_norm=self.max_grad_norm,
            callbacks=[*self._internal_callbacks(max_epochs), *(self.callbacks or ())],
            owner=self,
            averaged=self.ema_,
            max_steps=max_steps,
            train_sample=train_sample,
            shard=shard,
            trainer=trainer,
        )
        stopping = None
        if not partial and self.n_iter_no_change is not None:
            stopping = StoppingRule(
                self.n_iter_no_change, self.tol, keep_best=validation is not None and self.restore_best_weights
            )
        with seeded_rng(seed + (shard[0] if shard else 0), self.device_):  # dropout masks differ per rank
            stopped = loop.fit_loop(
                self._to_tensor(X),
                self._to_tensor(targets),
                max_epochs=max_epochs,
                stopping=stopping,
                validation=validation,
                verbose=bool(self.verbose),
                description=type(self).__name__,
            )
        self.module_.eval()
        self.n_iter_ = len(self.history_) if not partial else 1
        self.optimizer_steps_ += loop.steps
        if not (stopped or partial or stopping is None):
            warnings.warn(
                f"{type(self).__name__} reached {self._budget_text()} before the "
                f"{'validation' if validation else 'training'} loss stopped improving; "
                "raise it or tol",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _to_tensor(self, array: np.ndarray) -> torch.Tensor:
        """An array as a tensor on the fit's device."""
        array = np.ascontiguousarray(array)
        # torch cannot share a read-only buffer (a memmap opened "r"): such inputs are copied.
        return torch.from_numpy(array if array.flags.writeable else array.copy()).to(self.device_)

    # ------------------------------------------------------------- inputs
    def _check_X(self, X, *, reset: bool) -> np.ndarray:
        """Validated float32 inputs reshaped to (n_samples, *net_shape_)."""
        X = check_features(self, X, reset=reset)
        sample_shape = tuple(X.shape[1:])
        if reset:
            self.input_shape_ = sample_shape
            self.net_shape_ = self._net_shape(sample_shape)
        elif not self._sample_shape_matches(sample_shape):
            raise ValueError(
                f"X has samples of shape {sample_shape}, but {type(self).__name__} was fitted "
                f"on samples of shape {self.input_shape_}"
            )
        return X.reshape((len(X),) + self._free_net_shape())

    # ----------------------------------------------------------- inference
    @torch.no_grad()
    def _forward(self, X) -> torch.Tensor:
        """Net outputs (n_samples, n_outputs) on CPU for validated inputs X, in eval mode."""
        check_is_fitted(self, "module_")
        X = self._check_X(X, reset=False)
        self.module_.eval()
        chunks = [self.module_(self._to_tensor(X[a:b])).cpu() for a, b in inference_batches(len(X))]
        return torch.cat(chunks)

    def summary(self) -> pd.DataFrame:
        """Per-layer table: output shape, parameter count, FLOPs and receptive field.

        Returns
        -------
        summary : DataFrame
            One row per layer (index: the layer's name) with columns ``type``,
            ``output_shape``, ``params``, ``flops``, ``receptive_field``; FLOPs and
            receptive fields follow the formulas in :mod:`toolkit.nn.summary`.
        """
        check_is_fitted(self, "module_")
        return pd.DataFrame(summarize(self.module_, self.net_shape_)).set_index("layer")


class StepBudget:
    """Mixin of the nets whose training budget is ``max_steps`` optimizer steps unless
    ``max_epochs`` is given: a budget that does not shrink with the data, spent whole by
    default (``n_iter_no_change=None``), as diffusion and captioning code bases train."""

    _budget_constraints: dict = {
        "max_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), None],
    }

    def _budget(self, n_batches: int) -> tuple[int, int | None]:
        """``max_epochs`` when given; else ``max_steps`` optimizer steps, in as many epochs as they take."""
        if self.max_epochs is not None:
            return self.max_epochs, None
        return math.ceil(self.max_steps / n_batches), self.max_steps

    def _budget_text(self) -> str:
        return f"max_epochs={self.max_epochs}" if self.max_epochs is not None else f"max_steps={self.max_steps}"


class SupervisedNet(BaseNeuralNet):
    """A net trained on (X, y) (not for direct use): ``fit`` and ``partial_fit``'s training."""

    @abstractmethod
    def _encode_targets(self, y, n_samples: int, *, reset: bool, classes=None) -> np.ndarray:
        """y as the training targets, checked against ``n_samples`` rows; ``reset`` learns the
        encoding (``classes_``, target scaling), else applies the fitted one."""

    def fit(self, X, y):
        """Train the net on (X, y) from fresh weights (or the fitted ones with ``warm_start``).

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs in one of the layouts the estimator documents.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.

        Returns
        -------
        self
        """
        self._check_parameters()
        with fitting(self):
            continuing = self.warm_start and hasattr(self, "module_")
            X, targets = self._training_data(X, y, reset=not continuing)
            if not continuing:
                self._initialize()
            self._train(X, targets, max_epochs=self.max_epochs, partial=False)
        return self

    def _partial_fit(self, X, y, classes=None):
        """One epoch on (X, y), from the fitted weights (or fresh ones on the first call)."""
        self._check_parameters()
        with fitting(self):
            first = not hasattr(self, "module_")
            X, targets = self._training_data(X, y, reset=first, classes=classes)
            if first:
                self._initialize()
            self._train(X, targets, max_epochs=1, partial=True)
        return self

    def _training_data(self, X, y, *, reset: bool, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """Validated inputs (n_samples, *net_shape_) and encoded targets for training."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        X = self._check_X(X, reset=reset)
        if len(X) < 2:
            raise ValueError(f"n_samples={len(X)}: training needs at least 2 samples")
        return X, self._encode_targets(y, len(X), reset=reset, classes=classes)


class PredictorNet(SupervisedNet):
    """A classifier or regressor net (not for direct use): exported as the net followed by an
    output head (softmax and argmax, or the targets' scale)."""

    @abstractmethod
    def _output_layers(self) -> list[nn.Module]:
        """The modules that follow the net in the exported graph."""

    @abstractmethod
    def _output_specs(self) -> list:
        """The exported graph's outputs (``OutputSpec``), in the order the head gives them."""

    def __onnx_spec__(self) -> InferenceSpec:
        """The net with input reshaping and output post-processing, on CPU in eval mode."""
        check_is_fitted(self, "module_")
        net = nn.Sequential(
            InputReshape(self._free_net_shape()),
            copy.deepcopy(self.module_).cpu(),
            *self._output_layers(),
        )
        return InferenceSpec(
            module=net.eval(),
            sample_shape=self._free_input_shape(),
            outputs=self._output_specs(),
            example=np.zeros((2, *self.input_shape_), dtype=np.float32),
            classes=getattr(self, "classes_", None),
            feature_names=[str(c) for c in self.feature_names_in_] if hasattr(self, "feature_names_in_") else None,
            min_opset=CONVERTED_MIN_OPSET,
        )
