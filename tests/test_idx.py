import gzip

import numpy as np
import pytest
from conftest import idx_bytes

from aegan.data.idx import parse_idx, payload_md5, read_idx
from aegan.errors import DataFormatError


def test_reads_the_real_mnist_test_split(mnist_dir):
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert np.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert payload_md5(mnist_dir / "t10k-images-idx3-ubyte.gz") == "2646ac647ad5339dbf082846283269ea"


def test_round_trip_of_generated_idx():
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(idx_bytes(array)), array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "too short"),
        (b"\x12\x34\x08\x01" + b"\x00" * 8, "wrong IDX magic"),
        (b"\x00\x00\x42\x01" + b"\x00" * 8, "wrong IDX magic"),
        (b"\x00\x00\x08\x03\x00\x00", "too short"),
        (idx_bytes(np.zeros((4, 5, 5), np.uint8))[:-7], "truncated or corrupt"),
        (idx_bytes(np.zeros((4, 5, 5), np.uint8)) + b"x", "truncated or corrupt"),
        (b"\x00\x00\x08\x03" + b"\xff" * 12, "implausible shape"),
    ],
)
def test_malformed_idx_is_a_clear_error(data, message):
    with pytest.raises(DataFormatError, match=message):
        parse_idx(data, "bad.idx")


def test_truncated_gzip_is_a_clear_error(tmp_path, mnist_dir):
    whole = (mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    bad = tmp_path / "labels.gz"
    bad.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataFormatError, match="corrupt or truncated gzip"):
        read_idx(bad)


def test_gzip_of_wrong_payload_is_caught_by_the_header(tmp_path):
    bad = tmp_path / "images.gz"
    bad.write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DataFormatError, match="magic"):
        read_idx(bad)
