"""The run's HTML report: built from the export folders alone, opened in a real headless browser
(Debian's chromium), every section there and every image decoded; bad folders get clear errors."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests._warnings import SHORT_TRAINING
from toolkit.cli import main
from toolkit.jobs import training_curves
from toolkit.jobs._report import ReportError, build_report
from toolkit.jobs._runner import run_all
from toolkit.neural_network import MLPClassifier

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Injected into a copy of the page: after load, record what the browser made of it on <body>.
PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.sections = [...document.querySelectorAll("section")].map((s) => s.id).join(",");
});
</script>"""


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exports")
    run = run_all(["breast_cancer_mlp", "sunspots_ar"], PIPELINES, out)
    assert run.exit_code == 0
    return out


def test_the_run_writes_one_self_contained_page(small_run):
    page = (small_run / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # no network: images are data URIs
    assert page.count('<section id="') == 3  # the results, then one per pipeline
    assert "breast_cancer_mlp" in page and "training.png" in page  # the MLP's curves from history_


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's package)")
def test_a_headless_browser_renders_every_section_and_decodes_every_image(small_run, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text((small_run / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    images, decoded = (int(re.search(rf'data-{key}="(\d+)"', body).group(1)) for key in ("images", "decoded"))
    assert images >= 2 and decoded == images
    assert re.search(r'data-sections="([^"]*)"', body).group(1) == "results,breast_cancer_mlp,sunspots_ar"
    screenshot = tmp_path / "report.png"
    subprocess.run([*flags, f"--screenshot={screenshot}", "--window-size=1280,2000", probed.as_uri()], timeout=120)
    assert screenshot.stat().st_size > 10_000  # a rendered page, not a blank one


def test_toolkit_report_rebuilds_the_page_without_refitting(small_run, capsys):
    (small_run / "report.html").unlink()
    assert main(["report", str(small_run)]) == 0
    assert capsys.readouterr().out.strip() == str(small_run / "report.html")
    assert (small_run / "report.html").exists()


def test_bad_folders_get_clear_errors_and_no_partial_page(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no exports in" in capsys.readouterr().err
    (tmp_path / "results.json").write_text(json.dumps({"rows": [{"name": "p"}]}))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "model.json").write_text("{not json")
    with pytest.raises(ReportError, match=r"cannot read the model.json of .*model.json"):
        build_report(tmp_path)
    (tmp_path / "results.json").write_text("[1, 2")
    with pytest.raises(ReportError, match="cannot read the results file"):
        build_report(tmp_path)
    assert not (tmp_path / "report.html").exists() and not list(tmp_path.glob(".*tmp*"))


@SHORT_TRAINING
def test_training_curves_plot_a_tiny_fitted_net(tmp_path):
    X = np.random.default_rng(0).normal(size=(60, 3))
    model = MLPClassifier((4,), max_epochs=3, early_stopping=True, n_iter_no_change=3, random_state=0)
    model.fit(X, X[:, 0] > 0)
    training_curves(model.history_, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_and_mixture_figures_of_tiny_fitted_models(tmp_path):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from toolkit.jobs import confusion_matrix_figure, full_covariances, mixture_figure
    from toolkit.mixture import GaussianMixture

    X, y = load_iris(return_X_y=True)
    confusion_matrix_figure(LogisticRegression(max_iter=500).fit(X, y), X, y, tmp_path / "confusion.png")
    for covariance_type in ("full", "tied", "diag", "spherical"):
        mixture = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
        assert full_covariances(mixture).shape == (3, 4, 4)
        path = tmp_path / f"mixture_{covariance_type}.png"
        mixture_figure(X, mixture.predict(X), mixture.means_, full_covariances(mixture), path)
        assert path.read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_allclose(
        np.diagonal(full_covariances(mixture), axis1=1, axis2=2), np.tile(mixture.covariances_[:, None], 4)
    )


@SHORT_TRAINING
def test_latent_and_reconstruction_figures_of_a_tiny_vae(tmp_path):
    from sklearn.datasets import load_digits

    from toolkit.generative import VAE
    from toolkit.jobs import latent_figure, reconstruction_figure

    digits = load_digits()
    X, y = digits.data[:120], digits.target[:120]
    for latent_dim in (2, 5):  # its own axes, and the codes' principal axes
        vae = VAE(latent_dim, hidden=(16,), max_epochs=2, random_state=0).fit(X)
        latent_figure(vae.transform(X), y, tmp_path / f"latent{latent_dim}.png")
    rebuilt = np.asarray(vae.inverse_transform(vae.transform(X))).reshape(-1, 8, 8)
    reconstruction_figure(X.reshape(-1, 8, 8), rebuilt, tmp_path / "reconstructions.png", n=6)
    assert (
        all(p.read_bytes()[:4] == b"\x89PNG" for p in tmp_path.glob("*.png")) and len(list(tmp_path.glob("*.png"))) == 3
    )
