"""How many threads toolkit's work may use: the CPUs this process may actually run on, not the
host's core count.

``os.cpu_count()`` counts the host's cores. A process pinned to fewer (``taskset``, a cpuset)
or given a CPU quota (a container's ``--cpus``, a Kubernetes pod's ``cpu`` limit: cgroup v2's
``cpu.max``, v1's ``cpu.cfs_quota_us``) that starts one thread per host core oversubscribes
what it has, and PyTorch's OpenMP threads, which spin while they wait for each other, then
lose most of their time to a descheduled sibling. The budget is the smallest of: the CPUs in
the process's affinity mask, and the quota rounded down (never below 1: a quota of 1.5 CPUs
gives 1 thread, so that no thread waits on the quota). An explicit ``OMP_NUM_THREADS`` is the
user's choice and wins. The quota is read along the process's cgroup path, up to the root
(the tightest limit on the way applies), as the JVM and Go's automaxprocs read it.

Fits apply it to torch with :func:`torch_threads_within_budget`; ``toolkit run`` (its pipelines'
threads), ``OnnxModel`` (onnxruntime's pool) and the DDP launcher read it themselves.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")
CPU_ROOT = Path("/sys/devices/system/cpu")


@dataclass(frozen=True)
class CpuBudget:
    """Threads toolkit's work may use, and what decided it.

    Parameters
    ----------
    threads : int
        The budget (at least 1).
    source : str
        Where it came from, in words ("OMP_NUM_THREADS=3", "cgroup v2 cpu.max: 1.5 CPUs", "CPU
        affinity: 2 of 64 CPUs").
    """

    threads: int
    source: str

    @property
    def below_host(self) -> bool:
        """Whether the budget is below the host's CPU count: then the libraries' own defaults,
        sized from the host (torch and onnxruntime take one thread per physical core), would
        oversubscribe it; otherwise they are left their choice."""
        return self.threads < (os.cpu_count() or self.threads)


def cpu_budget(
    environ: Mapping[str, str] = os.environ, cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> CpuBudget:
    """The CPU budget of this process (see the module's docstring).

    Parameters
    ----------
    environ : mapping, default=os.environ
        Where ``OMP_NUM_THREADS`` is looked up.
    cgroup_root, proc_cgroup : Path
        Where the cgroup file systems are mounted, and the file that names this process's
        cgroups (tests point them at a fake tree).

    Returns
    -------
    CpuBudget
    """
    explicit = environ.get("OMP_NUM_THREADS", "").strip()
    if explicit.isdigit() and int(explicit) > 0:
        return CpuBudget(int(explicit), f"OMP_NUM_THREADS={explicit}")
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    host = os.cpu_count() or affinity
    budget = CpuBudget(affinity, f"CPU affinity: {affinity} of {host} CPUs")
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cpus, where = quota
        threads = max(1, math.floor(cpus))
        if threads < affinity:
            budget = CpuBudget(threads, f"{where}: {cpus:g} CPUs")
    return budget


def cgroup_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> tuple[float, str] | None:
    """(CPUs, which file said so) of the tightest CPU quota on this process's cgroup path, from
    cgroup v2 (``cpu.max``) or v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``); None when no
    quota applies or the files cannot be read (not Linux, no cgroup file system)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        hierarchy, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if hierarchy == "0" and controllers == "":
            limits += _v2_limits(cgroup_root, path)
        elif "cpu" in controllers.split(","):
            limits += _v1_limits(cgroup_root, controllers, path)
    return min(limits) if limits else None


def _along(base: Path, path: str) -> list[Path]:
    """``base`` joined with ``path`` and each of its ancestors up to ``base`` itself (a path that
    is not there, as inside a container's cgroup namespace, leaves only ``base``)."""
    parts = [part for part in path.strip("/").split("/") if part]
    return [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]


def _v2_limits(root: Path, path: str) -> list[tuple[float, str]]:
    limits = []
    for folder in _along(root, path):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and int(period) > 0:
            limits.append((int(quota) / int(period), "cgroup v2 cpu.max"))
    return limits


def _v1_limits(root: Path, controllers: str, path: str) -> list[tuple[float, str]]:
    limits = []
    for mount in (root / controllers, root / "cpu", root / "cpu,cpuacct"):
        for folder in _along(mount, path):
            try:
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                period = int((folder / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                limits.append((quota / period, "cgroup v1 cpu.cfs_quota_us"))
        if limits:
            break
    return limits


@functools.cache
def host_physical_cores(cpu_root: Path = CPU_ROOT) -> int:
    """The host's physical cores (distinct package and core ids in sysfs; ``os.cpu_count()`` where
    sysfs does not say): the count torch gives its intra-op pool unless told otherwise (cpuinfo's
    cores, all the host's, whatever this process's affinity or quota). Read once per process (a
    fit asks at each call)."""
    cores = set()
    for topology in cpu_root.glob("cpu[0-9]*/topology"):
        with contextlib.suppress(OSError):
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
    return len(cores) or os.cpu_count() or 1


@contextlib.contextmanager
def torch_threads_within_budget():
    """Inside the block (a fit), torch's intra-op threads at most the CPU budget when torch sized
    them itself from the host (its count is still the host's physical cores, and no
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` is set) and the budget is below that; torch's count
    is restored after. A count the user set with ``torch.set_num_threads`` is theirs and is left
    alone, as is everything when torch is not imported (no torch work happens then)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else 0
    untouched = not {"OMP_NUM_THREADS", "MKL_NUM_THREADS"} & set(os.environ) and before == host_physical_cores()
    budget = cpu_budget().threads if untouched else before
    with torch_threads(budget) if budget < before else contextlib.nullcontext():
        yield


@contextlib.contextmanager
def torch_threads(threads: int):
    """torch's intra-op threads set to ``threads`` inside the block, torch's own count after
    (nothing when torch is not installed: the base install has none)."""
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
