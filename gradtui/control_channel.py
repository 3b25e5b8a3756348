"""The control channel: live remedies sent from `gradtui watch` to a training process.

Beside a record ``run.jsonl`` written by :func:`gradtui.torch.watch`, the training process
creates ``run.jsonl.control``, a plain file readable and writable by its owner only (mode
0600; nothing listens on a network port). The viewer appends one JSON object per line,
``{"command": "lr", "factor": 0.5, "sent": 1712345678.1}``; the training process reads new
lines between optimizer steps, applies them and records each as a ``change`` event in the
record. The record's header names the file (``"control": "run.jsonl.control"``, relative to
the record's directory). :data:`COMMANDS` is the one list of commands and their keys.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".control"


@dataclass(frozen=True)
class Command:
    """One live remedy: the line's ``command`` (and ``factor``), the key that sends it, help text."""

    name: str
    key: str  # the key's label in the interface
    does: str
    factor: float | None = None


COMMANDS: tuple[Command, ...] = (
    Command("pause", "space", "Pause the training process between two steps, or resume it."),
    Command("lr", "+", "Double the learning rate of every parameter group of the optimizer.", 2.0),
    Command("lr", "-", "Halve the learning rate of every parameter group of the optimizer.", 0.5),
    Command("clip", "c", "Gradient clipping on/off: torch.nn.utils.clip_grad_norm_(params, max_norm) before each optimizer.step()."),
    Command("skip_nonfinite", "x", "Skip non-finite steps on/off: a step whose gradient has NaN or Inf is not applied (weights unchanged)."),
)
BY_KEY = {c.key: c for c in COMMANDS}


class ControlError(OSError):
    """The control file cannot be used; the message says why."""


def control_path(record_path) -> Path:
    return Path(str(record_path) + SUFFIX)


class ControlReader:
    """The training side: creates the file (0600) and reads the commands appended to it."""

    def __init__(self, path):
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # whatever the umask or an older file's mode
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._partial = b""

    def read(self) -> list[dict]:
        """The commands appended since the last call (malformed lines are skipped)."""
        if self._file is None:
            return []
        data = self._file.read()
        if not data:
            return []
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        out = []
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("command"), str):
                out.append(obj)
        return out

    def close(self, remove: bool = True) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            if remove:
                try:
                    self.path.unlink()
                except OSError:
                    pass


class ControlSender:
    """The viewer side: appends commands to an existing control file that belongs to this user
    and no one else can read or write (ControlError otherwise)."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            st = os.stat(self.path)
        except OSError as err:
            raise ControlError(f"no control file at {self.path} ({err.strerror}): the training process has not started it or has ended") from None
        if st.st_uid != os.getuid():
            raise ControlError(f"the control file {self.path} belongs to another user; only its owner may send commands")
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO) or not stat.S_ISREG(st.st_mode):
            raise ControlError(f"the control file {self.path} is open to other users (mode {stat.filemode(st.st_mode)}); it must be -rw------- (0600)")

    def send(self, key: str) -> Command:
        """Send the command bound to ``key``; returns it."""
        command = BY_KEY[key]
        obj = {"command": command.name, "sent": round(time.time(), 3)}
        if command.factor is not None:
            obj["factor"] = command.factor
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (json.dumps(obj) + "\n").encode())
        finally:
            os.close(fd)
        return command
