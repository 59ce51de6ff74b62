"""The `download` stage: obtain one dataset's original files, verified, under data/raw/<name>/.

IDX datasets (MNIST, Fashion-MNIST) come from, in order: a mirror directory, the system directories
(Debian's dataset-fashion-mnist), then the canonical URLs. Kaggle datasets come from a local folder, a
local archive, or the Kaggle API. The whole output directory is swapped in atomically at the end.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aegan.data.download import Verifier, fetch_verified
from aegan.data.idx import payload_md5
from aegan.data.kaggle_source import copy_local_dir, extract_archive, kaggle_download
from aegan.errors import ChecksumError
from aegan.io import atomic_dir, atomic_write_json, md5_file

MIRROR_ENV = "AEGAN_MIRROR_DIR"


def idx_verifier(name: str, md5: str, raw_md5: str) -> Verifier:
    """Accept the published .gz, or any re-compression of the published payload.

    Distributions re-compress (Debian's files have no name in their gzip header), so the gzip bytes
    differ while the IDX payload is identical; both checksums are the published ones.
    """

    def verify(path: Path) -> None:
        if md5_file(path) == md5:
            return
        actual = payload_md5(path)
        if actual != raw_md5:
            raise ChecksumError(
                f"{path}: checksum mismatch for {name}: payload md5 {actual}, published {raw_md5} "
                f"(gzip md5 published {md5}). The file is corrupt or not the canonical release."
            )

    return verify


def download_idx(cfg: Any, dest: Path, mirror_dir: str | None, progress: bool = True) -> dict[str, str]:
    source = cfg.source
    local_dirs = [mirror_dir, os.environ.get(MIRROR_ENV), *source.get("system_dirs", [])]
    origins = {}
    for key, spec in source.files.items():
        path = fetch_verified(
            spec.name,
            dest,
            local_dirs=local_dirs,
            urls=list(source.urls),
            verify=idx_verifier(spec.name, spec.md5, spec.raw_md5),
            progress=progress,
        )
        origins[key] = str(path.name)
    return origins


def download_kaggle(cfg: Any, dest: Path, config_key: str) -> dict[str, str]:
    source = cfg.source
    if source.get("local_dir"):
        copy_local_dir(Path(source.local_dir).expanduser(), dest, config_key)
        return {"from": f"local_dir {source.local_dir}"}
    if source.get("archive"):
        archive = Path(source.archive).expanduser()
        origin = f"archive {archive}"
    else:
        archive = kaggle_download(source.kaggle, dest / ".download", config_key)
        origin = f"kaggle {source.kaggle}"
    extract_archive(archive, dest, config_key)
    if (dest / ".download").exists():
        import shutil

        shutil.rmtree(dest / ".download")
    return {"from": origin}


def download_dataset(cfg: Any, raw_root: Path, mirror_dir: str | None = None, progress: bool = True) -> Path:
    """Run the download stage for dataset config `cfg` into raw_root/<name>, atomically."""
    dest = raw_root / cfg.name
    with atomic_dir(dest) as tmp:
        if cfg.kind == "idx":
            origins = download_idx(cfg, tmp, mirror_dir, progress)
        else:
            origins = download_kaggle(cfg, tmp, f"datasets.{cfg.name}")
        atomic_write_json(tmp / "SOURCE.json", {"dataset": cfg.name, "files": origins})
    return dest
