"""A LightningDataModule that serves prepared tensors from memory, a whole batch per indexing op.

No Dataset/DataLoader per-item Python overhead: each batch is one `tensor[index]` gather. On a GPU the
whole split is moved to the device once, so batches never cross the host-device boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import lightning as L
import torch

from aegan.data.prepare import read_manifest, read_split
from aegan.errors import ConfigError

Batch = dict[str, torch.Tensor]

# Names of the tensors of a prepared split inside a batch (`inputs`: the input images of a translation task).
BATCH_KEYS = {"images": "image", "inputs": "input", "labels": "label", "attributes": "attributes"}


class TensorBatches:
    """Iterable of batches, each a dict of named tensors (`{"image", "label"}`, `{"a", "b"}`, ...) cut from
    in-memory tensors of one length; reshuffled per epoch by seed+epoch. Floating tensors come out float32.

    With `shard=(rank, world_size)` (DDP) each process takes every world_size-th item of the epoch's
    order, all shards cut to the same length so every rank runs the same number of steps (as
    Lightning's DistributedSampler does with drop_last; the cut items differ from epoch to epoch).
    `unpaired` keys (the domain-a images of an unpaired task) are shuffled in an order of their own, so that
    an image meets another partner of the other domain every epoch, as CycleGAN's unaligned loader draws them.
    """

    def __init__(
        self,
        tensors: Batch,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        epoch: Callable[[], int] = lambda: 0,
        drop_last: bool = False,
        shard: tuple[int, int] = (0, 1),
        unpaired: tuple[str, ...] = (),
    ) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"the tensors of a batch must have one length, got {sorted(lengths)}")
        self.tensors, self.length = tensors, lengths.pop()
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, epoch
        self.drop_last, self.shard, self.unpaired = drop_last, shard, unpaired

    def _size(self) -> int:
        return self.length // self.shard[1]

    def __len__(self) -> int:
        n = self._size()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def items_per_epoch(self) -> int:
        return self._size()

    def _order(self, stream: int = 0) -> torch.Tensor | None:
        rank, world = self.shard
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch() + 1_000_003 * stream)
            order = torch.randperm(self.length, generator=generator)
        elif world > 1:
            order = torch.arange(self.length)
        else:
            return None
        return order[rank::world][: self._size()].to(next(iter(self.tensors.values())).device)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order()
        own_order = self._order(stream=1) if self.unpaired and self.shuffle else order
        for i in range(len(self)):
            index, own_index = self._index(order, i), self._index(own_order, i)
            yield {key: _float32(t[own_index if key in self.unpaired else index]) for key, t in self.tensors.items()}

    def _index(self, order: torch.Tensor | None, i: int) -> slice | torch.Tensor:
        window = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return window if order is None else order[window]


def _float32(t: torch.Tensor) -> torch.Tensor:
    return t.float() if t.is_floating_point() else t


class PreparedDataModule(L.LightningDataModule):
    """Serves data/prepared/<name>/{train,val,test}.pt.

    exclude_class drops one label from train and val (not test): the anomaly-detection protocol.
    steps_per_execution: training batches hold that many mini-batches of batch_size, consecutive in
    the epoch's shuffled order; the module takes one optimiser step per mini-batch (models/base.py).
    """

    def __init__(
        self,
        prepared_dir: Path | str,
        batch_size: int,
        seed: int = 0,
        to_device: bool = True,
        exclude_class: int | None = None,
        steps_per_execution: int = 1,
    ) -> None:
        super().__init__()
        self.prepared_dir = Path(prepared_dir)
        self.batch_size, self.seed, self.to_device = batch_size, seed, to_device
        self.steps_per_execution = steps_per_execution
        self.exclude_class = exclude_class
        self.manifest = read_manifest(self.prepared_dir)
        # an unpaired task's inputs are a domain of their own (data/tasks.py): drawn apart from its images
        self.unpaired = ("input",) if self.manifest.get("pairing") == "unpaired" else ()
        self.splits: dict[str, Batch] = {}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["splits"]["train"]["shape"][1:])  # type: ignore[return-value]

    def load_split(self, name: str) -> Batch:
        """The split's tensors under their batch names (BATCH_KEYS), on the training device."""
        if name not in self.splits:
            data = read_split(self.prepared_dir, name)
            tensors = {BATCH_KEYS.get(key, key): t for key, t in data.items() if isinstance(t, torch.Tensor)}
            if self.exclude_class is not None and name != "test":
                if "label" not in tensors:
                    raise ConfigError(f"{self.prepared_dir}: exclude_class needs class labels, this dataset has none")
                keep = tensors["label"] != self.exclude_class
                tensors = {key: t[keep] for key, t in tensors.items()}
            device = self._device()
            self.splits[name] = {key: t.to(device) for key, t in tensors.items()}
        return self.splits[name]

    def _device(self) -> torch.device:
        if self.to_device and self.trainer is not None:
            return self.trainer.strategy.root_device
        return torch.device("cpu")

    def setup(self, stage: str | None = None) -> None:
        names = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",)}.get(stage or "", ())
        for name in names:
            self.load_split(name)

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def batches(self, name: str, shuffle: bool = False, batch_size: int | None = None) -> TensorBatches:
        trainer = self.trainer
        return TensorBatches(
            self.load_split(name),
            batch_size or self.batch_size,
            shuffle=shuffle,
            seed=self.seed,
            epoch=self._epoch,
            shard=(trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1),
            unpaired=self.unpaired,
        )

    def train_dataloader(self) -> TensorBatches:
        return self.batches("train", shuffle=True, batch_size=self.batch_size * self.steps_per_execution)

    def val_dataloader(self) -> TensorBatches:
        return self.batches("val")

    def test_dataloader(self) -> TensorBatches:
        return self.batches("test")
