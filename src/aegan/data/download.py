"""Fetching files: resumable HTTP downloads verified by checksum, written atomically.

A file is first fetched to `<name>.part` (resumed with an HTTP Range request when a previous attempt
was interrupted), then verified, then renamed. A file that fails verification never gets its final
name, so neither aegan nor DVC can mistake it for good data.
"""

from __future__ import annotations

import http.client
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from aegan.errors import ChecksumError, DataFormatError, DownloadError
from aegan.io import md5_file, output_errors

USER_AGENT = "aegan/0.1 (+https://github.com/aegan)"
Verifier = Callable[[Path], None]


@dataclass(frozen=True)
class Attempt:
    source: str
    error: str


def http_download(url: str, dest: Path, *, timeout: float = 60.0, progress: bool = True) -> None:
    """Download `url` to `dest`, resuming from `dest`'s current size when the server supports ranges."""
    have = dest.stat().st_size if dest.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part file is already complete
            return
        raise
    with response:
        resumed = response.status == 206
        mode = "ab" if resumed else "wb"
        total = response.headers.get("Content-Length")
        total = int(total) + (have if resumed else 0) if total else None
        expected_end = total
        with (
            open(dest, mode) as out,
            tqdm(
                total=total,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=dest.name.removesuffix(".part"),
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while block := response.read(1 << 16):
                out.write(block)
                bar.update(len(block))
    if expected_end is not None and dest.stat().st_size < expected_end:
        raise DownloadError(f"{url}: connection closed after {dest.stat().st_size} of {expected_end} bytes")


def fetch_verified(
    name: str,
    dest_dir: Path,
    *,
    local_dirs: Iterable[Path | str | None],
    urls: Iterable[str],
    verify: Verifier,
    retries: int = 2,
    progress: bool = True,
) -> Path:
    """Put a verified copy of file `name` in `dest_dir`, trying local directories first, then URLs.

    Every source that fails (missing, corrupt, bad checksum, network error) is recorded; if none works,
    DownloadError lists them all so the user sees what was tried.
    """
    dest = dest_dir / name
    part = dest_dir / f"{name}.part"
    attempts: list[Attempt] = []
    with output_errors(dest_dir):
        dest_dir.mkdir(parents=True, exist_ok=True)

    for directory in local_dirs:
        if not directory:
            continue
        candidate = Path(directory).expanduser() / name
        if not candidate.is_file():
            attempts.append(Attempt(str(candidate), "not found"))
            continue
        try:
            verify(candidate)
        except (ChecksumError, DataFormatError) as exc:
            attempts.append(Attempt(str(candidate), str(exc)))
            continue
        with output_errors(dest):
            shutil.copyfile(candidate, part)
            os.replace(part, dest)
        return dest

    for base in urls:
        url = base.rstrip("/") + "/" + name
        for attempt in range(retries + 1):
            try:
                http_download(url, part, progress=progress)
                verify(part)
            except (ChecksumError, DataFormatError) as exc:
                part.unlink(missing_ok=True)  # a complete but wrong file: resuming it cannot help
                attempts.append(Attempt(url, str(exc)))
                break
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                ConnectionError,
                TimeoutError,
                DownloadError,
            ) as exc:
                attempts.append(Attempt(url, f"try {attempt + 1}: {exc}"))
                continue  # keep the .part file: the next try resumes it
            except OSError as exc:  # writing failed (disk full, read-only): no retry can help
                with output_errors(part):
                    raise
                raise AssertionError("unreachable") from exc
            with output_errors(dest):
                os.replace(part, dest)
            return dest

    tried = "\n".join(f"  - {a.source}: {a.error}" for a in attempts) or "  (no sources configured)"
    raise DownloadError(
        f"could not obtain a verified copy of {name}. Tried:\n{tried}\n"
        "Put the file in a mirror directory (data source `mirror_dir` in conf/ or the AEGAN_MIRROR_DIR "
        "environment variable), install the system package, or run where the URLs are reachable."
    )


def md5_verifier(expected: str) -> Verifier:
    def verify(path: Path) -> None:
        actual = md5_file(path)
        if actual != expected:
            raise ChecksumError(f"{path}: md5 {actual} does not match the published {expected}")

    return verify
