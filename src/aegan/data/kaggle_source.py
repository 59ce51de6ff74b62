"""Kaggle datasets (LEGO bricks, CelebA): through the `kaggle` package's API, or from a local copy.

The kaggle package prints help and calls exit(1) when it finds no credentials; here that becomes a
SourceUnavailableError that lists every way to provide the data.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from aegan.errors import DataFormatError, SourceUnavailableError
from aegan.io import output_errors


def options_message(slug: str, config_key: str) -> str:
    return (
        f"To get the Kaggle dataset '{slug}', do one of:\n"
        "  1. give Kaggle credentials: KAGGLE_API_TOKEN (or ~/.kaggle/access_token), or KAGGLE_USERNAME and "
        "KAGGLE_KEY (or ~/.kaggle/kaggle.json), and network access to kaggle.com;\n"
        f"  2. download the archive yourself and set {config_key}.source.archive=/path/to/archive.zip;\n"
        f"  3. unpack it yourself and set {config_key}.source.local_dir=/path/to/folder."
    )


def kaggle_download(slug: str, dest_dir: Path, config_key: str) -> Path:
    """Download the dataset archive of `slug` into `dest_dir` and return the zip path."""
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            api.authenticate()
    except SystemExit as exc:
        raise SourceUnavailableError(f"no Kaggle credentials found.\n{options_message(slug, config_key)}") from exc
    with output_errors(dest_dir):
        dest_dir.mkdir(parents=True, exist_ok=True)
    try:
        api.dataset_download_files(slug, path=str(dest_dir), unzip=False, quiet=False)
    except Exception as exc:  # the kaggle client raises requests/urllib3/its own errors: all mean "not here"
        raise SourceUnavailableError(
            f"the Kaggle API could not download '{slug}': {exc.__class__.__name__}: {exc}\n"
            f"{options_message(slug, config_key)}"
        ) from exc
    archives = sorted(dest_dir.glob("*.zip"))
    if not archives:
        raise SourceUnavailableError(f"the Kaggle API returned no archive for '{slug}' in {dest_dir}")
    return archives[0]


def _unusable(path: Path, kind: str) -> str | None:
    """Why a user-given input path cannot be read as a `kind` ("file" or "directory"), or None if it can."""
    try:
        path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports a symlink loop this way
        return "is a symbolic link loop"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "is a symbolic link loop"
        return "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({exc.strerror})"
    if kind == "file" and path.is_dir():
        return "is a directory, not an archive file"
    if kind == "directory" and not path.is_dir():
        return "is a file, not a directory"
    if not os.access(path, os.R_OK | (os.X_OK if kind == "directory" else 0)):
        return "cannot be read (permission denied)"
    return None


def extract_archive(archive: Path, dest_dir: Path, config_key: str = "datasets.<name>") -> None:
    """Unpack a zip archive safely (no paths escaping `dest_dir`); a corrupt archive is DataFormatError,
    one that cannot be read at all (missing, a directory, a link loop) a SourceUnavailableError."""
    problem = _unusable(archive, "file")
    if problem:
        raise SourceUnavailableError(
            f"the archive {archive} {problem}; set {config_key}.source.archive to the downloaded .zip"
        )
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
            if bad is not None:
                raise DataFormatError(f"{archive}: member {bad} is corrupt (CRC mismatch)")
            root = dest_dir.resolve()
            members = zf.infolist()
            for member in tqdm(members, desc=f"unpack {archive.name}", unit="file", leave=False):
                target = (dest_dir / member.filename).resolve()
                if not target.is_relative_to(root):
                    raise DataFormatError(f"{archive}: member {member.filename} escapes the target directory")
                with output_errors(target):
                    zf.extract(member, dest_dir)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise DataFormatError(f"{archive}: not a readable zip archive ({exc}); re-download it") from exc


def copy_local_dir(source: Path, dest_dir: Path, config_key: str = "datasets.<name>") -> None:
    """Copy a user-provided, already unpacked dataset folder (hard links when on the same file system)."""
    problem = _unusable(source, "directory")
    if problem:
        raise SourceUnavailableError(
            f"local_dir {source} {problem}; set {config_key}.source.local_dir to the unpacked dataset folder"
        )

    def link_or_copy(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    with output_errors(dest_dir):
        shutil.copytree(source, dest_dir, dirs_exist_ok=True, copy_function=link_or_copy)
