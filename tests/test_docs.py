"""The documentation: every public name has an API page; the site builds with warnings as errors
(the examples gallery executed on the way); its internal links resolve; and a headless browser
(Debian's chromium) opens the index, an estimator's page, a user-guide page and a gallery example
with every image decoded, and finds ``GaussianMixture`` with the site's own search."""

import html.parser
import http.server
import importlib
import inspect
import re
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import toolkit

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# One build, in one xdist worker: the build writes into the documentation's sources (the API pages,
# the gallery), so two workers building at once would trip over each other (``--dist loadgroup``).
pytestmark = pytest.mark.xdist_group("docs")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PUBLIC_MODULES = (
    "toolkit",
    "toolkit.neural_network",
    "toolkit.generative",
    "toolkit.mixture",
    "toolkit.timeseries",
    "toolkit.onnx",
    "toolkit.serving",
    "toolkit.serving.dask",
    "toolkit.datasets",
    "toolkit.nn",
)
# Attributes of the package that are imported on use, so not in its __all__ (a star import
# would import torch for them).
LAZY = ("toolkit.DataParallelError", "toolkit.ClusterLost")
GALLERY = sorted(path.stem for path in (ROOT / "examples").glob("plot_*.py"))


def public_names() -> set[str]:
    names = set(LAZY)
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names |= {f"{module_name}.{name}" for name in module.__all__ if name != "__version__"}
    return names


def api_entries() -> set[str]:
    """The names docs/api.rst documents (autosummary entries, relative to ``toolkit``; autodata)."""
    text = (DOCS / "api.rst").read_text()
    entries = {f"toolkit.{name}" for name in re.findall(r"^   ([A-Za-z_][\w.]*)$", text, flags=re.M)}
    return entries | set(re.findall(r"^\.\. autodata:: ([\w.]+)$", text, flags=re.M))


def resolve(name: str):
    module_name, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def test_every_public_name_is_in_the_api_reference():
    """Each public name has its entry, or the object it names has one under another public name
    (``toolkit.onnx.OnnxModel`` is ``toolkit.serving.OnnxModel``)."""
    documented = {id(resolve(entry)) for entry in api_entries()}
    assert sorted(n for n in public_names() - api_entries() if id(resolve(n)) not in documented) == []
    assert api_entries() - public_names() == set(), "docs/api.rst documents names that are not public"


def test_every_public_module_lists_only_what_it_defines_or_imports():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        missing = [name for name in module.__all__ if not hasattr(module, name)]
        assert missing == [], f"{module_name}.__all__ names {missing}, which it does not have"
        defined = [
            name
            for name, value in vars(module).items()
            if not name.startswith("_")
            and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module_name
        ]
        assert set(defined) <= set(module.__all__), f"{module_name} defines public {defined} outside its __all__"


# ---------------------------------------------------------------- the built site
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("sphinx_gallery", reason="the [docs] extra is not installed")
    out = tmp_path_factory.mktemp("docs")
    for generated in ("generated", "auto_examples"):  # what a build writes into the sources: made afresh
        shutil.rmtree(DOCS / generated, ignore_errors=True)
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", out / "doctrees"]
        + [DOCS, out / "html"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert build.returncode == 0, f"sphinx-build -W failed:\n{build.stderr[-6000:]}"
    return out / "html"


def test_every_public_name_has_an_api_page(site):
    api = (site / "api.html").read_text()
    pages = {path.stem for path in (site / "generated").glob("*.html")}
    assert [name for name in api_entries() if name not in pages and f'id="{name}"' not in api] == []


def test_the_command_line_page_comes_from_the_parser(site):
    from toolkit.cli import build_parser

    page = (site / "cli.html").read_text()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    options = {option for command in commands.values() for a in command._actions for option in a.option_strings}
    assert set(commands) <= set(re.findall(r"toolkit (\w+)", page))
    assert [option for option in options - {"-h", "--help"} if option not in page] == []


def test_the_gallery_ran_every_example_and_shows_its_output(site):
    for name in GALLERY:
        page = (site / "auto_examples" / f"{name}.html").read_text()
        assert "sphx-glr-script-out" in page, f"{name}: no printed output"
        assert "Traceback" not in page, f"{name} raised"
    for name in ("plot_ar_forecast", "plot_ddpm_moons", "plot_gmm_wine", "plot_captioning"):
        page = (site / "auto_examples" / f"{name}.html").read_text()
        images = re.findall(r'src="\.\./(_images/sphx_glr_[^"]+\.png)"', page)
        assert images and all((site / image).stat().st_size > 5_000 for image in images), name


class Links(html.parser.HTMLParser):
    """The local link targets and the element ids of a page."""

    def __init__(self):
        super().__init__()
        self.targets, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        for key in ("href", "src"):
            value = attributes.get(key)
            if value and not urlsplit(value).scheme and not value.startswith("//"):
                self.targets.append(value)


def test_every_internal_link_and_anchor_resolves(site):
    pages = {path: Links() for path in site.rglob("*.html") if "_static" not in path.parts}
    for path, links in pages.items():
        links.feed(path.read_text())
    broken = []
    for path, links in pages.items():
        for target in links.targets:
            parts = urlsplit(target)
            file = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                broken.append(f"{path.relative_to(site)} -> {target}")
            elif parts.fragment and file.suffix == ".html" and unquote(parts.fragment) not in pages[file].ids:
                broken.append(f"{path.relative_to(site)} -> {target} (no such anchor)")
    assert broken == []


# ---------------------------------------------------------------- in a browser
# Added to every page the test server sends: once loaded, and again every 100 ms (the search
# fills its results after loading its index), it records what the browser made of the page.
PROBE = b"""<script>
function probe() {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter((i) => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.title = document.title;
  const results = document.querySelectorAll("#search-results li a");
  document.body.dataset.results = [...results].map((a) => a.textContent).join("|");
}
window.addEventListener("load", () => { probe(); setInterval(probe, 100); });
</script>"""


class ProbingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the site, with the probe added before ``</body>`` of each page."""

    def send_head(self):
        path = self.translate_path(self.path)
        if not path.endswith(".html"):
            return super().send_head()
        try:
            body = Path(path).read_bytes().replace(b"</body>", PROBE + b"</body>")
        except OSError:
            self.send_error(404)
            return None
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return None

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def served_site(site):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(ProbingHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def browse(url: str) -> dict[str, str]:
    """The probe's findings on the page at ``url``, in headless chromium (a tall window, so that
    lazily loaded images load too)."""
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,20000"]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=10000", "--dump-dom", url], capture_output=True, text=True, timeout=120
    ).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"no page at {url}: {dom[:500]}"
    return dict(re.findall(r'data-(\w+)="([^"]*)"', body.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's package)")
@pytest.mark.parametrize(
    "page",
    [
        "index.html",
        "generated/toolkit.mixture.GaussianMixture.html",
        "user_guide/mixture.html",
        "auto_examples/plot_gmm_wine.html",
        "auto_examples/index.html",
    ],
)
def test_a_browser_opens_the_page_and_decodes_every_image(served_site, page):
    seen = browse(f"{served_site}/{page}")
    assert seen["title"].endswith(f"— toolkit {toolkit.__version__}"), seen  # the page, not an error page
    assert int(seen["decoded"]) == int(seen["images"]), seen
    if page.startswith("auto_examples/plot_"):
        assert int(seen["images"]) >= 2  # the example's figures


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs Debian's package)")
def test_the_sites_search_finds_gaussian_mixture_in_the_browser(served_site):
    results = browse(f"{served_site}/search.html?q=GaussianMixture")["results"].split("|")
    assert any("GaussianMixture" in result for result in results), results
