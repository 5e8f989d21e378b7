"""A fit that fails part-way leaves the earlier fit exactly as it was, for every public estimator:
its whole fitted state (weights, optimizer state, history, statistics) compared bit for bit."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from tests._estimators import SMALL
from tests._warnings import SHORT_TRAINING
from toolkit._net_estimator import BaseNeuralNet
from toolkit.mixture import GaussianMixture
from toolkit.timeseries import ARForecaster

pytestmark = SHORT_TRAINING

NETS = sorted(name for name, small in SMALL.items() if issubclass(type(small.make()), BaseNeuralNet))


class FailAtEpoch:
    """A callback that raises ``error`` at the end of the ``epoch``-th epoch of a fit."""

    def __init__(self, epoch: int, error: BaseException) -> None:
        self.epoch, self.error, self.seen = epoch, error, 0

    def on_epoch_end(self, estimator, history):
        self.seen += 1
        if self.seen == self.epoch:
            raise self.error


def value(obj, seen: set | None = None):
    """``obj`` by value, comparable with ==: tensors and arrays as (dtype, shape, bytes), nets and
    optimizers by their state dicts, frames by their pickle, other objects by their attributes.
    (A pickle of a torch object holds storage addresses, which differ between equal copies.)"""
    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        array = obj.detach().cpu().contiguous()
        return ("tensor", str(array.dtype), tuple(array.shape), array.numpy().tobytes())
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes() if obj.dtype != object else pickle.dumps(obj))
    if isinstance(obj, (pd.DataFrame, pd.Series, pd.Index)):
        return ("pandas", pickle.dumps(obj))
    if isinstance(obj, (torch.nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)):
        return (type(obj).__name__, getattr(obj, "training", None), value(obj.state_dict(), seen))
    if isinstance(obj, dict):
        return ("dict", [(value(k, seen), value(v, seen)) for k, v in obj.items()])
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, [value(v, seen) for v in obj])
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic, torch.device, type)):
        return repr(obj) if isinstance(obj, float) else obj
    if id(obj) in seen:
        return ("seen", type(obj).__name__)
    seen.add(id(obj))
    return (type(obj).__name__, value(vars(obj) if hasattr(obj, "__dict__") else repr(obj), seen))


def state(estimator):
    """Everything the estimator holds besides its hyper-parameters (the user's objects: a
    callback counts its calls), by value."""
    params = estimator.get_params(deep=False)
    return value({key: item for key, item in vars(estimator).items() if key not in params})


def fitted(name: str, **params):
    small = SMALL[name]
    data = small.fit_data()
    return small.make().set_params(max_epochs=3, **params).fit(*data), data


@pytest.mark.parametrize("error", [RuntimeError("a callback failed"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
@pytest.mark.parametrize("name", NETS)
def test_a_warm_started_fit_that_fails_part_way_leaves_the_earlier_fit(name, error):
    model, data = fitted(name)
    model.set_params(warm_start=True, max_epochs=5, callbacks=[FailAtEpoch(2, error)])
    before = state(model)
    with pytest.raises(type(error)):
        model.fit(*data)
    assert state(model) == before


@pytest.mark.parametrize("name", [n for n in NETS if hasattr(SMALL[n].make(), "partial_fit")])
def test_a_partial_fit_that_fails_part_way_leaves_the_earlier_fit(name):
    model, data = fitted(name)
    model.set_params(callbacks=[FailAtEpoch(1, RuntimeError("a callback failed"))])
    before = state(model)
    with pytest.raises(RuntimeError, match="a callback failed"):
        model.partial_fit(*data)
    assert state(model) == before


def test_a_first_fit_that_fails_leaves_no_fitted_attribute():
    model = SMALL["MLPClassifier"].make().set_params(callbacks=[FailAtEpoch(2, RuntimeError("stop"))])
    before = state(model)
    with pytest.raises(RuntimeError):
        model.fit(*SMALL["MLPClassifier"].fit_data())
    assert state(model) == before and not any(key.endswith("_") for key in vars(model))


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")  # tol=0 on purpose
def test_a_warm_started_mixture_that_fails_mid_em_leaves_the_earlier_fit(monkeypatch):
    data = SMALL["GaussianMixture"].fit_data()
    model = GaussianMixture(2, random_state=0, device="cpu", warm_start=True, max_iter=20, tol=0).fit(*data)
    before = state(model)
    real, calls = GaussianMixture._m_step, []

    def failing_m_step(self, stats):
        calls.append(1)
        if len(calls) == 3:  # two M-steps have replaced the parameters already
            raise RuntimeError("the third M-step failed")
        real(self, stats)

    monkeypatch.setattr(GaussianMixture, "_m_step", failing_m_step)
    with pytest.raises(RuntimeError, match="third M-step"):
        model.fit(*data)
    assert len(calls) == 3 and state(model) == before


def test_a_forecaster_refit_that_fails_after_its_order_search_leaves_the_earlier_fit(monkeypatch):
    from toolkit.timeseries import _ar

    (y,) = SMALL["ARForecaster"].fit_data()
    model = ARForecaster(max_lags=4, criterion="aic").fit(y)
    before = state(model)

    def failing_results(*args, **kwargs):
        raise RuntimeError("the results could not be made")

    monkeypatch.setattr(_ar, "ARResults", failing_results)  # after the search stored criterion_values_
    with pytest.raises(RuntimeError, match="could not be made"):
        model.fit(y.iloc[::-1].reset_index(drop=True))
    assert state(model) == before
