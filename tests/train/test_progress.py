"""``wsol train`` says what it does from the start, trains in channels-last memory, and
stops cleanly when asked (Ctrl-C): after the batch it is in, saving that point."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from tests.helpers import REPO
from tests.train.test_loop import TINY_ARGS, _same, _weights, tiny
from wsol.cli import main
from wsol.cli.stopping import STOPPING, StopRequest
from wsol.models.spec import channels_last
from wsol.train import loop, train


def test_the_step_and_validation_run_channels_last_and_progress_comes_first(tmp_path, monkeypatch):
    seen: list[tuple[bool, bool, bool]] = []  # (training, net channels-last, input too)
    build = loop.build_classifier

    def watched(*a, **k):
        spec = build(*a, **k)
        spec.net.register_forward_pre_hook(
            lambda net, args: seen.append(
                (
                    net.training,
                    channels_last(net),
                    args[0].is_contiguous(memory_format=torch.channels_last),
                )
            )
        )
        return spec

    monkeypatch.setattr(loop, "build_classifier", watched)
    events = []
    train(tiny(tmp_path, **{"train.epochs": 1}), lambda e, d, t, i: events.append((e, i)))
    assert {s[0] for s in seen} == {True, False}  # training steps and validation
    assert all(s[1] and s[2] for s in seen), seen
    kinds = [e for e, _ in events]
    first_step = kinds.index("train")
    assert kinds[0] == "status"  # before the data is read
    said = [i["line"] for e, i in events[:first_step] if e == "status"]
    assert said[0].startswith("reading the shapes images")
    assert any("loading shapes_net" in line for line in said)
    assert any(
        line.startswith("training shapes_net on cpu: 1 epochs of 3 batches") for line in said
    )


def test_stop_request_asks_once_in_the_batches_and_interrupts_otherwise():
    said = []
    stop = StopRequest(said.append)
    with pytest.raises(KeyboardInterrupt):  # before the first batch: nothing to save
        stop.handle()
    assert not stop.requested and not stop()
    stop.handle()  # polled: in the batches
    assert stop.requested and stop() and said == [STOPPING]
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C: at once
        stop.handle()


@pytest.mark.parametrize("after", [2, 3])  # mid-epoch; at an epoch's end (3 steps each)
def test_a_stopped_run_saves_where_it_was_and_resumes_to_the_same_weights(tmp_path, after):
    def recorder(events: list, rng: dict):
        """Progress that keeps the events and, after each step, the generator's state
        (dropout would draw from it: a resume must go on with the same)."""

        def progress(event, done, total, info):
            events.append((event, done, info))
            if event == "train":
                rng[done] = torch.get_rng_state()

        return progress

    straight_rng: dict = {}
    straight = train(tiny(tmp_path / "straight"), recorder([], straight_rng))
    steps = []
    stopped = train(
        tiny(tmp_path / "stopped"),
        lambda e, d, t, i: e == "train" and steps.append(d),
        stop=lambda: bool(steps) and steps[-1] >= after,
    )
    assert stopped.stopped and steps == list(range(1, after + 1))
    batch = after % 3
    assert stopped.stopped_at == {"epoch": 1, "batch": batch, "steps_per_epoch": 3}
    saved = torch.load(tmp_path / "stopped" / "last.pt", map_location="cpu", weights_only=True)
    assert saved["scheduler"]["step"] == after and saved["epoch"] == after // 3
    events: list = []
    resumed_rng: dict = {}
    resumed = train(tiny(tmp_path / "stopped"), recorder(events, resumed_rng))
    assert not resumed.stopped
    assert ("resume", after // 3, {"batch": batch}) in events
    assert [d for e, d, _ in events if e == "train"] == list(range(after + 1, 7))
    for step, state in resumed_rng.items():
        assert torch.equal(state, straight_rng[step]), step
    for name in ("model.pt", "last.pt"):
        assert _same(_weights(straight.out_dir / name), _weights(tmp_path / "stopped" / name))
    timing = ("seconds", "train_img_per_s")
    rows = [
        [{k: v for k, v in r.items() if k not in timing} for r in m["epochs"]]
        for m in (straight.metrics, resumed.metrics)
    ]
    assert rows[0] == rows[1]


def test_ctrl_c_in_wsol_train_says_stopping_saves_and_the_same_command_resumes(
    tmp_path, monkeypatch, capsys
):
    """A real SIGINT to this process while the CLI trains: it prints at once that it
    stops after the batch, saves there, exits 130 saying how to resume, and the same
    command then finishes."""
    polls = []
    poll = StopRequest.__call__

    def poll_and_press_ctrl_c(self):
        polls.append(1)
        if len(polls) == 2:  # after the second batch
            os.kill(os.getpid(), signal.SIGINT)
        return poll(self)

    monkeypatch.setattr(StopRequest, "__call__", poll_and_press_ctrl_c)
    argv = ["train", "configs/demo_train.yaml", *TINY_ARGS, f"out={tmp_path}"]
    monkeypatch.chdir(REPO)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert STOPPING in err and "stopped after batch 2 of 3 of epoch 1" in err
    assert "wsol train configs/demo_train.yaml" in err  # how to resume
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "resuming: 0 of 2 epochs and 2 batches of the next already trained" in err
