"""The pipelines behind ``toolkit run``: their quick settings meet their floors and beat (or tie
with) their baselines; the deterministic ones give their exact numbers."""

from pathlib import Path

import pytest

from toolkit.jobs import describe, discover, load_pipeline

PIPELINES = discover(Path(__file__).resolve().parents[1] / "pipelines")
QUICK = [
    "breast_cancer_mlp",
    "digits_cnn",
    "digits_rnn",
    "macro_panel_ar",
    "sunspots_ar",
    "wine_gmm",
    "blobs_gmm_large",
    "digits_cnn_ddp",
]
HEAVY = [
    "digits_ddpm",
    "digits_vae",
    "moons_ddpm",
    "notes_experiments",
    "shapes_captioning",
]  # 15-60 s each: `toolkit run` runs them


def test_every_pipeline_says_what_it_does_and_how_long_it_takes():
    assert sorted(QUICK + HEAVY) == sorted(PIPELINES)
    for name, path in PIPELINES.items():
        info = describe(path)
        assert info.summary and set(info.seconds) == {"quick", "full"}, name


def check(job, name: str) -> None:
    assert not job.unmet, f"{name}: {job.unmet}"
    assert job.floor is not None and job.baseline.name, name


@pytest.mark.parametrize("name", QUICK)
def test_quick_pipeline_meets_its_floor(name):
    job = load_pipeline(PIPELINES[name]).run(full=False)
    check(job, name)
    if name != "wine_gmm":  # k-means with BIC's 4 clusters agrees better with the 3 cultivars
        assert job.verdict in ("beats", "ties"), f"{name}: {job.score} vs {job.baseline}"


@pytest.mark.heavy
@pytest.mark.parametrize("name", HEAVY)
def test_heavy_pipeline_beats_its_baseline(name):
    job = load_pipeline(PIPELINES[name]).run(full=False)
    check(job, name)
    assert job.verdict == "beats", job.details


@pytest.mark.heavy
@pytest.mark.parametrize("name", QUICK + HEAVY)
def test_full_size_pipeline_meets_its_floor(name):
    check(load_pipeline(PIPELINES[name]).run(full=True), name)


def test_sunspots_pipeline_worked_numbers():
    """Least squares is deterministic: AR(9) by AIC and its 10-year held-out RMSE are fixed."""
    job = load_pipeline(PIPELINES["sunspots_ar"]).run(full=False)
    assert job.model.lags_ == list(range(1, 10))
    assert job.score == pytest.approx(15.356, abs=1e-3)
    assert job.baseline.score == pytest.approx(43.39, abs=1e-2)


def test_macro_panel_pipeline_forecasts_from_every_origin():
    """AR(3) per series by BIC on 1959-1999, 33 origins x 8 quarters: pooled RMSE 1.413 against
    the naive forecast's 1.730."""
    job = load_pipeline(PIPELINES["macro_panel_ar"]).run(full=False)
    assert list(job.model.params_.columns) == ["realgdp", "realcons", "realinv", "realgovt", "cpi", "m1"]
    assert job.X_test.shape == (33, 6, 3)
    assert job.score == pytest.approx(1.413, abs=1e-3)
    assert job.baseline.score == pytest.approx(1.730, abs=1e-3)


def test_wine_gmm_pipeline_recovers_the_cultivars():
    job = load_pipeline(PIPELINES["wine_gmm"]).run(full=False)
    assert job.model[-1].n_components == 4  # BIC's choice over 1..8 with diagonal covariances
    assert job.score > 0.8


def test_float32_mixture_on_half_a_million_rows():
    job = load_pipeline(PIPELINES["blobs_gmm_large"]).run(full=False)
    assert job.model.dtype == "float32" and job.model.converged_
    assert job.score > 0.99
