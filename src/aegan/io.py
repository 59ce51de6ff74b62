"""Atomic writes: every artifact appears complete under its final name or not at all.

DVC caches whatever lies at an output path when a stage succeeds, so a half-written file must never
sit at that path. Everything is written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aegan.errors import OutputError

_FRIENDLY = {
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EDQUOT: "the disk quota is exceeded",
}


@contextlib.contextmanager
def output_errors(path: Path | str) -> Iterator[None]:
    """Turn OS errors while writing `path` into an OutputError that names the path and the cause."""
    try:
        yield
    except OSError as exc:
        reason = _FRIENDLY.get(exc.errno or -1, exc.strerror or str(exc))
        raise OutputError(f"cannot write {path}: {reason} ({exc.__class__.__name__}: {exc})") from exc


def _remove_stale_temps(path: Path) -> None:
    """Temporaries of a writer that was killed (SIGKILL skips `finally`) are removed by the next one.

    One writer per output path is assumed: DVC runs one stage per output.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _tmp_sibling(path: Path, suffix: str = "", directory: bool = False) -> Path:
    """A fresh hidden temporary next to `path` (file or directory), with the usual permissions
    (mkstemp/mkdtemp make them owner-only), after removing what killed writers left behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    options = {"prefix": f".{path.name}.", "suffix": f"{suffix}.tmp", "dir": path.parent}
    if directory:
        tmp = Path(tempfile.mkdtemp(**options))
        tmp.chmod(0o777 & ~_umask())
        return tmp
    fd, name = tempfile.mkstemp(**options)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary file path next to `path`; on success fsync and rename it onto `path`."""
    path = Path(path)
    with output_errors(path):
        tmp = _tmp_sibling(path, path.suffix)
    try:
        with output_errors(path):
            yield tmp
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(path: Path | str, obj: Any) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


@contextlib.contextmanager
def atomic_dir(path: Path | str) -> Iterator[Path]:
    """Build a directory in a temporary sibling and swap it in as `path` only if the block succeeds."""
    path = Path(path)
    with output_errors(path):
        tmp = _tmp_sibling(path, directory=True)
    try:
        with output_errors(path):
            yield tmp
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            if path.exists():
                os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def md5_file(path: Path | str, chunk: int = 1 << 20) -> str:
    import hashlib

    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold run_dir/.lock while a run writes there: a second run on the same directory stops at once."""
    import fcntl

    with output_errors(run_dir), open(run_dir / ".lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(
                f"another aegan run is writing to {run_dir}: wait for it, or use another run dir"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
