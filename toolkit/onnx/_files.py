"""Atomic writes: files are written beside their targets, then renamed over them."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """An open, new, empty file beside ``folder / name``, with the mode a plain ``open(path, "w")``
    would give the target: the existing target's mode, else 0o666 less the umask (unlike
    ``tempfile.mkstemp``'s 0o600, which a rename would carry over)."""
    target = folder / name
    existing = target.exists()
    mode = target.stat().st_mode & 0o7777 if existing else 0o666
    while True:
        temporary = folder / f".{name}.{secrets.token_hex(6)}.tmp"
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        if existing:
            os.chmod(handle, mode)  # the umask may have cleared bits the old file had
        return handle, temporary


def atomic_write_files(folder: Path, contents: dict[str, bytes]) -> None:
    """Write every {file name: bytes} into ``folder``, all or none.

    Each file is first written and flushed to a temporary file in ``folder`` (with the mode
    a plain write would give: the target's, else the umask's); only when all
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
            handle, temporary = _create_temporary(folder, name)
            temporaries[name] = temporary
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
