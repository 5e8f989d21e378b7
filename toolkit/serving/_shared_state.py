"""One repository state for the worker processes of a server (``toolkit serve --workers N``).

Each worker holds its own sessions, and a load or unload request reaches one of them. So that
every worker gives the same answer once that request is answered, the worker that takes it
applies the operation, then records the repository's state in a folder the workers share:
``state.json`` (each folder: loaded or not, and a generation counted up at each operation on
it) and an epoch, an 8-byte counter in a memory-mapped file, counted up after the state is
written. Every worker reads the epoch before it looks a model up (a read of shared memory, well
under a microsecond) and, when it moved, reads the state and applies what changed (a load reads
the folder from disk again) before it answers. Writers take an exclusive ``flock``; the state
file is replaced whole (written aside, then renamed), so a reader sees the old state or the new.

The parent records the folders found at start (``initialize``), so a worker that starts later
(uvicorn restarts one that died) serves the state as it is, not as it was at start. Only the
standard library: no broker, no process of ours besides the workers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import os
from pathlib import Path

STATE_VARIABLE = "TOOLKIT_SERVE_STATE_DIR"
_EPOCH_BYTES = 8


class SharedState:
    """The repository state the workers of one server share, kept in ``folder``.

    Parameters
    ----------
    folder : str or Path
        A folder only this server's processes write (``toolkit serve`` makes a temporary one).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.state_file = self.folder / "state.json"
        epoch_file = self.folder / "epoch"
        with self._locked():
            if not epoch_file.exists():
                epoch_file.write_bytes(bytes(_EPOCH_BYTES))
        with open(epoch_file, "r+b") as handle:
            self._epoch = mmap.mmap(handle.fileno(), _EPOCH_BYTES)

    @contextlib.contextmanager
    def _locked(self):
        with open(self.folder / "lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield

    def epoch(self) -> int:
        """How many operations have been recorded (read from shared memory: cheap enough for
        every request)."""
        return int.from_bytes(self._epoch[:_EPOCH_BYTES], "little")

    def read(self) -> dict:
        """``{"epoch": n, "folders": {folder: {"loaded": bool, "generation": int}}}``."""
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"epoch": 0, "folders": {}}

    def initialize(self, folders: list[str]) -> None:
        """Record the folders found at start as loaded, unless a state is recorded already."""
        with self._locked():
            if not self.state_file.exists():
                self._write({"epoch": 0, "folders": {name: {"loaded": True, "generation": 0} for name in folders}})

    def record(self, folder_name: str, loaded: bool) -> dict:
        """Record that ``folder_name`` was loaded (read again) or unloaded; the new state."""
        with self._locked():
            state = self.read()
            generation = state["folders"].get(folder_name, {}).get("generation", 0) + 1
            state["folders"][folder_name] = {"loaded": loaded, "generation": generation}
            state["epoch"] += 1
            self._write(state)
        return state

    def _write(self, state: dict) -> None:
        aside = self.state_file.with_suffix(".tmp")
        aside.write_text(json.dumps(state))
        os.replace(aside, self.state_file)
        self._epoch[:_EPOCH_BYTES] = state["epoch"].to_bytes(_EPOCH_BYTES, "little")
