"""Target handling for the torch-backed estimators: classification and regression."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length, column_or_1d

from toolkit._export_spec import OutputSpec
from toolkit.nn.heads import AffineOutput, ClassifierOutput


class NeuralClassifierMixin(ClassifierMixin):
    """Labels kept as given in ``classes_``; softmax cross-entropy; accuracy as the metric."""

    def _encode_targets(self, y, n_samples: int, *, reset: bool, classes=None) -> np.ndarray:
        y = column_or_1d(np.asarray(y) if not hasattr(y, "to_numpy") else y.to_numpy(), warn=True)
        check_consistent_length(np.empty(n_samples), y)
        check_classification_targets(y)
        if reset:
            self.classes_ = np.unique(y if classes is None else np.asarray(classes))
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y has a single class {self.classes_.tolist()}; a classifier needs at least two classes"
                )
        unseen = np.setdiff1d(y, self.classes_)
        if len(unseen):
            raise ValueError(f"y has labels {unseen.tolist()} not among the classes {self.classes_.tolist()}")
        return np.searchsorted(self.classes_, y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _stratify(self, targets: np.ndarray) -> np.ndarray | None:
        return targets if np.bincount(targets).min() >= 2 else None

    @staticmethod
    def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, targets)

    @staticmethod
    def _metric(logits: torch.Tensor, targets: torch.Tensor) -> float:
        return (logits.argmax(dim=1) == targets).float().mean().item()

    def _output_layers(self) -> list[torch.nn.Module]:
        return [ClassifierOutput()]

    def _output_specs(self) -> list[OutputSpec]:
        return [OutputSpec("label", self.predict, 1, exact=True), OutputSpec("probabilities", self.predict_proba, 2)]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs in the layout used at fit.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns in the order of ``classes_``.
        """
        return torch.softmax(self._forward(X).double(), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """Most probable class label.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs in the layout used at fit.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels from ``classes_`` (ints, strings, ... as given to fit).
        """
        index = self._forward(X).argmax(dim=1).numpy()
        return self.classes_[index]

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), initialising the net on the first call.

        Parameters
        ----------
        X : array-like or DataFrame
        y : array-like of shape (n_samples,)
        classes : array-like, optional
            All labels that will ever appear; needed on the first call when this batch
            lacks some.

        Returns
        -------
        self
        """
        return self._partial_fit(X, y, classes=classes)


class NeuralRegressorMixin(RegressorMixin):
    """Single- or multi-output regression; loss 1/2 mean squared error; R^2 as the metric.

    The net learns standardised targets, (y - target_mean_) / target_scale_, so that the
    loss and the learning rate do not depend on the targets' units; predictions (and the
    exported graph) map back to the original units.
    """

    def _encode_targets(self, y, n_samples: int, *, reset: bool, classes=None) -> np.ndarray:
        y = check_array(y, ensure_2d=False, dtype=np.float32, input_name="y")
        check_consistent_length(np.empty(n_samples), y)
        if y.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D (n_samples, n_outputs), got shape {y.shape}")
        targets = y.reshape(len(y), -1)
        if reset:
            self.target_ndim_ = y.ndim
            self.n_outputs_ = targets.shape[1]
            self.target_mean_ = targets.mean(axis=0)
            scale = targets.std(axis=0)
            self.target_scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)
        elif targets.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {targets.shape[1]} outputs, but the net was fitted with {self.n_outputs_}")
        return (targets - self.target_mean_) / self.target_scale_

    def _n_outputs(self) -> int:
        return self.n_outputs_

    @staticmethod
    def _loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return 0.5 * F.mse_loss(outputs, targets)

    @staticmethod
    def _metric(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        residual = ((targets - outputs) ** 2).sum(dim=0)
        total = ((targets - targets.mean(dim=0)) ** 2).sum(dim=0).clamp(min=torch.finfo(targets.dtype).tiny)
        return (1 - residual / total).mean().item()

    def _output_layers(self) -> list[torch.nn.Module]:
        return [AffineOutput(torch.from_numpy(self.target_scale_), torch.from_numpy(self.target_mean_))]

    def _output_specs(self) -> list[OutputSpec]:
        return [OutputSpec("variable", self.predict, self.target_ndim_)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X) -> np.ndarray:
        """Predicted targets.

        Parameters
        ----------
        X : array-like or DataFrame
            Inputs in the layout used at fit.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when fitted on a 1-D y.
        """
        outputs = self._forward(X).numpy().astype(np.float64) * self.target_scale_ + self.target_mean_
        return outputs.ravel() if self.target_ndim_ == 1 else outputs

    def partial_fit(self, X, y):
        """One epoch over (X, y), initialising the net on the first call.

        Returns
        -------
        self
        """
        return self._partial_fit(X, y)
