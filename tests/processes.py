"""``wsol`` commands in processes forked from one warm process (a test helper).

A fresh ``python -m wsol`` spends seconds importing torch, cv2 and numba before any
work, and tests that start dozens of processes (a kill at every write, two runs racing
for one folder) paid that for each. :class:`WsolProcesses` starts one Python process
that imports wsol once, without running any torch operation, and forks a child per
command. Each child is a process of its own (its own pid and file locks, killed for
real by SIGKILL at a fault point) that runs ``wsol.cli.main(args)`` with the
environment and folder asked for, and exits as ``python -m wsol args`` would: the
command's exit status, 1 with the traceback for an unexpected error, ``-signal`` when
killed. What a process reads from its environment at import (``CUDA_VISIBLE_DEVICES``,
``PYTHONPATH``) is the warm process's; what wsol reads while it runs (``WSOL_FAULT``,
``RANK``) is the command's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.helpers import REPO

# The warm process: reads one request a line ({"commands": [...], "timeout": s}) and
# answers one line, the outcome of each command. The children of a request are forked
# together, so that they start at the same moment.
_SERVER = r"""
import json, os, signal, sys, tempfile, time, traceback

import torch, cv2  # noqa: F401  (what every command imports, imported once)
import wsol.cli, wsol.cli.commands, wsol.cli.tools, wsol.fileio
import wsol.run.pipeline, wsol.run.calibration, wsol.run.distributed, wsol.train.loop
from wsol.localize.components import prepare_sweep

prepare_sweep().join()  # numba's compiled sweep, inherited by every child


def child(cmd, out, err):
    os.environ.clear()
    os.environ.update(cmd["env"])
    os.chdir(cmd["cwd"])
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(os.open(out, os.O_WRONLY), 1)
    os.dup2(os.open(err, os.O_WRONLY), 2)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    wsol.fileio._reached.clear()  # the fault points this process passed: none yet
    sys.argv = ["wsol", *cmd["args"]]
    code = 1
    try:
        code = wsol.cli.main(cmd["args"])
    except SystemExit as e:  # argparse: --help, usage errors
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve(request):
    files, pids = [], []
    for cmd in request["commands"]:
        paths = []
        for kind in ("out", "err"):
            fd, path = tempfile.mkstemp(prefix=f"wsol-{kind}-")
            os.close(fd)
            paths.append(path)
        out, err = paths
        files.append((out, err))
        pid = os.fork()
        if pid == 0:
            child(cmd, out, err)
        pids.append(pid)
    deadline = time.monotonic() + request["timeout"]
    status = {}
    while len(status) < len(pids):
        for pid in pids:
            if pid not in status:
                done, st = os.waitpid(pid, os.WNOHANG)
                if done:
                    status[pid] = os.waitstatus_to_exitcode(st)
        if time.monotonic() > deadline:
            for pid in set(pids) - set(status):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                status[pid] = None  # timed out
        time.sleep(0.01)
    answers = []
    for pid, (out, err) in zip(pids, files):
        texts = []
        for path in (out, err):
            with open(path, errors="replace") as f:
                texts.append(f.read())
            os.unlink(path)
        answers.append({"returncode": status[pid], "stdout": texts[0], "stderr": texts[1]})
    return answers


print("ready", flush=True)
for line in sys.stdin:
    print(json.dumps(serve(json.loads(line))), flush=True)
"""


class WsolProcesses:
    """Forks ``wsol`` commands from one warm process (see the module's docstring)."""

    def __init__(self, env: Mapping[str, str] | None = None):
        env = dict(os.environ if env is None else env)
        env["PYTHONPATH"] = str(REPO)
        env.pop("WSOL_FAULT", None)
        env.pop("WSOL_FAULT_TRACE", None)
        self.env = env
        self._server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=REPO,
            text=True,
        )
        ready = self._server.stdout.readline()
        if ready.strip() != "ready":
            raise RuntimeError(f"the warm wsol process did not start: {ready!r}")

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess:
        """``python -m wsol *args`` in a forked child; its outcome, as
        :func:`subprocess.run` with ``capture_output=True, text=True`` gives it.

        Raises:
            subprocess.TimeoutExpired: the command ran past ``timeout`` (it was killed).
        """
        (done,) = self.run_together([args], env=env, cwd=cwd, timeout=timeout)
        return done

    def run_together(
        self,
        commands: Sequence[Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        timeout: float = 300,
    ) -> list[subprocess.CompletedProcess]:
        """Several commands, forked at the same moment and run side by side."""
        env = dict(self.env if env is None else env)
        request = {
            "commands": [
                {"args": list(map(str, a)), "env": env, "cwd": str(cwd or REPO)} for a in commands
            ],
            "timeout": timeout,
        }
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        answer = self._server.stdout.readline()
        if not answer:
            raise RuntimeError("the warm wsol process died")
        results = []
        for args, a in zip(commands, json.loads(answer), strict=True):
            argv = ["wsol", *map(str, args)]
            if a["returncode"] is None:
                raise subprocess.TimeoutExpired(argv, timeout, a["stdout"], a["stderr"])
            results.append(
                subprocess.CompletedProcess(argv, a["returncode"], a["stdout"], a["stderr"])
            )
        return results

    def close(self) -> None:
        self._server.stdin.close()
        self._server.wait(timeout=60)
