"""Batches for training and validation: augmented or resized ``uint8`` images, with the
images that could not be read reported, as ``(path, reason)``, rather than raised."""

from __future__ import annotations

import numpy as np
import torch

from wsol.data.decode import DecodeError
from wsol.errors import plain_reason
from wsol.train.augment import augment, sample_seed, validation_transform
from wsol.train.sources import Images


class ImageBatches(torch.utils.data.Dataset):
    """Augmented (training) or resized (validation) ``uint8 [3, H, W]`` images."""

    def __init__(self, images: Images, size: tuple[int, int], transform=None, seed: int = 0):
        self.images, self.size, self.transform, self.seed = images, size, transform, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        side = max(self.size)
        try:
            pixels = self.images.image(i, max_side=2 * side if self.transform else side)
        except DecodeError as e:
            return {"index": i, "failure": (self.images.name(i), plain_reason(str(e)))}
        if self.transform is None:
            pixels = validation_transform(pixels, self.size)
        else:
            pixels = augment(self.transform, pixels, sample_seed(self.seed, self.epoch, i))
        x = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)
        return {"index": i, "image": x}


def collate(items: list[dict]) -> dict:
    ok = [it for it in items if "image" in it]
    return {
        "images": torch.stack([it["image"] for it in ok]) if ok else None,
        "indices": [it["index"] for it in ok],
        "failures": [it["failure"] for it in items if "failure" in it],
    }


def make_loader(dataset, order, batch_size, workers, drop_last):
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order),
        num_workers=workers,
        collate_fn=collate,
        drop_last=drop_last,
    )
