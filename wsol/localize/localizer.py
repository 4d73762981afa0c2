"""The :class:`Localizer`: a batch of images in, per-(image, class) maps, cuts and boxes out.

It is the one seam between a model and everything that uses its boxes: ``wsol run``,
the report, ``wsol calibrate``, ``wsol explain`` and the Python API all call it. It is
built once from the model, the method, the class mapping, the target policy, the box
parameters and the precision, and never sees a config object.

Per batch: normalize the uint8 images on the device, one forward pass, choose the
target classes from the logits (:mod:`wsol.cams.targets`), compute their maps, then
the device stage (:mod:`wsol.localize.maps`) and the per-map host stage
(:mod:`wsol.localize.components`).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence

import numpy as np
import torch

from wsol.cams import CamMethod, build_method
from wsol.cams.hooks import frozen_model
from wsol.cams.targets import ClassMapping, pad_labels, select_dataset_targets
from wsol.data.loader import letterbox, resize
from wsol.errors import UsageError
from wsol.localize.components import detect
from wsol.localize.cut import device_levels
from wsol.localize.device_boxes import detect_largest
from wsol.localize.labelling import has_cupy
from wsol.localize.maps import (
    MAP_OK,
    MAP_REASONS,
    device_maps,
    localize_size,
    smooth_maps,
)
from wsol.localize.params import (
    DEFAULT_BOXES,
    DEFAULT_TARGETS,
    DEVICE_BOXES,
    PRECISIONS,
    BoxParams,
    TargetPolicy,
    choice,
)
from wsol.localize.results import (
    ClassResult,
    Detections,
    ImageResult,
    MapBatch,
    SweepLevels,
    found_detections,
)
from wsol.localize.to_host import HostCopies
from wsol.localize.views import Views, fuse_maps, scaled, view_input
from wsol.models import ModelSpec
from wsol.models.spec import channels_last, model_input


class Localizer:
    """Maps and boxes for batches of images.

    Args:
        model: the classifier (its network is used where it is: put it on the device
            first, e.g. with :func:`wsol.load_model`).
        method: a name from :data:`wsol.cams.METHODS` or a built method.
        mapping: dataset classes -> model classes; default the model's own classes.
        targets: which classes get a map (:class:`TargetPolicy`, or its mode's name).
        boxes: how maps become boxes (:class:`BoxParams`).
        layer: the target layer for the method (default: the model's).
        views: scales and flips whose maps are fused (:class:`~wsol.localize.views.Views`;
            default one view at the model's input size).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast.
        keep_raw_maps: also return each method map before upsampling (``raw_map``).
        device_boxes: where the largest component's box is found: ``auto`` (on a CUDA
            device with CuPy), ``on`` or ``off``.

    Returns:
        A localizer: call it on a batch (:meth:`__call__`), or on arrays of any sizes
        (:meth:`localize_arrays`), for one :class:`ImageResult` per image.

    Raises:
        UsageError: an unknown method, precision or ``device_boxes``, or class
            thresholds that do not match the classes.
        CamError: a method that cannot work on this model or layer.

    Example:
        >>> from wsol.data.synthetic import render
        >>> from wsol.models import load_model
        >>> localizer = Localizer(load_model("shapes_net"), "gradcam", targets="topk")
        >>> shot = render(seed=0, split="test", index=3)  # one cross at (57, 66, 95, 104)
        >>> (result,) = localizer.localize_arrays([shot.image[..., ::-1].copy()])  # RGB
        >>> [localizer.classes[c.dataset_class] for c in result.classes]
        ['cross']
        >>> result.classes[0].detections.boxes.round()  # xyxy in the image's pixels
        array([[ 54.,  58., 104., 108.]])
    """

    def __init__(
        self,
        model: ModelSpec,
        method: str | CamMethod = "gradcam",
        *,
        mapping: ClassMapping | None = None,
        targets: TargetPolicy | str = DEFAULT_TARGETS,
        boxes: BoxParams = DEFAULT_BOXES,
        layer: str | None = None,
        views: Views | None = None,
        precision: str = "fp32",
        keep_raw_maps: bool = False,
        device_boxes: str = "auto",
    ):
        choice("precision", precision, PRECISIONS)
        self.model = model
        self.method = (
            method if isinstance(method, CamMethod) else build_method(method, model, layer)
        )
        self.targets = TargetPolicy(targets) if isinstance(targets, str) else targets
        self.boxes = boxes
        self.views = views or Views()
        self.precision = precision
        self.keep_raw_maps = keep_raw_maps
        choice("device_boxes", device_boxes, DEVICE_BOXES)
        self.device = next(model.net.parameters(), torch.empty(0)).device
        self.mapping = (mapping or ClassMapping.identity(model)).to(self.device)
        # Boxes found on the device: the largest component only (one box per map), on
        # CUDA where CuPy labels components; "on" forces it (scipy labels on a CPU).
        self.boxes_on_device = boxes.components == "largest" and (
            device_boxes == "on"
            or (device_boxes == "auto" and self.device.type == "cuda" and has_cupy())
        )
        self._channels_last = channels_last(model.net)
        self._mean = torch.tensor(model.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(model.std, device=self.device).view(1, 3, 1, 1)
        self._taus = None
        if boxes.class_thresholds is not None:
            if len(boxes.class_thresholds) != len(self.classes):
                raise UsageError(
                    f"{len(boxes.class_thresholds)} class thresholds for "
                    f"{len(self.classes)} classes"
                )
            self._taus = torch.as_tensor(
                boxes.class_thresholds, dtype=torch.float64, device=self.device
            )

    def with_targets(self, targets: TargetPolicy, keep_raw_maps: bool | None = None) -> Localizer:
        """This localizer with other target classes (and raw maps kept or not): the same
        model, method, mapping, views, boxes and precision, so the same maps and boxes
        for the same classes. ``wsol explain`` asks a run's localizer for its classes."""
        other = copy.copy(self)
        other.targets = targets
        if keep_raw_maps is not None:
            other.keep_raw_maps = keep_raw_maps
        return other

    @property
    def classes(self) -> list[str]:
        """The (dataset) class names that results index."""
        return self.mapping.names

    @property
    def input_size(self) -> tuple[int, int]:
        """The size images are fed at: the model's, at the largest view scale."""
        return self.views.input_size(self.model.input_size)

    @property
    def letterbox_fill(self) -> tuple[int, int, int]:
        """The model's mean colour, for padding letterboxed inputs."""
        return tuple(round(255 * m) for m in self.model.mean)

    def __call__(
        self,
        images: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        labels: Sequence[np.ndarray] | None = None,
        regions: Sequence[tuple[float, float]] | None = None,
    ) -> list[ImageResult]:
        """Localize a batch.

        Args:
            images: ``uint8 [B, 3, H, W]`` at :attr:`input_size` (any device).
            sizes: each image's original ``(height, width)``; boxes come in those pixels.
            labels: each image's ground-truth class indices (needed for ``gt`` targets).
            regions: for letterboxed inputs, the ``(fy, fx)`` top-left fraction of the
                input that holds each image.

        Returns:
            One :class:`ImageResult` per image: the class probabilities and, per target
            class, its normalized map, cut and boxes.
        """
        return self.boxes_for(self.maps(images, sizes, labels, regions))

    def maps(
        self,
        images: torch.Tensor,
        sizes: Sequence[tuple[int, int]],
        labels: Sequence[np.ndarray] | None = None,
        regions: Sequence[tuple[float, float]] | None = None,
        keep_maps: bool = True,
        sweep: np.ndarray | None = None,
    ) -> MapBatch:
        """The device stage of :meth:`__call__` (same arguments): forward passes, targets,
        maps, upsampling, normalization and cuts, boxes when they are found on the device,
        then copies to the host that it does not wait for. What is left
        (:meth:`boxes_for`, which waits for them) is per-image host work, which a run
        overlaps with the next batch's device stage.

        Without ``keep_maps``, when boxes are found on the device, the normalized maps
        never leave it (``ClassResult.norm_map`` is None). ``sweep``: ascending
        thresholds ``[T]`` for which each map's levels are made on the device and sent
        instead (``ClassResult.sweep``; a MaxBoxAcc sweep reads those, not the map)."""
        if len(sizes) != len(images):
            raise ValueError(f"{len(images)} images but {len(sizes)} sizes")
        x = self.normalize(images)
        gt = None
        if self.targets.mode == "gt":
            if labels is None:
                raise UsageError("targets=gt needs the images' labels")
            gt = pad_labels(list(labels), self.device)
        views = self.views.all(self.model.input_size)
        autocast = PRECISIONS[self.precision]
        own_view = (scaled(self.model.input_size, 1.0), False)
        own = None  # the logits at the model's own input size: see class_logits
        if views[0] != own_view:
            own = self.class_logits(view_input(x, *own_view))
        with self.method.forward(view_input(x, *views[0]), autocast) as fp:
            logits = own if own is not None else fp.logits.detach().float()
            probs = self.mapping.dataset_probs(self.model.probabilities(logits))
            chosen = select_dataset_targets(
                self.targets.mode,
                probs,
                gt,
                self.targets.topk,
                self.targets.min_prob,
                self.mapping.dataset_logits(logits),
            )
            model_targets = self.mapping.model_targets(logits, chosen)
            maps = fp.maps(model_targets)
        if len(views) > 1:  # the same classes in every other view, then one fused map
            every = [maps]
            for size, mirrored in views[1:]:
                with self.method.forward(
                    view_input(x, size, mirrored), PRECISIONS[self.precision]
                ) as fp:
                    every.append(fp.maps(model_targets))
            maps = fuse_maps(every, [m for _, m in views], self.views.fuse)
        return self._to_host(
            maps, chosen, model_targets, probs, list(sizes), regions, keep_maps, sweep
        )

    def class_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The logits ``[B, C]`` (fp32) of the model's input ``x`` by a plain forward pass
        (eval mode, no gradient, the run's precision).

        The class probabilities (which classes get a map, ``min_prob``, and the box
        scores) always come from the model's own input size, unmirrored: an ImageNet
        softmax at twice its size spreads its mass, and the recommended 2x configs gave
        box scores about ten times lower than the 1x ones (0.001-0.03 on coco128
        photos), so that one ``export.min_score`` could not serve both. Where the views
        do not start with that one, this extra pass gives it."""
        dtype = PRECISIONS[self.precision]
        cast = torch.autocast(x.device.type, dtype=dtype) if dtype else contextlib.nullcontext()
        with frozen_model(self.model.net), torch.no_grad(), cast:
            return self.model.net(x).float()

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8 [B, 3, H, W]`` -> the model's float input on the device, in the
        memory format of the model's convolutions (channels-last when they are)."""
        x = model_input(images.to(self.device, non_blocking=True), self._mean, self._std)
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def prepare(self, pixels: np.ndarray) -> tuple[torch.Tensor, tuple[float, float]]:
        """An RGB ``uint8 [H, W, 3]`` array as the model's ``uint8 [3, h, w]`` input (as the
        run's loader makes it), and the ``(fy, fx)`` part of it the image covers."""
        if self.model.resize == "letterbox":
            pixels, region = letterbox(pixels, self.input_size, self.letterbox_fill)
        else:
            pixels, region = resize(pixels, self.input_size), (1.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1), region

    def localize_arrays(
        self, images: Sequence[np.ndarray], labels: Sequence[np.ndarray] | None = None
    ) -> list[ImageResult]:
        """Localize RGB ``uint8 [H, W, 3]`` arrays of any sizes."""
        inputs, regions = zip(*(self.prepare(p) for p in images), strict=True)
        return self(torch.stack(inputs), [im.shape[:2] for im in images], labels, regions)

    def _to_host(
        self,
        maps: torch.Tensor,
        chosen: torch.Tensor,
        model_targets: torch.Tensor,
        probs: torch.Tensor,
        sizes: list[tuple[int, int]],
        regions: Sequence[tuple[float, float]] | None,
        keep_maps: bool,
        sweep: np.ndarray | None,
    ) -> MapBatch:
        """Maps ``[B, K, h, w]`` of dataset classes ``chosen [B, K]`` (model classes
        ``model_targets [B, K]``) -> upsampled, normalized and cut on canvases, boxed
        there if boxes are found on the device, and on their way to the host."""
        p = self.boxes
        if self._taus is not None:  # calibrated: an absolute cut per dataset class
            mode, tau = "absolute", self._taus[chosen.clamp(min=0)]
        else:
            mode, tau = p.threshold_mode, p.threshold
        loc_sizes = [localize_size(s, p.max_side) for s in sizes]
        canvases = device_maps(
            smooth_maps(maps, p.smooth),
            loc_sizes,
            mode,
            tau,
            list(regions) if regions is not None else None,
        )
        if sweep is not None:
            sweep = np.asarray(sweep, np.float64)
            if len(sweep) > 1 and not bool(np.all(np.diff(sweep) > 0)):
                raise ValueError("sweep thresholds must ascend strictly")
        class_probs = probs.gather(1, chosen.clamp(min=0))  # [B, K]
        send: dict[str, torch.Tensor | None] = {
            "chosen": chosen,
            "model_targets": model_targets,
            "probs": probs,
            "raw": maps if self.keep_raw_maps else None,
        }
        to_host = keep_maps or not self.boxes_on_device
        for c, cv in enumerate(canvases):
            boxes = scores = empty = None
            if self.boxes_on_device:
                idx = torch.as_tensor(cv.index, device=class_probs.device)
                boxes, scores, empty = detect_largest(cv.norm, cv.cuts, class_probs[idx], p.score)
            send |= {
                f"norm{c}": cv.norm if to_host else None,
                f"levels{c}": device_levels(cv.norm, sweep) if sweep is not None else None,
                f"cuts{c}": cv.cuts,
                f"problems{c}": cv.problems,
                f"boxes{c}": boxes,
                f"scores{c}": scores,
                f"empty{c}": empty,
            }
        return MapBatch(
            sizes,
            loc_sizes,
            HostCopies(send),
            [(cv.index, cv.sizes) for cv in canvases],
            sweep,
            self.boxes_on_device,
        )

    def boxes_for(self, batch: MapBatch, map_fn=map) -> list[ImageResult]:
        """The host stage: each image's components and boxes, from :meth:`maps`.
        ``map_fn`` runs the per-image step over the images in order (e.g. a thread
        pool's ``map``: cv2 releases the GIL); the results do not depend on it. Waits for
        the batch's copies from the device first."""
        batch.wait()
        if batch.found is not None:  # boxes came from the device: only records are left
            map_fn = map
        return list(map_fn(lambda i: self._image_boxes(batch, i), range(len(batch.sizes))))

    def _image_boxes(self, batch: MapBatch, i: int) -> ImageResult:
        p, pm = self.boxes, batch.prepared[i]
        (h, w), (lh, lw) = batch.sizes[i], batch.loc_sizes[i]
        scale = (w / lw, h / lh)
        res = ImageResult(size=(int(h), int(w)), probs=batch.probs[i])
        for j in np.flatnonzero(batch.chosen[i] >= 0):
            d, cut = int(batch.chosen[i, j]), float(pm.cuts[j])
            prob = float(batch.probs[i, d])
            extra = {
                "raw_map": batch.raw[i, j] if batch.raw is not None else None,
                "model_class": int(batch.model_targets[i, j]),
            }
            if pm.problems[j] != MAP_OK:
                det = Detections.empty(MAP_REASONS[int(pm.problems[j])])
                res.classes.append(ClassResult(d, prob, det, None, cut, scale, **extra))
                continue
            if pm.levels is not None:
                extra["sweep"] = SweepLevels(pm.levels[j], batch.sweep)
            if batch.found is not None:
                det = found_detections(*batch.found[i], j)
            else:
                det = detect(
                    pm.norm[j], cut, prob, p.components, p.min_area, p.score, p.merge, p.nms_iou
                )
            if scale != (1.0, 1.0):
                det = det.scaled(*scale)
            norm = pm.norm[j] if pm.norm is not None else None
            res.classes.append(ClassResult(d, prob, det, norm, cut, scale, **extra))
        return res
