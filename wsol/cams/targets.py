"""Which classes get a map: dataset classes, model classes, and the map between them.

A dataset class ``d`` corresponds to a set of model classes ``S_d`` (one, by name, when
the model was trained on the dataset's classes; several through a class map, e.g. the
118 ImageNet dog breeds for VOC's ``dog``). One rule combines them: ``d`` stands for its
best model class in that image,

- its probability is ``max_{m in S_d} p_m``, for softmax and sigmoid models alike, and
- its map is the map of that same ``m`` (the highest probability is the highest logit).

The probability ranks the classes (``topk``), is compared with ``min_prob`` (``prob``)
and scales the box scores. It is not the sum over ``S_d``: a sum favours classes that
map to many model classes, whose many small probabilities add up on any image. On the
128 coco128 photos, pseudo-labelled with EfficientNet-Lite0 and ``imagenet_to_voc``, the
sum made ``dog`` the top class of 69 images (9 show a dog) and the top class was one of
the image's classes for 29.7% of them; with the maximum, 22 and 35.9%.
"""

from __future__ import annotations

import torch

from wsol.errors import WsolError, guesses, unknown_choice
from wsol.models import ModelSpec

TARGET_MODES = ("gt", "topk", "prob")


class TargetError(WsolError, ValueError):
    """Dataset classes that cannot be related to the model's."""


class ClassMapping:
    """Dataset classes ``D`` -> model classes ``C`` as a boolean matrix ``[D, C]``.

    ``names`` are the ``D`` dataset class names (``class_0 ...`` when not given).
    """

    def __init__(
        self,
        groups: list[list[int]],
        num_model_classes: int,
        multi_label: bool,
        names: list[str] | None = None,
    ):
        self.matrix = torch.zeros(len(groups), num_model_classes, dtype=torch.bool)
        for d, members in enumerate(groups):
            self.matrix[d, members] = True
        # the same as flat lists: model class members[i] belongs to dataset class owner[i]
        self.members = torch.tensor([c for g in groups for c in g], dtype=torch.long)
        self.owner = torch.tensor([d for d, g in enumerate(groups) for _ in g], dtype=torch.long)
        self.multi_label = multi_label
        self.names = (
            list(names) if names is not None else [f"class_{d}" for d in range(len(groups))]
        )

    @classmethod
    def identity(cls, spec: ModelSpec) -> ClassMapping:
        """The model's own classes, one to one."""
        n = len(spec.class_names)
        return cls([[c] for c in range(n)], n, spec.multi_label, spec.class_names)

    @classmethod
    def build(
        cls,
        dataset_classes: list[str],
        spec: ModelSpec,
        class_map: dict[str, list[int]] | None = None,
    ) -> ClassMapping:
        """By ``class_map`` if given, else by matching names with the model's classes."""
        n = len(spec.class_names)
        if class_map is not None:
            missing = [c for c in dataset_classes if c not in class_map]
            if missing:
                raise TargetError(
                    f"dataset classes {missing} are absent from model.class_map; add them, "
                    "list the classes to use in data.classes, or set model.skip_unmapped=true "
                    f"to leave them out{guesses(missing, class_map)}"
                )
            return cls(
                [class_map[c] for c in dataset_classes], n, spec.multi_label, dataset_classes
            )
        index = {name: i for i, name in enumerate(spec.class_names)}
        missing = [c for c in dataset_classes if c not in index]
        if missing:
            raise TargetError(
                f"dataset classes {missing[:5]}{'...' if len(missing) > 5 else ''} are not "
                "classes of the model; set model.class_map (e.g. imagenet_to_voc, "
                f"imagenet_to_coco or a YAML file of class -> model indices)"
                f"{guesses(missing, spec.class_names)}"
            )
        return cls([[index[c]] for c in dataset_classes], n, spec.multi_label, dataset_classes)

    def to(self, device: torch.device) -> ClassMapping:
        self.matrix = self.matrix.to(device)
        self.members, self.owner = self.members.to(device), self.owner.to(device)
        return self

    def dataset_probs(self, model_probs: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` model probabilities -> ``[B, D]`` dataset-class probabilities: each
        class's largest mapped probability (see the module docstring for why not the sum)."""
        return self._largest_member(model_probs, 0.0)

    def dataset_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` logits -> ``[B, D]``: each dataset class's largest mapped logit
        (``-inf`` for a class with no member). It ranks a class as its probability does,
        and still tells classes apart where probabilities saturate (two sigmoids at 1.0
        in float32)."""
        return self._largest_member(logits.float(), float("-inf"))

    def _largest_member(self, values: torch.Tensor, empty: float) -> torch.Tensor:
        dev = values.device
        members, owner = self.members.to(dev), self.owner.to(dev)
        out = values.new_full((len(values), len(self.names)), empty)  # no member
        return out.scatter_reduce_(
            1,
            owner.expand(len(values), -1),
            values[:, members],
            reduce="amax",
            include_self=False,
        )

    def model_targets(self, logits: torch.Tensor, dataset_targets: torch.Tensor) -> torch.Tensor:
        """For dataset classes ``[B, K]`` (``-1`` pads), the mapped model class with the
        highest logit, ``[B, K]``."""
        m = self.matrix.to(logits.device)
        sel = m[dataset_targets.clamp(min=0)]  # [B, K, C]
        masked = torch.where(sel, logits[:, None, :], torch.full((), -torch.inf).to(logits))
        best = masked.argmax(dim=2)
        return torch.where(dataset_targets >= 0, best, torch.full_like(best, -1))


def pad_labels(labels: list, device: torch.device | None = None) -> torch.Tensor:
    """Ragged per-image class lists -> ``[B, K]`` long, padded with ``-1``."""
    k = max((len(x) for x in labels), default=0)
    out = torch.full((len(labels), k), -1, dtype=torch.long)
    for i, x in enumerate(labels):
        if len(x):
            out[i, : len(x)] = torch.as_tensor(x, dtype=torch.long)
    return out.to(device) if device is not None else out


def select_dataset_targets(
    mode: str,
    dataset_probs: torch.Tensor,
    gt: torch.Tensor | None,
    topk: int = 1,
    min_prob: float = 0.5,
    tiebreak: torch.Tensor | None = None,
) -> torch.Tensor:
    """Dataset classes to map per image, ``[B, K]`` with ``-1`` pads.

    Args:
        mode: ``gt`` (the ground-truth labels), ``topk`` (the ``topk`` most probable) or
            ``prob`` (every class with probability ``>= min_prob``).
        dataset_probs: ``[B, D]`` class probabilities.
        gt: ``[B, K]`` ground-truth classes (``-1`` pads), for ``gt``.
        tiebreak: ``[B, D]`` ranks classes of equal probability (e.g.
            :meth:`ClassMapping.dataset_logits`), the higher first; then the lower class.
            The order is the same on every device (``topk`` breaks ties as each device's
            kernel happens to: CPU and CUDA disagree on saturated probabilities).
    """
    if mode == "gt":
        if gt is None:
            raise TargetError("cam.targets=gt needs image labels; use topk or prob")
        return gt
    if mode == "topk":
        k = min(topk, dataset_probs.shape[1])
        order = torch.arange(dataset_probs.shape[1], device=dataset_probs.device)
        order = order.expand_as(dataset_probs)
        if tiebreak is not None:  # stable sorts: the last key sorted is the first key
            order = tiebreak.sort(dim=1, descending=True, stable=True).indices
        keys = dataset_probs.gather(1, order)
        again = keys.sort(dim=1, descending=True, stable=True).indices
        return order.gather(1, again[:, :k])
    if mode == "prob":
        keep = dataset_probs >= min_prob
        k = int(keep.sum(1).max()) if keep.numel() else 0
        order = torch.sort(keep.to(torch.int8), dim=1, descending=True, stable=True).indices[:, :k]
        return torch.where(keep.gather(1, order), order, torch.full_like(order, -1))
    raise TargetError(unknown_choice("cam.targets", mode, TARGET_MODES))
