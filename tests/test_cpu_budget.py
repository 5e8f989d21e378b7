"""The CPU budget: read from fake cgroup v2 / v1 trees, the affinity mask and OMP_NUM_THREADS,
without timing anything."""

import os
import subprocess
import sys

import pytest

from tests._warnings import SHORT_TRAINING
from toolkit._cpu_budget import CpuBudget, cgroup_quota, cpu_budget, host_physical_cores

AFFINITY = len(os.sched_getaffinity(0))


def tree(tmp_path, proc_line: str, files: dict[str, str]):
    """(cgroup root, /proc/self/cgroup) of a fake tree: ``files`` by path under the root."""
    root = tmp_path / "cgroup"
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    proc = tmp_path / "proc_cgroup"
    proc.write_text(proc_line + "\n")
    return root, proc


def test_cgroup_v2_quota_along_the_path_the_tightest_wins(tmp_path):
    root, proc = tree(
        tmp_path,
        "0::/kubepods/pod1/container",
        {
            "cpu.max": "max 100000\n",
            "kubepods/cpu.max": "400000 100000\n",
            "kubepods/pod1/cpu.max": "150000 100000\n",  # the pod's limit: cpu 1.5
            "kubepods/pod1/container/cpu.max": "max 100000\n",
        },
    )
    assert cgroup_quota(root, proc) == (1.5, "cgroup v2 cpu.max")
    # 1.5 CPUs: 1 thread (rounded down, so that no thread waits on the quota)
    assert cpu_budget({}, root, proc) == CpuBudget(1, "cgroup v2 cpu.max: 1.5 CPUs")


def test_cgroup_v2_without_a_quota_leaves_the_affinity(tmp_path):
    root, proc = tree(tmp_path, "0::/user.slice", {"cpu.max": "max 100000\n", "user.slice/cpu.max": "max 100000\n"})
    assert cgroup_quota(root, proc) is None
    assert cpu_budget({}, root, proc) == CpuBudget(AFFINITY, f"CPU affinity: {AFFINITY} of {os.cpu_count()} CPUs")


def test_a_quota_above_the_affinity_leaves_the_affinity(tmp_path):
    root, proc = tree(tmp_path, "0::/", {"cpu.max": f"{(AFFINITY + 2) * 100000} 100000\n"})
    assert cgroup_quota(root, proc) == (AFFINITY + 2, "cgroup v2 cpu.max")
    assert cpu_budget({}, root, proc).threads == AFFINITY


@pytest.mark.parametrize(
    ("line", "folder"),
    [
        ("4:cpu,cpuacct:/docker/abc", "cpu,cpuacct/docker/abc"),  # the container's own folder
        ("4:cpu,cpuacct:/docker/abc", "cpu,cpuacct"),  # a cgroup namespace: the container sees its root
        ("3:cpu:/", "cpu"),
    ],
)
def test_cgroup_v1_cfs_quota(tmp_path, line, folder):
    files = {f"{folder}/cpu.cfs_quota_us": "50000\n", f"{folder}/cpu.cfs_period_us": "100000\n"}
    root, proc = tree(tmp_path, f"9:name=systemd:/\n{line}\n0::/", files)
    assert cgroup_quota(root, proc) == (0.5, "cgroup v1 cpu.cfs_quota_us")
    assert cpu_budget({}, root, proc) == CpuBudget(1, "cgroup v1 cpu.cfs_quota_us: 0.5 CPUs")


def test_cgroup_v1_without_a_quota(tmp_path):
    files = {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}
    root, proc = tree(tmp_path, "1:cpu:/", files)
    assert cgroup_quota(root, proc) is None


def test_no_cgroup_file_system(tmp_path):
    assert cgroup_quota(tmp_path / "none", tmp_path / "no_proc_file") is None
    assert cpu_budget({}, tmp_path / "none", tmp_path / "no_proc_file").threads == AFFINITY


def test_omp_num_threads_is_the_users_choice_and_wins(tmp_path):
    root, proc = tree(tmp_path, "0::/", {"cpu.max": "50000 100000\n"})
    assert cpu_budget({"OMP_NUM_THREADS": "3"}, root, proc) == CpuBudget(3, "OMP_NUM_THREADS=3")
    assert cpu_budget({"OMP_NUM_THREADS": "not a number"}, root, proc).threads == 1


@pytest.mark.skipif(AFFINITY < 2, reason="needs two CPUs to pin to one")
def test_a_process_pinned_to_one_cpu_gets_one_thread():
    script = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from toolkit._cpu_budget import cpu_budget; print(cpu_budget({}).threads)"
    )
    environment = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


# ---------------------------------------------------------------- where the budget is applied
def test_show_config_and_toolkit_info_report_the_budget_and_where_it_came_from(capsys):
    import toolkit
    from toolkit.cli import main

    budget = cpu_budget()
    assert toolkit.show_config(mode="dicts")["cpu_budget"] == {"threads": budget.threads, "source": budget.source}
    assert main(["info"]) == 0
    assert f"CPU budget: {budget.threads} thread(s) ({budget.source})" in capsys.readouterr().out


def test_onnx_sessions_take_the_budget_unless_given_their_threads(tmp_path, monkeypatch):
    import numpy as np
    from onnx import TensorProto, helper

    from toolkit.serving import OnnxModel, _model

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    path = tmp_path / "relu.onnx"
    path.write_bytes(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9).SerializeToString()
    )
    monkeypatch.setattr(_model, "cpu_budget", lambda: CpuBudget(1, "a test's"))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # a host of 64 CPUs of which this process may use 1
    model = OnnxModel(path)
    assert model.session.get_session_options().intra_op_num_threads == 1
    assert model.run(np.array([[-1.0, 2.0]], np.float32))["y"].tolist() == [[0.0, 2.0]]
    assert OnnxModel(path, intra_op_num_threads=2).session.get_session_options().intra_op_num_threads == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # the budget is the whole host: onnxruntime's own choice
    assert OnnxModel(path).session.get_session_options().intra_op_num_threads == 0


def test_toolkit_run_gives_each_pipeline_one_torch_thread_and_runs_as_many_as_the_budget_holds(monkeypatch):
    import torch

    from toolkit.jobs import _workers

    before = torch.get_num_threads()
    monkeypatch.setattr(_workers, "cpu_budget", lambda: CpuBudget(1, "a test's"))
    assert _workers.default_jobs() == 1
    with _workers.job_executor(1) as (executor, slots):  # in this process: one thread, torch's own count after
        assert executor.submit(torch.get_num_threads).result() == 1 and slots == 1
    assert torch.get_num_threads() == before
    with _workers.job_executor(1, threads=3) as (executor, slots):  # --threads 3
        assert executor.submit(torch.get_num_threads).result() == 3
    monkeypatch.setattr(_workers, "cpu_budget", lambda: CpuBudget(4, "a test's"))
    monkeypatch.setattr(_workers, "available_memory", lambda: 64 * 2**30)
    assert (_workers.default_jobs(), _workers.default_jobs(threads=2), _workers.default_jobs(threads=8)) == (4, 2, 1)
    monkeypatch.setattr(_workers, "available_memory", lambda: 3.5 * 2**30)  # room for two pipelines' peaks
    assert _workers.default_jobs() == 2
    monkeypatch.setattr(_workers, "available_memory", lambda: 2**30)
    assert _workers.default_jobs() == 1
    with _workers.job_executor(2) as (executor, slots):  # two workers, one thread each
        assert executor.submit(torch.get_num_threads).result() == 1 and slots == 2
    with _workers.job_executor(2, threads=2) as (executor, slots):
        assert executor.submit(torch.get_num_threads).result() == 2


def test_available_memory_reads_memavailable(tmp_path):
    from toolkit.jobs._workers import available_memory

    (tmp_path / "meminfo").write_text("MemTotal:       24000000 kB\nMemAvailable:    2000000 kB\n")
    assert available_memory(tmp_path / "meminfo") == 2_000_000 * 1024
    assert available_memory(tmp_path / "none") is None


@pytest.mark.parametrize("option", ["--jobs", "--threads"])
def test_toolkit_run_refuses_a_count_below_one(option, capsys):
    from toolkit.cli import main

    assert main(["run", "sunspots_ar", option, "0"]) == 2
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


# ---------------------------------------------------------------- fits: torch within the budget
def test_host_physical_cores_counts_cores_not_hyperthreads(tmp_path):
    for cpu, (package, core) in enumerate([(0, 0), (0, 0), (0, 1), (0, 1), (1, 0), (1, 0)]):
        topology = tmp_path / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "physical_package_id").write_text(f"{package}\n")
        (topology / "core_id").write_text(f"{core}\n")
    (tmp_path / "cpufreq").mkdir()  # not a CPU
    assert host_physical_cores(tmp_path) == 3
    assert host_physical_cores(tmp_path / "no_sysfs") == os.cpu_count()


class ThreadsSeen:
    """A training callback that records torch's intra-op threads at each epoch."""

    def __init__(self):
        self.threads = []

    def on_epoch_end(self, net, history):
        import torch

        self.threads.append(torch.get_num_threads())


@SHORT_TRAINING
@pytest.mark.parametrize(
    ("torch_set_by", "inside"),
    [("torch itself", 1), ("the user's torch.set_num_threads", 2), ("OMP_NUM_THREADS", 2)],
)
def test_a_fit_keeps_torchs_own_thread_count_within_the_budget_and_a_users_count_wins(
    torch_set_by, inside, monkeypatch
):
    import numpy as np
    import torch

    from toolkit import _cpu_budget
    from toolkit.neural_network import MLPClassifier

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    # torch sized itself from a host of 2 physical cores (else the user chose 2), in a budget of 1
    monkeypatch.setattr(_cpu_budget, "host_physical_cores", lambda: 2 if torch_set_by == "torch itself" else 8)
    monkeypatch.setattr(_cpu_budget, "cpu_budget", lambda: CpuBudget(1, "a test's"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    if torch_set_by == "OMP_NUM_THREADS":
        monkeypatch.setattr(_cpu_budget, "host_physical_cores", lambda: 2)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
    seen = ThreadsSeen()
    try:
        X = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
        MLPClassifier(hidden_layer_sizes=(4,), max_epochs=2, callbacks=[seen]).fit(X, X[:, 0] > 0)
        assert seen.threads == [inside, inside]
        assert torch.get_num_threads() == 2  # restored after the fit
    finally:
        torch.set_num_threads(before)
