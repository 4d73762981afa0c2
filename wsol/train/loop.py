"""The training loop: epochs of augmented batches, a validation pass, a checkpoint.

Everything an epoch draws is a function of the config's seed: the image order of epoch
``e`` comes from ``(seed, e)`` and each image's augmentation from ``(seed, e, index)``.
The model, optimizer, step and RNG states are saved after every epoch, so a run killed
at any point and started again with the same command redoes at most one epoch and ends
with the same weights as a run that was never interrupted (bit for bit on a CPU with
the same thread count). A run asked to stop (``stop()`` true, e.g. after Ctrl-C) stops
after the batch it is in and saves that point in the epoch too, so its resume goes on
from there, to the same weights.

The network and its input batches are in channels-last memory, and the torch, decoding
and cv2 threads are planned as ``wsol run`` plans them (:mod:`wsol.run.stages`): on a
CPU, convolutions in the default layout are several times slower.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wsol.config import dump_config
from wsol.data import DataError
from wsol.data.loader import start_batches
from wsol.errors import UsageError
from wsol.fileio import (
    LOCK_FILE,
    FolderBusyError,
    FolderLock,
    atomic_write_json,
    atomic_write_text,
    fault_point,
)
from wsol.models.build import build_classifier
from wsol.models.spec import model_input, resolve_device
from wsol.run.stages import plan_threads, single_threaded_cv2, use_threads
from wsol.schema import ConfigError, config_to_dict
from wsol.train import state as st
from wsol.train.augment import training_transform
from wsol.train.batches import ImageBatches, make_loader
from wsol.train.metrics import classification_report
from wsol.train.optim import (
    autocast_dtype,
    class_weights,
    freeze_batch_norms,
    is_multi_label,
    lr_factor,
    make_loss,
    make_optimizer,
    set_lr,
)
from wsol.train.sources import check_learnable, lost_summary, training_images
from wsol.train_config import TrainConfig

logger = logging.getLogger(__name__)

# progress(event, done, total, info): "status" as each phase starts, from the first
# (info: "line", what it is doing), "render <split>" while the shapes are drawn, "train"
# after each step (info: epoch, loss, img_s), "epoch" after each epoch (info: its row of
# train_metrics.json), "resume" once (done: epochs already trained; info: "batch", the
# batches of the next epoch done before a stop), "stopped" when stop() asked (done: the
# step it stopped after; info: epoch, batch, steps_per_epoch).
Progress = Callable[[str, int, int, dict], None]
# stop() -> bool: polled after each batch; true asks the run to stop there and save.
Stop = Callable[[], bool]


@dataclass
class TrainResult:
    """Where the checkpoints are, and what ``train_metrics.json`` holds."""

    out_dir: Path
    metrics: dict
    resumed_epochs: int = 0
    # Where a run asked to stop stopped (epoch, batch: of the epoch, 0 at its end,
    # steps_per_epoch); run it again to resume. None for a run that finished.
    stopped_at: dict | None = None

    @property
    def stopped(self) -> bool:
        return self.stopped_at is not None

    @property
    def checkpoint(self) -> Path:
        return self.out_dir / st.MODEL_FILE


def train(
    cfg: TrainConfig,
    progress: Progress | None = None,
    overwrite: bool = False,
    stop: Stop | None = None,
) -> TrainResult:
    """Fit ``cfg.model.arch`` with a fresh GAP + linear head on the image-level labels
    of ``cfg.data``, writing ``model.pt``, ``last.pt`` and ``train_metrics.json`` to
    ``cfg.out``. A run found there with the same settings is resumed.

    ``progress`` hears what the run does (see ``Progress``), from before the data is
    read. ``stop`` is polled after each batch: once it returns true, the run saves where
    it is in ``last.pt`` and returns with ``stopped`` set; the same call resumes it.

    Raises:
        UsageError: ``out`` holds another run (without ``overwrite``), or a bad setting.
        DataError: the dataset cannot be read or has no labelled images.
        ModelError: the backbone cannot be built or fitted with a head.
    """
    out = Path(cfg.out)
    lock = FolderLock(out)  # refuses a file, or a folder another process is writing
    try:
        lock.acquire()
    except FolderBusyError as e:
        raise UsageError(f"{e}; wait for it to finish or choose another out=") from None
    try:
        with single_threaded_cv2():
            return _train(cfg, out, progress or (lambda *_: None), overwrite, stop)
    except BaseException:
        _take_back(lock)
        raise
    finally:
        lock.release()


def _take_back(lock: FolderLock) -> None:
    """A run refused before it wrote anything leaves no folder behind that it made."""
    lock.release()
    if lock.created_folder and [p.name for p in lock.folder.iterdir()] == [LOCK_FILE]:
        (lock.folder / LOCK_FILE).unlink(missing_ok=True)
        lock.folder.rmdir()


def _status(report: Progress, line: str) -> None:
    report("status", 0, 0, {"line": line})


def _train(
    cfg: TrainConfig, out: Path, report: Progress, overwrite: bool, stop: Stop | None
) -> TrainResult:
    config = config_to_dict(cfg)
    saved = st.prepare_out(out, config, overwrite)
    use_threads(cfg.train.threads)
    device = resolve_device(cfg.model.device)
    amp = autocast_dtype(cfg.train.amp, device)
    workers, _ = plan_threads(device.type, cfg.data.num_workers)
    where = f" in {cfg.data.root}" if cfg.data.root else ""
    _status(report, f"reading the {cfg.data.format} images and labels{where}")
    train_images, val_images = training_images(cfg, lambda what, i, n: report(what, i, n, {}))
    # Images listed but not usable, path -> reason: found before training, then while
    # decoding; each is counted once, however many epochs meet it.
    lost = {**getattr(train_images, "lost", {}), **getattr(val_images, "lost", {})}
    listed = len(train_images) + len(val_images) + len(lost)
    if len(train_images) < cfg.train.batch_size:
        unread = f" ({len(lost)} more could not be read)" if lost else ""
        raise ConfigError(
            f"{len(train_images)} training images{unread}, fewer than train.batch_size="
            f"{cfg.train.batch_size}; lower the batch size"
        )
    check_learnable(train_images)
    multi_label = is_multi_label(cfg.train.labels, train_images.labels)
    _status(
        report,
        f"{len(train_images)} training and {len(val_images)} validation images; loading "
        f"{cfg.model.arch} (weights {cfg.model.weights})",
    )
    torch.manual_seed(cfg.seed)
    spec = build_classifier(
        cfg.model.arch,
        train_images.classes,
        weights=cfg.model.weights,
        multi_label=multi_label,
        dilate_last=cfg.model.dilate_last,
    )
    if cfg.model.input_size:
        spec.input_size = tuple(cfg.model.input_size)
    elif cfg.data.format == "shapes":
        spec.input_size = (cfg.shapes.image_size, cfg.shapes.image_size)
    description = st.describe(spec, cfg.model.arch, cfg.model.dilate_last)
    # Channels-last before the optimizer sees the parameters: its state follows them.
    net = spec.net.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(net, spec.head, cfg.train, cfg.model.freeze_backbone)
    weights = (
        class_weights(train_images.labels, multi_label, cfg.train.max_pos_weight)
        if cfg.train.balance == "auto"
        else None
    )
    loss_fn = make_loss(multi_label, weights, device)
    if weights is not None:
        logger.info(
            "%s weights: %s",
            "positive" if multi_label else "class",
            ", ".join(f"{c} {w:.2f}" for c, w in zip(spec.class_names, weights, strict=True)),
        )
    scaler = torch.amp.GradScaler(device.type, enabled=amp is torch.float16)
    mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, 3, 1, 1)

    size = tuple(spec.input_size)
    train_set = ImageBatches(train_images, size, training_transform(cfg.augment, size), cfg.seed)
    val_loader = make_loader(
        ImageBatches(val_images, size),
        range(len(val_images)),
        cfg.train.batch_size,
        workers,
        False,
    )
    steps_per_epoch = len(train_images) // cfg.train.batch_size
    total = steps_per_epoch * cfg.train.epochs
    metrics = {
        "arch": cfg.model.arch,
        "classes": list(spec.class_names),
        "num_train": len(train_images),
        "num_val": len(val_images),
        "labels": "multi" if multi_label else "single",
        "loss": "bce" if multi_label else "cross_entropy",
        "class_weights": None
        if weights is None
        else {c: float(w) for c, w in zip(spec.class_names, weights, strict=True)},
        "device": str(device),
        "amp": str(amp).replace("torch.", "") if amp else "off",
        "epochs": [],
        "best": None,
        "num_listed": listed,
        "num_failed": 0,
        "failure_reasons": {},
        "failures": [],
    }
    start, step, skip, seen, loss_sum = 0, 0, 0, 0, 0.0
    if saved is not None:
        net.load_state_dict(saved["state_dict"])
        optimizer.load_state_dict(saved["optimizer"])
        scaler.load_state_dict(saved["scaler"])
        st.set_rng_state(saved["rng"])
        start, step = int(saved["epoch"]), int(saved["scheduler"]["step"])
        # A stop mid-epoch saved how far that epoch went, and its running loss.
        skip, seen, loss_sum = (saved.get("partial") or {}).get("at", (0, 0, 0.0))
        metrics.update(epochs=saved["history"], best=saved["best"])
        lost.update(saved.get("lost") or {})
        _record_lost(metrics, lost)
        report("resume", start, cfg.train.epochs, {"batch": skip})
        logger.info("resuming %s after epoch %d of %d", out, start, cfg.train.epochs)
        if not skip:  # a mid-epoch last.pt holds no finished epoch's weights
            _restore_best(out, saved, net, description, cfg.model.save_dtype, config)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / st.CONFIG_FILE, dump_config(cfg))
    frozen_bn = cfg.model.freeze_backbone

    def save_state(epoch: int, partial: dict | None = None) -> None:
        st.save(
            out / st.STATE_FILE,
            {
                **st.model_payload(net, description, "fp32", {}),
                "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict(),
                "epoch": epoch,
                # The schedule is a function of the step (optim.lr_factor): its state.
                "scheduler": {"schedule": cfg.train.schedule, "step": step, "total": total},
                "rng": st.rng_state(),
                "history": metrics["epochs"],
                "best": metrics["best"],
                "failures": metrics["failures"],
                "lost": dict(lost),
                "config": config,
                "partial": partial,
            },
        )

    _status(
        report,
        f"training {cfg.model.arch} on {device}: {cfg.train.epochs} epochs of "
        f"{steps_per_epoch} batches of {cfg.train.batch_size}"
        + (f", from epoch {start + 1}" if start or skip else ""),
    )
    for epoch in range(start, cfg.train.epochs):
        t0 = time.perf_counter()
        net.train()
        if frozen_bn:
            freeze_batch_norms(net, spec.head)
        train_set.epoch = epoch
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train_images))
        first = skip * cfg.train.batch_size  # the batches a stopped run did are not redone
        batches = start_batches(
            make_loader(train_set, order[first:], cfg.train.batch_size, workers, True)
        )
        if skip:  # the loader drew a seed: the generators as they were at the stop
            st.set_rng_state(saved["rng"])
        else:
            seen, loss_sum = 0, 0.0
        seen_before = seen
        for b, batch in enumerate(batches, start=skip):
            fault_point(f"train:epoch{epoch + 1}:step{b + 1}")
            lost.update(batch["failures"])
            if batch["images"] is None:
                continue
            x = model_input(batch["images"].to(device, non_blocking=True), mean, std)
            x = x.contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(train_images.labels[batch["indices"]]).to(device)
            set_lr(optimizer, lr_factor(step, total, steps_per_epoch, cfg.train))
            with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
                logits = net(x)
            loss = loss_fn(logits.float(), y if multi_label else y.argmax(1))
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.train.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.train.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            seen += len(batch["indices"])
            loss_sum += float(loss.detach()) * len(batch["indices"])
            rate = (seen - seen_before) / max(time.perf_counter() - t0, 1e-9)
            report(
                "train", step, total, {"epoch": epoch + 1, "loss": loss_sum / seen, "img_s": rate}
            )
            if stop is not None and stop() and b + 1 < steps_per_epoch:
                _record_lost(metrics, lost)
                save_state(epoch, {"at": (b + 1, seen, loss_sum)})
                info = {"epoch": epoch + 1, "batch": b + 1, "steps_per_epoch": steps_per_epoch}
                report("stopped", step, total, info)
                return TrainResult(out, metrics, start, stopped_at=info)
        skip = 0
        train_seconds = time.perf_counter() - t0
        _status(report, f"epoch {epoch + 1}: validating on {len(val_images)} images")
        val = _validate(net, val_loader, spec, mean, std, amp, device, lost)
        if not seen:  # every file opened, none decoded: nothing to save
            raise DataError(
                f"no training image could be decoded in epoch {epoch + 1}; "
                f"{lost_summary(lost, listed)}"
            )
        row = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "val_map": val["map"],
            "val_ap": val["ap"],
            "val_classes_scored": val["classes_scored"],
            "lr": optimizer.param_groups[0]["lr"],
            "train_img_per_s": (seen - seen_before) / max(train_seconds, 1e-9),
            "seconds": time.perf_counter() - t0,
        }
        metrics["epochs"].append(row)
        _record_lost(metrics, lost)
        best = metrics["best"]
        score = -1.0 if val["map"] is None else val["map"]
        improved = best is None or score > best["score"]
        if improved:
            metrics["best"] = {"epoch": epoch + 1, "val_map": val["map"], "score": score}
        # last.pt first: a kill before model.pt is written leaves what _restore_best needs.
        save_state(epoch + 1)
        if improved:
            _save_best(out, net, description, cfg.model.save_dtype, config, row)
        atomic_write_json(out / st.METRICS_FILE, metrics)
        report("epoch", epoch + 1, cfg.train.epochs, row)
        logger.info(
            "epoch %d/%d: loss %.4f, val mAP %s",
            epoch + 1,
            cfg.train.epochs,
            row["train_loss"],
            "n/a" if val["map"] is None else f"{val['map']:.4f}",
        )
        if stop is not None and stop() and epoch + 1 < cfg.train.epochs:
            info = {"epoch": epoch + 1, "batch": 0, "steps_per_epoch": steps_per_epoch}
            report("stopped", step, total, info)
            return TrainResult(out, metrics, start, stopped_at=info)
    # Also after a run killed between last.pt and train_metrics.json in its last epoch.
    atomic_write_json(out / st.METRICS_FILE, metrics)
    return TrainResult(out, metrics, start)


def _record_lost(metrics: dict, lost: dict[str, str]) -> None:
    """The images lost so far, in ``train_metrics.json``: each as ``"path: reason"``,
    their number, and how many for each reason."""
    reasons: dict[str, int] = {}
    for reason in lost.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    metrics["failures"] = sorted(f"{path}: {reason}" for path, reason in lost.items())
    metrics["num_failed"] = len(lost)
    metrics["failure_reasons"] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _save_best(out: Path, net, description: dict, dtype: str, config: dict, row: dict) -> None:
    extra = {"train_config": config, "train_metrics": dict(row)}
    st.save(out / st.MODEL_FILE, st.model_payload(net, description, dtype, extra))


def _restore_best(out: Path, saved: dict, net, description, dtype: str, config: dict) -> None:
    """Write ``model.pt`` again when a kill came after ``last.pt`` and before it: then
    the best epoch is the one ``last.pt`` holds (``net`` has its weights now)."""
    best = (saved.get("best") or {}).get("epoch")
    if best is None or st.best_epoch_saved(out / st.MODEL_FILE) == best:
        return
    if best != int(saved["epoch"]):
        logger.warning(
            "%s does not hold the best epoch (%d) and last.pt holds epoch %d; it is left as it is",
            out / st.MODEL_FILE,
            best,
            int(saved["epoch"]),
        )
        return
    logger.info("writing %s again from last.pt (epoch %d)", out / st.MODEL_FILE, best)
    _save_best(out, net, description, dtype, config, saved["history"][best - 1])


@torch.no_grad()
def _validate(net, loader, spec, mean, std, amp, device, lost: dict) -> dict:
    net.eval()
    scores, indices = [], []
    for batch in start_batches(loader):
        lost.update(batch["failures"])
        if batch["images"] is None:
            continue
        x = model_input(batch["images"].to(device, non_blocking=True), mean, std)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            logits = net(x)
        scores.append(spec.probabilities(logits.float()).cpu().numpy())
        indices.extend(batch["indices"])
    labels = loader.dataset.images.labels
    if not indices:
        return {"map": None, "ap": dict.fromkeys(spec.class_names), "classes_scored": 0}
    return classification_report(np.concatenate(scores), labels[indices], spec.class_names)
