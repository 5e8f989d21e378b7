"""The pipelines behind ``toolkit run`` meet their held-out floors (quick and full sizes)."""

from pathlib import Path

import pytest

from toolkit.jobs import discover, load_pipeline

PIPELINES = discover(Path(__file__).resolve().parents[1] / "pipelines")
FLOORS = {"breast_cancer_mlp": 0.95, "digits_cnn": 0.97, "digits_rnn": 0.95}


def test_the_first_pipelines_are_there():
    assert set(FLOORS) <= set(PIPELINES)


@pytest.mark.parametrize("name", sorted(FLOORS))
def test_pipeline_meets_its_floor(name):
    job = load_pipeline(PIPELINES[name]).run(full=False)
    assert job.floor == FLOORS[name]
    assert job.score >= job.floor, f"{name}: {job.metric}={job.score:.4f} < {job.floor}"


@pytest.mark.heavy
@pytest.mark.parametrize("name", sorted(FLOORS))
def test_full_size_pipeline_meets_its_floor(name):
    job = load_pipeline(PIPELINES[name]).run(full=True)
    assert job.score >= FLOORS[name]


def test_sunspots_pipeline_worked_numbers():
    """Least squares is deterministic: AR(9) by AIC and its 10-year held-out RMSE are fixed."""
    job = load_pipeline(PIPELINES["sunspots_ar"]).run(full=False)
    assert job.model.lags_ == list(range(1, 10))
    assert job.score == pytest.approx(15.356, abs=1e-3)
    assert "naive last value 43.39" in job.details


def test_macro_panel_pipeline_fits_every_series():
    job = load_pipeline(PIPELINES["macro_panel_ar"]).run(full=False)
    assert list(job.model.params_.columns) == ["realgdp", "realcons", "realinv", "realgovt", "cpi", "m1"]
    assert job.X_test.shape[1:] == (6, max(job.model.lags_))


def test_wine_gmm_pipeline_recovers_the_cultivars():
    job = load_pipeline(PIPELINES["wine_gmm"]).run(full=False)
    assert job.model[-1].n_components == 4  # BIC's choice over 1..8 with diagonal covariances
    assert job.score > 0.8


def test_float32_mixture_on_half_a_million_rows():
    job = load_pipeline(PIPELINES["blobs_gmm_large"]).run(full=False)
    assert job.model.dtype == "float32" and job.model.converged_
    assert job.score > 0.99


@pytest.mark.heavy
def test_moons_ddpm_beats_the_gaussian_mixture():
    """Energy distance to held-out moons: the DDPM's samples closer than a GMM-8's (ratio >= 1)."""
    job = load_pipeline(PIPELINES["moons_ddpm"]).run(full=False)
    assert job.score >= 1.0, job.details


@pytest.mark.heavy
@pytest.mark.parametrize("name", ["digits_vae", "digits_ddpm"])
def test_digits_generators_cover_every_class(name):
    job = load_pipeline(PIPELINES[name]).run(full=False)
    assert "10/10 classes present" in job.details
