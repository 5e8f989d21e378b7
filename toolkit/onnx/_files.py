"""Atomic writes: files are written beside their targets, then renamed over them."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_files(folder: Path, contents: dict[str, bytes]) -> None:
    """Write every {file name: bytes} into ``folder``, all or none.

    Each file is first written and flushed to a temporary file in ``folder``; only when all
    are complete are they renamed over their targets, in the order given. If a rename fails,
    the targets already replaced are restored from hard links to their previous versions, so
    the folder keeps the old set of files. No temporary file is left behind.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporaries: dict[str, Path] = {}
    backups: dict[str, Path | None] = {}
    replaced: list[str] = []
    try:
        for name, data in contents.items():
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            temporaries[name] = Path(temporary)
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
        try:
            for name, temporary in temporaries.items():
                target = folder / name
                backups[name] = None
                if target.exists():
                    backups[name] = temporary.with_suffix(".previous")
                    os.link(target, backups[name])
                os.replace(temporary, target)
                replaced.append(name)
        except BaseException:
            for name in replaced:
                backup = backups[name]
                if backup is not None:
                    os.replace(backup, folder / name)
                else:
                    (folder / name).unlink(missing_ok=True)
            raise
    finally:
        for path in [*temporaries.values(), *(b for b in backups.values() if b is not None)]:
            path.unlink(missing_ok=True)


def json_bytes(document: dict) -> bytes:
    return (json.dumps(document, indent=2, default=str) + "\n").encode()
