"""The architecture (ARCHITECTURE.md) as tests: which layer imports which, where torch modules live,
and estimators whose signature, parameter table and docstring agree."""

import ast
import importlib
import inspect
import pkgutil
import re
import warnings
from pathlib import Path

import pytest
import torch
from numpydoc.docscrape import ClassDoc

import toolkit
from toolkit import all_estimators
from toolkit._net_estimator import BaseNeuralNet
from toolkit.neural_network import MLPClassifier

PACKAGE = Path(toolkit.__file__).parent
FAMILIES = ("neural_network", "mixture", "timeseries", "generative")
ESTIMATORS = [cls for _, cls in all_estimators()]
NETS = [cls for cls in ESTIMATORS if issubclass(cls, BaseNeuralNet)]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (relative imports resolved), read from its syntax tree."""
    package = ".".join(("toolkit", *path.relative_to(PACKAGE).parent.parts))
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def module_imports(path: Path) -> set[str]:
    """The toolkit modules a file imports anywhere in it (function-level imports included):
    ``from package import name`` imports the submodule ``package.name`` when there is one, else
    the package; a name that is no module stands for its nearest enclosing module."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    named = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            named += [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    found = set()
    for name in named:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != this:
            found.add(name)
    return found


def import_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as a list of nodes (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_among_toolkit_modules():
    graph = {name: module_imports(path) for name, path in MODULES.items()}
    cycle = import_cycle(graph)
    assert cycle is None, f"modules import each other (function-level imports included): {' -> '.join(cycle)}"


def test_the_cycle_check_finds_a_cycle():
    assert import_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert import_cycle({"a": {"b"}, "b": set()}) is None


def test_no_estimator_family_imports_another():
    for family in FAMILIES:
        others = [f"toolkit.{other}" for other in FAMILIES if other != family]
        for path in (PACKAGE / family).rglob("*.py"):
            wrong = sorted(m for m in imported_modules(path) if any(m == o or m.startswith(o + ".") for o in others))
            assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}: shared pieces belong below the families"


def test_nn_imports_neither_scikit_learn_nor_pandas_nor_onnx_nor_a_family():
    for path in (PACKAGE / "nn").rglob("*.py"):
        roots = {m.split(".")[0] for m in imported_modules(path)}
        assert not roots & {"sklearn", "pandas", "onnx", "onnxruntime"}, path
        assert not any(m.startswith(f"toolkit.{f}") for m in imported_modules(path) for f in FAMILIES), path


def test_every_torch_module_lives_in_toolkit_nn():
    defined = []
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="toolkit."):
        if info.name.startswith("toolkit.serving."):
            continue  # parts need the [serve] extras; serving imports no torch at all (test_serving_imports)
        module = importlib.import_module(info.name)
        defined += [
            (info.name, name)
            for name, cls in vars(module).items()
            if inspect.isclass(cls) and cls.__module__ == info.name and issubclass(cls, torch.nn.Module)
        ]
    assert defined, "no torch module found at all"
    outside = [f"{module}.{name}" for module, name in defined if not module.startswith("toolkit.nn.")]
    assert not outside, f"torch.nn.Module subclasses outside toolkit/nn/: {outside}"


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_signature_parameter_table_and_docstring_agree(cls):
    """scikit-learn wants every parameter spelled out in each __init__; this keeps the copies in step."""
    signature = [name for name in inspect.signature(cls.__init__).parameters if name != "self"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpydoc warns about sections it cannot read
        documented = [name.strip() for entry in ClassDoc(cls)["Parameters"] for name in entry.name.split(",")]
    assert sorted(cls._parameter_constraints) == sorted(signature), (
        f"{cls.__name__}: _parameter_constraints vs __init__"
    )
    assert documented == signature, f"{cls.__name__}: the docstring's parameters vs __init__, in order"


def test_the_net_base_declares_every_hook_it_calls():
    """Each ``self._name(...)`` that a class of toolkit/_net_estimator.py calls is defined on it
    or a class it derives from (its hooks are declared where they are called), with a docstring."""
    from toolkit import _net_estimator

    tree = ast.parse(Path(_net_estimator.__file__).read_text())
    for node in [n for n in tree.body if isinstance(n, ast.ClassDef)]:
        cls = getattr(_net_estimator, node.name)
        called = {
            call.func.attr
            for call in ast.walk(node)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id == "self"
            and call.func.attr.startswith("_")
        }
        undeclared = sorted(name for name in called if not hasattr(cls, name))
        assert not undeclared, f"{node.name} calls hooks it does not declare: {undeclared}"
        undocumented = sorted(name for name in called if not inspect.getdoc(getattr(cls, name)))
        assert not undocumented, f"{node.name}'s hooks without a docstring: {undocumented}"


@pytest.mark.parametrize("missing", ["_build_net", "_loss", "_encode_targets", "_output_specs"])
def test_a_net_missing_an_abstract_hook_cannot_be_made(missing):
    from toolkit._net_estimator import PredictorNet

    hooks = {
        "_net_shape": lambda self, shape: shape,
        "_build_net": lambda self, shape, n: torch.nn.Linear(shape[0], n),
        "_n_outputs": lambda self: 1,
        "_loss": lambda self, outputs, targets: (outputs - targets).pow(2).mean(),
        "_metric": lambda self, outputs, targets: 0.0,
        "_encode_targets": lambda self, y, n, *, reset, classes=None: y,
        "_output_layers": lambda self: [],
        "_output_specs": lambda self: [],
    }
    complete = type("Complete", (PredictorNet,), hooks)
    complete()
    incomplete = type("Incomplete", (PredictorNet,), {k: v for k, v in hooks.items() if k != missing})
    with pytest.raises(TypeError, match=f"Can't instantiate abstract class Incomplete .*{missing}"):
        incomplete()


def test_the_registry_finds_every_family_and_kind():
    names = [name for name, _ in all_estimators()]
    assert {"ARForecaster", "GaussianMixture", "MLPClassifier", "VAE", "DDPM", "CaptionGenerator"} <= set(names)
    assert names == sorted(names) and len(NETS) == 10
    assert [name for name, _ in all_estimators("density")] == ["GaussianMixture"]
    with pytest.raises(ValueError, match="type_filter must be one of"):
        all_estimators("cluster")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_every_public_estimators_docstring_is_a_literal_in_its_class_body(cls):
    """IDE hovers, help() and static analysers read the class body's first string, not a
    ``__doc__`` computed at import."""
    node = next(
        n
        for n in ast.parse(Path(inspect.getsourcefile(cls)).read_text()).body
        if getattr(n, "name", "") == cls.__name__
    )
    assigned = [
        n for n in node.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__doc__" for t in n.targets)
    ]
    assert not assigned and ast.get_docstring(node) == inspect.getdoc(cls)


def parameter_entries(cls) -> dict[str, tuple[str, str]]:
    return {entry.name: (entry.type, " ".join(entry.desc)) for entry in ClassDoc(cls)["Parameters"]}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_documented_defaults_are_the_signatures(cls):
    signature = inspect.signature(cls.__init__).parameters
    for entry in ClassDoc(cls)["Parameters"]:
        if "default=" not in entry.type:
            continue
        names = [name.strip() for name in entry.name.split(",")]
        text = entry.type.split("default=", 1)[1].strip()
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        values = value if len(names) > 1 else (value,)  # "kernel_size, stride : ..., default=3, 1"
        for name, default in zip(names, values, strict=True):
            said = f"{cls.__name__}.{name}: the docstring says {default!r}"
            assert default == signature[name].default, f"{said}, the signature {signature[name].default!r}"


@pytest.mark.parametrize("cls", NETS, ids=lambda cls: cls.__name__)
def test_the_shared_training_parameters_read_the_same_in_every_net(cls):
    """The training parameters every net shares (BaseNeuralNet's table) are documented in each
    class body: the text must be the same everywhere, but for a parameter whose default is the
    net's own (a step budget, a batch size), which says so in its own words."""
    reference = parameter_entries(MLPClassifier)
    entries = parameter_entries(cls)
    ours, theirs = inspect.signature(cls.__init__).parameters, inspect.signature(MLPClassifier.__init__).parameters
    for name in BaseNeuralNet._parameter_constraints:
        if ours[name].default != theirs[name].default:
            continue
        assert entries[name] == reference[name], f"{cls.__name__}.{name} is documented differently"


MAX_MODULE_LINES = 500


def test_no_module_is_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split them by job): {long}"


def private_names_in_strings(sources: dict[str, str]) -> list[str]:
    """ "file:line name" for each string (docstrings aside) that names a private function or
    method defined in any of ``sources`` ({file: code}): a name another module would look up."""
    trees = {name: ast.parse(code) for name, code in sources.items()}
    private = {
        node.name
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("_")
        and not node.name.startswith("__")
    }
    found = []
    for name, tree in trees.items():
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        found += [
            f"{name}:{node.lineno} {node.value}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in private and id(node) not in docstrings
        ]
    return found


def test_no_private_method_is_named_in_a_string():
    """Callables travel as callables (the export protocol's specs, validation, the Dask paths):
    a private name in a string breaks at run time when it is renamed, and no tool sees it."""
    sources = {str(path.relative_to(PACKAGE.parent)): path.read_text() for path in MODULES.values()}
    assert private_names_in_strings(sources) == []
    planted = {"a.py": "class A:\n    def _inputs(self):\n        pass\n", "b.py": 'spec = {"method": "_inputs"}\n'}
    assert private_names_in_strings(planted) == ["b.py:1 _inputs"]


UNSHIPPED_DOCUMENTS = re.compile(r"\bthe notes\b|\bnotes'|\bthe issues?\b|\bthe anchors?\b|DESIGN\.md", re.IGNORECASE)


def test_code_cites_papers_and_libraries_not_documents_outside_the_repository():
    root = PACKAGE.parent
    found = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("toolkit", "tests", "pipelines", "benchmarks")
        for path in (root / folder).rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if UNSHIPPED_DOCUMENTS.search(line) and path.name != "test_structure.py"
    ]
    assert not found, f"references to documents a reader cannot open: {found}"


def test_the_tests_small_estimators_cover_the_registry():
    """tests/_estimators.py gives the common checks, the export tests and the estimator tests
    their estimators: it must hold every public one."""
    from tests._estimators import SMALL

    assert sorted(SMALL) == [name for name, _ in all_estimators()]


def test_architecture_md_is_linked_and_names_only_files_that_exist():
    root = PACKAGE.parent
    architecture = (root / "ARCHITECTURE.md").read_text()
    assert "(ARCHITECTURE.md)" in (root / "README.md").read_text()
    named = set(re.findall(r"`([\w/]+\.py)`", architecture)) | set(
        re.findall(r"\b((?:toolkit|tests)/[\w/]+\.py)", architecture)
    )
    files = {path.relative_to(root).as_posix() for path in root.rglob("*.py") if ".git" not in path.parts}
    missing = [name for name in sorted(named) if not any(file == name or file.endswith("/" + name) for file in files)]
    assert not missing, f"ARCHITECTURE.md names files that do not exist: {missing}"
