"""Kaggle datasets: credentials, the API call up to the network boundary, archives and local folders."""

from __future__ import annotations

import zipfile

import pytest

from aegan.data.kaggle_source import extract_archive, kaggle_download
from aegan.data.sources import download_dataset
from aegan.errors import DataFormatError, SourceUnavailableError

KAGGLE_ENV = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR")


@pytest.fixture
def no_credentials(tmp_path, monkeypatch):
    for var in KAGGLE_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))


def test_missing_credentials_list_every_option(no_credentials, tmp_path):
    with pytest.raises(SourceUnavailableError) as err:
        kaggle_download("joosthazelzet/lego-brick-images", tmp_path / "dl", "datasets.lego")
    message = str(err.value)
    assert "no Kaggle credentials" in message
    assert "KAGGLE_API_TOKEN" in message and "datasets.lego.source.archive" in message
    assert "datasets.lego.source.local_dir" in message


def test_with_credentials_the_api_call_reaches_the_network_and_fails_clearly(no_credentials, tmp_path, monkeypatch):
    # Legacy key credentials authenticate locally; the download itself then needs kaggle.com, which is
    # unreachable here (and made certainly so by a proxy on a closed loopback port).
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "0" * 32)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(SourceUnavailableError, match="could not download 'jessicali9530/celeba-dataset'"):
        kaggle_download("jessicali9530/celeba-dataset", tmp_path / "dl", "datasets.celeba")


def test_archive_source_unpacks_images(params, tmp_path, lego_folder):
    archive = tmp_path / "lego.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in lego_folder.rglob("*.png"):
            zf.write(path, f"dataset/{path.name}")
    cfg = params.datasets.lego.copy()
    cfg.source.archive = str(archive)
    dest = download_dataset(cfg, tmp_path / "raw")
    assert len(list((dest / "dataset").glob("*.png"))) == len(list(lego_folder.rglob("*.png")))


def test_corrupt_archive_is_a_clear_error_and_leaves_nothing(params, tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 this is not a zip")
    cfg = params.datasets.celeba.copy()
    cfg.source.archive = str(archive)
    with pytest.raises(DataFormatError, match="not a readable zip archive"):
        download_dataset(cfg, tmp_path / "raw")
    assert not (tmp_path / "raw" / "celeba").exists()


def test_archive_members_cannot_escape(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../../escaped.txt", "x")
    with pytest.raises(DataFormatError, match="escapes"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()


def test_local_dir_source(params, tmp_path, lego_folder):
    cfg = params.datasets.lego.copy()
    cfg.source.local_dir = str(lego_folder)
    dest = download_dataset(cfg, tmp_path / "raw")
    assert (dest / "SOURCE.json").exists()
    assert len(list(dest.rglob("*.png"))) == len(list(lego_folder.rglob("*.png")))


def test_missing_local_dir(params, tmp_path):
    cfg = params.datasets.lego.copy()
    cfg.source.local_dir = str(tmp_path / "nowhere")
    with pytest.raises(SourceUnavailableError, match="does not exist"):
        download_dataset(cfg, tmp_path / "raw")
