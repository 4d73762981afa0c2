"""``wsol explain``: why did the model say *cat*? Maps, boxes and pictures for one image.

:func:`explain` runs a :class:`~wsol.localize.Localizer` on one picture and returns an
:class:`Explanation`: the model's top predictions, and for each explained class its
normalized map, boxes and scores. ``Explanation.save`` draws the overlay (heatmap
blended on the image, boxes, class name and score). With ``guided_gradcam`` it also
keeps the two pictures of Selvaraju et al. (2017, fig. 1): guided backpropagation and
Guided Grad-CAM, as RGB gradients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from wsol.apps.recommended import setup_for
from wsol.cams import GuidedBackprop, GuidedGradCAM, build_method
from wsol.cams.targets import ClassMapping
from wsol.data.decode import decode_image
from wsol.errors import UsageError, did_you_mean
from wsol.localize import BoxParams, ImageResult, Localizer, TargetPolicy, Views
from wsol.models import ModelSpec
from wsol.models.class_maps import load_class_map
from wsol.report.overlay import OVERLAY_SIDE, overlay, save_png

GUIDED_PICTURES = ("guided_backprop", "guided_gradcam")


def gradient_picture(grad: np.ndarray) -> np.ndarray:
    """An input gradient ``[3, H, W]`` as an RGB ``uint8 [H, W, 3]`` picture: centred,
    scaled to unit standard deviation, then ``0.5 + 0.1 x`` (the convention of the
    guided backprop and Grad-CAM papers' figures)."""
    g = grad.transpose(1, 2, 0).astype(np.float64)
    g = (g - g.mean()) / (g.std() + 1e-5)
    return ((0.5 + 0.1 * g).clip(0, 1) * 255).round().astype(np.uint8)


@dataclass
class Explanation:
    """One image explained.

    Attributes:
        image: the picture, RGB ``uint8 [H, W, 3]``; boxes are in its pixels.
        path: where it came from (None for an array).
        method: the method's name.
        classes: every class name the probabilities index.
        probs: class probabilities ``[D]``.
        result: the Localizer's result (maps, cuts, boxes per explained class).
        pictures: extra pictures per explained class, ``{kind: [RGB per class]}``
            (``guided_backprop`` and ``guided_gradcam`` for that method).

    Args:
        The attributes above; :func:`explain` builds it.

    Returns:
        Through its properties: the explained classes (:attr:`targets`), the boxes
        (:attr:`boxes`, :attr:`labels`, :attr:`scores`), the maps (:attr:`maps`) and the
        most probable classes (:meth:`top`); :meth:`save` writes the overlay.

    Raises:
        UsageError: from :meth:`save`, when no class was explained or ``target`` was not.

    Example:
        >>> from wsol.data.synthetic import render
        >>> from wsol.models import load_model
        >>> shot = render(seed=0, split="test", index=3)  # one cross
        >>> exp = explain(load_model("shapes_net"), shot.image[..., ::-1].copy())
        >>> exp.targets, exp.labels, exp.boxes.shape
        (['cross'], ['cross'], (1, 4))
    """

    image: np.ndarray
    path: str | None
    method: str
    classes: list[str]
    probs: np.ndarray
    result: ImageResult
    pictures: dict[str, list[np.ndarray]] = field(default_factory=dict)

    @property
    def targets(self) -> list[str]:
        """The explained classes, in order."""
        return [self.classes[c.dataset_class] for c in self.result.classes]

    @property
    def boxes(self) -> np.ndarray:
        """All boxes ``[N, 4]``, xyxy in image pixels, explained class by class."""
        parts = [c.detections.boxes for c in self.result.classes]
        return np.concatenate(parts).reshape(-1, 4) if parts else np.zeros((0, 4))

    @property
    def scores(self) -> np.ndarray:
        """The score ``[N]`` of each box (map mean inside x class probability)."""
        parts = [c.detections.scores for c in self.result.classes]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def labels(self) -> list[str]:
        """The class name of each box."""
        return [
            self.classes[c.dataset_class]
            for c in self.result.classes
            for _ in range(len(c.detections.boxes))
        ]

    @property
    def maps(self) -> dict[str, np.ndarray | None]:
        """Each explained class's normalized map ``[h, w]`` in ``[0, 1]`` (at the image
        size, or scaled down to ``max_side``), None where the map was unusable."""
        return {self.classes[c.dataset_class]: c.norm_map for c in self.result.classes}

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes with their probabilities."""
        order = np.argsort(-self.probs, kind="stable")[:k]
        return [(self.classes[i], float(self.probs[i])) for i in order]

    def overlay(self, index: int = 0) -> np.ndarray:
        """The overlay picture of the ``index``-th explained class (RGB ``uint8``)."""
        c = self.result.classes[index]
        name = self.classes[c.dataset_class]
        score = f" {c.detections.scores[0]:.2f}" if len(c.detections.scores) else " (no box)"
        heat = c.norm_map
        pixels = self.image
        if heat is not None and heat.shape != pixels.shape[:2]:
            heat = cv2.resize(heat, (pixels.shape[1], pixels.shape[0]))
        return overlay(
            pixels, heat, c.detections.boxes, np.zeros((0, 4)), f"{name} p={c.prob:.2f} box{score}"
        )

    def save(self, path: str | Path, target: str | int | None = None) -> Path:
        """Write the overlay as PNG: of one explained class (by name or index), or of
        all of them side by side."""
        if not self.result.classes:
            raise UsageError("nothing was explained: no class was chosen for this image")
        if target is None:
            panels = [self.overlay(i) for i in range(len(self.result.classes))]
            picture = np.concatenate(panels, axis=1) if len(panels) > 1 else panels[0]
        else:
            picture = self.overlay(self._index(target))
        save_png(path, picture)
        return Path(path)

    def _index(self, target: str | int) -> int:
        if isinstance(target, int):
            return target
        names = self.targets
        if target not in names:
            raise UsageError(f"{target!r} was not explained; explained: {', '.join(names)}")
        return names.index(target)


def _mapping(model: ModelSpec, class_map: str | dict | None) -> ClassMapping:
    if class_map is None:
        return ClassMapping.identity(model)
    groups = (
        load_class_map(class_map, list(model.class_names))
        if isinstance(class_map, str)
        else {k: list(v) for k, v in class_map.items()}
    )
    return ClassMapping.build(list(groups), model, groups)


def _picture_size(shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = shape[:2]
    s = min(1.0, 2 * OVERLAY_SIDE / max(h, w))
    return max(1, round(w * s)), max(1, round(h * s))


def explain(
    model: ModelSpec | Localizer,
    image: str | Path | np.ndarray,
    method: str | None = None,
    *,
    topk: int = 1,
    classes: list[str] | None = None,
    class_map: str | dict | None = None,
    layer: str | None = None,
    boxes: BoxParams | None = None,
    views: Views | None = None,
    precision: str = "fp32",
) -> Explanation:
    """Explain the model's decision on one image.

    Unset, the method, views and cut are the recommended configs'
    (:mod:`wsol.apps.recommended`): for EfficientNet-Lite2 with its ImageNet weights
    (``wsol.load_model()`` where they are installed), HiResCAM at twice the input size
    and an absolute cut of 0.19, as ``configs/voc.yaml``; for any other model,
    Grad-CAM at the input size and Otsu's cut, as ``configs/voc_lite0.yaml``.

    Args:
        model: from :func:`wsol.load_model` (or any :class:`~wsol.models.ModelSpec`);
            or a built :class:`~wsol.localize.Localizer` (``wsol explain --config``
            takes a run config's), whose method, mapping, views, boxes and precision are
            used as they are: the boxes are the ones a run with it gives. Then
            ``method``, ``class_map``, ``layer``, ``boxes`` and ``views`` stay unset.
        image: a file path, or an RGB ``uint8 [H, W, 3]`` array.
        method: a name from :data:`wsol.cams.METHODS` (default: the recommended one).
        topk: explain the ``topk`` most probable classes (when ``classes`` is None).
        classes: explain these class names instead.
        class_map: explain in another label set: a built-in map
            (``imagenet_to_voc``, ``imagenet_to_coco``), a YAML file, or a dict
            ``{name: [model class, ...]}``.
        layer: the target layer (default: the model's).
        boxes: how the maps become boxes (default: the recommended cut; Otsu's for a
            method other than the recommended one).
        views: the scales and flips whose maps are fused (default: the recommended).
        precision: ``fp32``, or ``bf16`` / ``fp16`` autocast.

    Returns:
        The :class:`Explanation`: probabilities, and per explained class its map, cut
        and boxes in the image's pixels.

    Raises:
        UsageError: an image array that is not RGB ``uint8``, an unknown class or
            method, or settings given with a Localizer; ``DecodeError`` for a file that
            cannot be read as an image.

    Example:
        >>> import numpy as np
        >>> from wsol.models import load_model
        >>> model = load_model("shapes_net")
        >>> image = np.zeros((128, 128, 3), np.uint8)
        >>> exp = explain(model, image, "gradcampp", classes=["ring", "star"])
        >>> exp.targets, len(exp.top(3))
        (['ring', 'star'], 3)
    """
    if isinstance(model, Localizer):
        given = {"method": method, "class_map": class_map, "layer": layer, "boxes": boxes}
        given["views"] = views
        named = [k for k, v in given.items() if v is not None]
        if named:
            raise UsageError(f"a Localizer brings its own settings; leave {', '.join(named)} unset")
        base, name = model, model.method.name
    else:
        setup = setup_for(model, method)
        base = Localizer(
            model,
            build_method(setup.method, model, layer),
            mapping=_mapping(model, class_map),
            boxes=boxes or setup.boxes,
            views=views or setup.views,
            precision=precision,
        )
        name = setup.method
    mapping = base.mapping
    labels = None
    if classes:
        unknown = [c for c in classes if c not in mapping.names]
        if unknown:
            raise UsageError(
                f"unknown class {unknown[0]!r}{did_you_mean(unknown[0], mapping.names)}; the "
                f"classes are {', '.join(mapping.names[:8])}, ... ({len(mapping.names)})"
            )
        policy = TargetPolicy("gt")
        labels = [np.array([mapping.names.index(c) for c in classes], np.int64)]
    else:
        policy = TargetPolicy("topk", topk=topk)
    localizer = base.with_targets(policy, keep_raw_maps=True)
    pixels, small, path = _read(image, max(localizer.input_size))
    x, region = localizer.prepare(small)
    (result,) = localizer(x[None], [pixels.shape[:2]], labels, [region])
    out = Explanation(pixels, path, name, mapping.names, result.probs, result)
    if isinstance(localizer.method, GuidedGradCAM) and result.classes:
        out.pictures = _guided_pictures(localizer, localizer.method, pixels, result)
    return out


def _read(
    image: str | Path | np.ndarray, max_side: int
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """The picture to draw on, the pixels the model's input is made of (a large JPEG
    decoded at reduced scale, as a run's loader decodes it, so the boxes are a run's),
    and the path."""
    if isinstance(image, str | Path):
        pixels, _ = decode_image(image)
        small, _ = decode_image(image, max_side)
        return pixels, small, str(image)
    pixels = np.ascontiguousarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise UsageError(
            f"image arrays must be RGB uint8 [H, W, 3], got {pixels.dtype} {pixels.shape}"
        )
    return pixels, pixels, None


def _guided_pictures(
    localizer: Localizer, cam: GuidedGradCAM, pixels: np.ndarray, result: ImageResult
) -> dict[str, list[np.ndarray]]:
    """Guided backprop and Guided Grad-CAM as RGB pictures, per explained class (at the
    model's input resolution, resized to the image's aspect)."""
    x = localizer.normalize(localizer.prepare(pixels)[0][None])
    targets = torch.tensor([[c.model_class for c in result.classes]], device=x.device)
    guided = GuidedBackprop(localizer.model).attributions(x, targets).maps[0]
    product = cam.attributions(x, targets).maps[0]
    size = _picture_size(pixels.shape)
    return {
        name: [cv2.resize(gradient_picture(g.cpu().numpy()), size) for g in maps]
        for name, maps in zip(GUIDED_PICTURES, (guided, product), strict=True)
    }


def write_explanation(exp: Explanation, out_dir: str | Path, stem: str) -> list[Path]:
    """Per explained class ``k``: ``<stem>_<k>_<class>.png`` (overlay),
    ``<stem>_<k>_<class>.npy`` (the method's map before upsampling, float32) and, for
    ``guided_gradcam``, ``..._guided_backprop.png`` and ``..._guided_gradcam.png``."""
    out_dir = Path(out_dir)
    written = []
    for k, c in enumerate(exp.result.classes):
        base = out_dir / f"{stem}_{k + 1}_{_safe(exp.classes[c.dataset_class])}"
        written.append(exp.save(base.with_suffix(".png"), k))
        if c.raw_map is not None:
            np.save(base.with_suffix(".npy"), c.raw_map.astype(np.float32))
            written.append(base.with_suffix(".npy"))
        for kind, pictures in exp.pictures.items():
            path = Path(f"{base}_{kind}.png")
            save_png(path, pictures[k])
            written.append(path)
    return written


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
