"""What a pipeline returns: its fitted model, its held-out score and a baseline's score."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

VERDICTS = ("beats", "ties", "loses")


@dataclass(frozen=True)
class Baseline:
    """A simpler model's score on the same held-out data and metric as the job's model.

    Parameters
    ----------
    name : str
        What the baseline is, e.g. "logistic regression" or "naive last value".
    score : float
    """

    name: str
    score: float


@dataclass
class Job:
    """A fitted model, its held-out score and the baseline it is judged against.

    Parameters
    ----------
    model : fitted estimator or Pipeline
    X_test : array-like or DataFrame
        Held-out inputs; the export is validated on them.
    metric : str
        Name of the held-out metric, e.g. "accuracy".
    score : float
    baseline : Baseline
        A simpler model's score on the same metric; the table says whether the model
        beats it, ties with it or loses to it.
    greater_is_better : bool, default=True
        False for errors and distances (RMSE, energy distance).
    floor : float, optional
        The worst score that passes (a ceiling when ``greater_is_better`` is False): a
        broken model scores worse and fails the run.
    details : str
        More figures for the row (e.g. per-series errors).
    export_options : dict
        Passed to :func:`toolkit.onnx.export` (e.g. a forecaster's ``horizon``).
    plot : callable, optional
        Called with the export folder after the export, to write figures beside it.
    requirements : dict of str -> bool
        Further conditions the model must meet beyond the floor, each named by what it
        checks with its figures (e.g. "two-shape accuracy 0.95 >= 0.90"); a False one fails
        the run like a floor.
    """

    model: object
    X_test: object
    metric: str
    score: float
    baseline: Baseline
    greater_is_better: bool = True
    floor: float | None = None
    details: str = ""
    export_options: dict = field(default_factory=dict)
    plot: Callable[[Path], None] | None = None
    requirements: dict[str, bool] = field(default_factory=dict)

    def _better(self, a: float, b: float) -> bool:
        return a > b if self.greater_is_better else a < b

    @property
    def meets_floor(self) -> bool:
        """Whether the score is at least as good as the floor (True without a floor)."""
        return self.floor is None or not self._better(self.floor, self.score)

    @property
    def unmet(self) -> list[str]:
        """What the model falls short of: the floor, then any requirement that does not hold."""
        below = [] if self.meets_floor else [f"{self.metric} {self.score:.4g} is worse than the floor {self.floor}"]
        return below + [name for name, holds in self.requirements.items() if not holds]

    @property
    def verdict(self) -> str:
        """ "beats", "ties" or "loses": the model's score against the baseline's."""
        if self._better(self.score, self.baseline.score):
            return "beats"
        return "loses" if self._better(self.baseline.score, self.score) else "ties"
