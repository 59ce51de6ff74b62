"""Downloads against a real HTTP server on loopback: resume, checksums, interruption, fallbacks."""

from __future__ import annotations

import hashlib
import http.server
import threading
from typing import ClassVar

import pytest

from aegan.data.download import fetch_verified, md5_verifier
from aegan.data.sources import download_dataset, idx_verifier
from aegan.errors import ChecksumError, DownloadError

PAYLOAD = bytes(range(256)) * 400  # 100 KiB


class _Handler(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    cut_first: ClassVar[set[str]] = set()  # paths whose first GET is cut off half-way
    requests: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        self.requests.append((name, self.headers.get("Range")))
        if name not in self.files:
            self.send_error(404)
            return
        data = self.files[name]
        start = 0
        if rng := self.headers.get("Range"):
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if name in self.cut_first:
            self.cut_first.discard(name)
            self.wfile.write(data[start : start + len(data) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(data[start:])


@pytest.fixture
def server():
    _Handler.files, _Handler.cut_first, _Handler.requests = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield _Handler, f"http://127.0.0.1:{httpd.server_address[1]}/files/"
    httpd.shutdown()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_downloads_and_verifies(server, tmp_path):
    handler, url = server
    handler.files["a.bin"] = PAYLOAD
    path = fetch_verified(
        "a.bin", tmp_path, local_dirs=[], urls=[url], verify=md5_verifier(md5(PAYLOAD)), progress=False
    )
    assert path.read_bytes() == PAYLOAD
    assert not (tmp_path / "a.bin.part").exists()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    handler, url = server
    handler.files["a.bin"] = PAYLOAD
    handler.cut_first.add("a.bin")
    path = fetch_verified(
        "a.bin", tmp_path, local_dirs=[], urls=[url], verify=md5_verifier(md5(PAYLOAD)), progress=False
    )
    assert path.read_bytes() == PAYLOAD
    ranges = [r for name, r in handler.requests if name == "a.bin"]
    assert ranges[0] is None and ranges[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_checksum_mismatch_leaves_no_file_and_tries_the_next_mirror(server, tmp_path):
    handler, url = server
    handler.files["a.bin"] = PAYLOAD[:-1] + b"!"
    with pytest.raises(DownloadError) as err:
        fetch_verified(
            "a.bin",
            tmp_path,
            local_dirs=[],
            urls=[url, url.replace("/files/", "/other/")],
            verify=md5_verifier(md5(PAYLOAD)),
            progress=False,
        )
    message = str(err.value)
    assert "does not match the published" in message and "/other/a.bin" in message
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "a.bin.part").exists()


def test_unreachable_urls_give_one_error_listing_every_source(tmp_path):
    with pytest.raises(DownloadError) as err:
        fetch_verified(
            "a.bin",
            tmp_path / "out",
            local_dirs=[tmp_path / "mirror"],
            urls=["http://127.0.0.1:9/"],
            verify=md5_verifier("0" * 32),
            retries=0,
            progress=False,
        )
    message = str(err.value)
    assert "mirror/a.bin: not found" in message and "127.0.0.1:9/a.bin" in message
    assert "AEGAN_MIRROR_DIR" in message


def test_mirror_dir_wins_and_a_bad_mirror_copy_is_skipped(tmp_path, server):
    handler, url = server
    handler.files["a.bin"] = PAYLOAD
    bad, good = tmp_path / "bad", tmp_path / "good"
    bad.mkdir()
    good.mkdir()
    (bad / "a.bin").write_bytes(b"corrupt")
    (good / "a.bin").write_bytes(PAYLOAD)
    fetch_verified(
        "a.bin", tmp_path / "out", local_dirs=[bad, good], urls=[url], verify=md5_verifier(md5(PAYLOAD)), progress=False
    )
    assert handler.requests == []  # never went to the network


def test_debian_recompressed_fashion_mnist_passes_by_payload_checksum(params, fashion_dir):
    spec = params.datasets.fashion_mnist.source.files.test_labels
    verify = idx_verifier(spec.name, spec.md5, spec.raw_md5)
    verify(fashion_dir / spec.name)  # gzip md5 differs from the published one; the payload matches
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        idx_verifier(spec.name, spec.md5, "0" * 32)(fashion_dir / spec.name)


def test_download_stage_for_fashion_mnist_from_the_system_dir(params, fashion_dir, tmp_path):
    dest = download_dataset(params.datasets.fashion_mnist, tmp_path, progress=False)
    assert sorted(p.name for p in dest.iterdir()) == [
        "SOURCE.json",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["fashion_mnist"]  # no temp dirs left behind


def test_failed_download_stage_keeps_the_previous_output(params, mnist_dir, tmp_path, monkeypatch):
    """MNIST's training files are not available offline: the stage fails and leaves no partial output."""
    cfg = params.datasets.mnist.copy()
    cfg.source.urls = ["http://127.0.0.1:9/"]
    previous = tmp_path / "mnist"
    previous.mkdir()
    (previous / "marker").write_text("old output")
    with pytest.raises(DownloadError, match=r"train-images-idx3-ubyte\.gz"):
        download_dataset(cfg, tmp_path, mirror_dir=str(mnist_dir), progress=False)
    assert (previous / "marker").read_text() == "old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]


def test_interrupted_idx_download_never_leaves_a_final_name(server, tmp_path, mnist_dir):
    """A download cut off for good (every try) leaves only the .part file, which a later run resumes."""
    handler, url = server
    data = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    handler.files["t10k-labels-idx1-ubyte.gz"] = data
    verify = idx_verifier("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", "x")
    handler.cut_first.add("t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DownloadError):
        fetch_verified("t10k-labels-idx1-ubyte.gz", tmp_path, local_dirs=[], urls=[url], verify=verify, retries=0)
    assert not (tmp_path / "t10k-labels-idx1-ubyte.gz").exists()
    assert (tmp_path / "t10k-labels-idx1-ubyte.gz.part").stat().st_size == len(data) // 2
    path = fetch_verified("t10k-labels-idx1-ubyte.gz", tmp_path, local_dirs=[], urls=[url], verify=verify)
    assert path.read_bytes() == data
