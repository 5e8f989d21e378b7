"""The compiled kernels made visible: show_config / toolkit info say which pass runs, a kernel
that was built but does not import warns, and each compiler's build of the EM pass is really
compiled for its instruction set (clang ignores GCC's target pragma)."""

import importlib.machinery
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import warnings
from pathlib import Path

import pytest

import toolkit
from toolkit._kernels import load_kernel
from toolkit.cli import main
from toolkit.mixture import _fused_pass

MIXTURE = Path(_fused_pass.__file__).parent


def test_show_config_says_which_pass_each_family_takes(monkeypatch, capsys):
    info = toolkit.show_config(mode="dicts")
    assert info["toolkit"] == toolkit.__version__ and info["versions"]["torch"].startswith("2.")
    kernel = _fused_pass.kernel
    if kernel is not None and kernel.supported():
        assert f"compiled EM kernel, {kernel.instruction_set()} build" in info["passes"]["GaussianMixture"]
        monkeypatch.setenv(_fused_pass.BUILD_VARIABLE, "avx2")
        assert (
            "compiled EM kernel, avx2 (TOOLKIT_EM_BUILD=avx2) build"
            in toolkit.show_config(mode="dicts")["passes"]["GaussianMixture"]
        )
    monkeypatch.setattr(_fused_pass, "kernel", None)
    assert toolkit.show_config(mode="dicts")["passes"]["GaussianMixture"].startswith(
        "torch pass (the compiled EM kernel was not built"
    )
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert (
        out.startswith(f"toolkit {toolkit.__version__}: Python") and "CUDA (torch):" in out and "ARForecaster: " in out
    )
    with pytest.raises(ValueError, match="mode must be 'stdout' or 'dicts'"):
        toolkit.show_config(mode="json")


def test_a_kernel_built_but_not_importable_warns_with_the_error(tmp_path, monkeypatch):
    package = tmp_path / "kernelpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / f"_broken{importlib.machinery.EXTENSION_SUFFIXES[0]}").write_bytes(b"not an ELF file")
    monkeypatch.syspath_prepend(str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_kernel("kernelpkg._never_built", "the fallback") is None  # no compiler at install: quiet
    with pytest.warns(
        RuntimeWarning, match=r"_broken.*was built but does not import \(.*\); the fallback runs instead"
    ):
        assert load_kernel("kernelpkg._broken", "the fallback") is None


COMPILERS = [c for c in ("gcc", "clang") if shutil.which(c)]


@pytest.mark.skipif(not shutil.which("objdump"), reason="needs objdump (binutils)")
@pytest.mark.parametrize("compiler", COMPILERS)
def test_each_compilers_build_is_compiled_for_its_instruction_set(compiler, tmp_path):
    """Build _em_kernel with ``compiler`` as setup.py would, then: builds() says both builds were
    compiled for their instruction set, the object code holds zmm (AVX-512) and ymm (AVX2)
    instructions, and the build this CPU runs gives the torch pass's fit."""
    target = tmp_path / f"_em_kernel{importlib.machinery.EXTENSION_SUFFIXES[0]}"
    sources = [MIXTURE / name for name in ("_em_kernel.c", "_em_pass_avx512.c", "_em_pass_avx2.c")]
    subprocess.run(
        [
            compiler,
            "-O3",
            "-shared",
            "-fPIC",
            "-Wno-psabi",
            f"-I{sysconfig.get_paths()['include']}",
            *map(str, sources),
            "-o",
            str(target),
        ],
        check=True,
        capture_output=True,
    )
    assembly = subprocess.run(["objdump", "-d", str(target)], check=True, capture_output=True, text=True).stdout
    assert assembly.count("%zmm") > 100 and assembly.count("%ymm") > 100, (
        f"{compiler}: baseline code where AVX-512 / AVX2 was asked for"
    )
    check = textwrap.dedent(
        f"""
        import importlib.util, numpy as np
        from sklearn.datasets import load_wine
        from sklearn.preprocessing import StandardScaler
        spec = importlib.util.spec_from_file_location("_em_kernel", {str(target)!r})
        built = importlib.util.module_from_spec(spec); spec.loader.exec_module(built)
        assert built.builds() == {{"avx512": True, "avx2": True}}, built.builds()
        from toolkit.mixture import GaussianMixture, _fused_pass
        X = StandardScaler().fit_transform(load_wine().data)
        _fused_pass.kernel = None
        reference = GaussianMixture(3, random_state=0).fit(X)
        _fused_pass.kernel = built
        if built.supported():
            compiled = GaussianMixture(3, random_state=0).fit(X)
            np.testing.assert_allclose(compiled.means_, reference.means_, rtol=1e-10)
        print(built.instruction_set())
        """
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
