import pytest
import torch

from aegan.data.datamodule import TensorBatches


class Pairs:
    """(image, label) pairs out of the dict batches, re-iterable like the loader itself."""

    def __init__(self, batches: TensorBatches) -> None:
        self.batches = batches

    def __iter__(self):
        return ((b["image"], b["label"]) for b in self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def make(n=10, bs=4, **kw):
    images = torch.arange(n, dtype=torch.float16).view(n, 1, 1, 1)
    return Pairs(TensorBatches({"image": images, "label": torch.arange(n)}, bs, **kw))


def test_batches_cover_every_item_once_and_cast_to_float32():
    batches = list(make(shuffle=True, seed=3))
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    assert all(x.dtype == torch.float32 for x, _ in batches)
    seen = torch.cat([y for _, y in batches]).sort().values
    assert torch.equal(seen, torch.arange(10))
    # images and targets stay aligned
    assert all(torch.equal(x.view(-1).long(), y) for x, y in batches)


def test_shuffle_is_seeded_per_epoch():
    epoch = {"n": 0}
    loader = make(shuffle=True, seed=7, epoch=lambda: epoch["n"])
    first = torch.cat([y for _, y in loader])
    again = torch.cat([y for _, y in loader])
    epoch["n"] = 1
    second = torch.cat([y for _, y in loader])
    assert torch.equal(first, again)  # same epoch -> same order (a resumed run sees the same batches)
    assert not torch.equal(first, second)


def test_drop_last_and_unshuffled_order():
    assert len(make(drop_last=True, shuffle=False)) == 2
    assert torch.equal(torch.cat([y for _, y in make(shuffle=False)]), torch.arange(10))


def test_every_named_tensor_is_cut_alike_and_lengths_must_agree():
    a = torch.arange(12, dtype=torch.float32).view(12, 1, 1, 1)
    batches = list(TensorBatches({"a": a, "b": -a, "label": torch.arange(12)}, 5, shuffle=True, seed=2))
    assert [sorted(b) for b in batches] == [["a", "b", "label"]] * 3
    assert all(torch.equal(b["a"], -b["b"]) and torch.equal(b["a"].view(-1).long(), b["label"]) for b in batches)
    with pytest.raises(ValueError, match="one length"):
        TensorBatches({"a": a, "b": a[:5]}, 4, shuffle=False)


def test_unpaired_keys_meet_new_partners_every_epoch_and_keep_their_items():
    a = torch.arange(64, dtype=torch.float32).view(64, 1, 1, 1)
    epoch = {"n": 0}
    batches = TensorBatches(
        {"input": a, "image": -a, "label": torch.arange(64)},
        8,
        shuffle=True,
        seed=2,
        epoch=lambda: epoch["n"],
        unpaired=("input",),
    )
    partners = []
    for n in range(2):
        epoch["n"] = n
        epoch_batches = list(batches)
        inputs = torch.cat([b["input"] for b in epoch_batches]).view(-1)
        images = torch.cat([b["image"] for b in epoch_batches]).view(-1)
        assert sorted(inputs.tolist()) == sorted(a.view(-1).tolist())  # every domain-a image once per epoch
        assert all(torch.equal(-b["image"].view(-1).long(), b["label"]) for b in epoch_batches)  # images keep labels
        partners.append(dict(zip(inputs.tolist(), images.tolist(), strict=True)))
        assert sum(partners[-1][i] == -i for i in partners[-1]) < 8  # not the prepared alignment
    assert sum(partners[0][i] != partners[1][i] for i in partners[0]) > 48  # other partners next epoch
    unshuffled = next(iter(TensorBatches({"input": a, "image": -a}, 8, shuffle=False, unpaired=("input",))))
    assert torch.equal(unshuffled["input"], -unshuffled["image"])  # evaluation keeps the prepared order
