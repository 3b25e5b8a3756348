"""The one interface between a viewer and whatever produces steps.

A :class:`Source` publishes :class:`~gradtui.monitor.Snapshot` objects (``snapshot()``,
polled at the frame rate) and declares in :class:`Capabilities` what it can do: whether
it takes config changes (``controllable``) and which of the interface's commands apply.
The interface reads nothing else: no gradtui Config is assumed (a record of another
program's model has none), and keys a source cannot honour are shown as unavailable
with the source's ``reason``.

Sources today: the live trainer (:class:`gradtui.session.Session`), a finished record
(:class:`gradtui.sources.replay.ReplaySource`) and a record another process is writing
(:class:`gradtui.sources.follow.FollowSource`). A new producer (a PyTorch hook, a sweep
cell) either writes records (docs/record-format.md) or implements this Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

# The commands a source may accept; the interface maps its keys onto these names.
PAUSE = "pause"  # toggle_pause(): pause / resume (play / pause for a replay)
STEP = "step"  # step_once(): one step forward
CHANGE = "change"  # apply(overrides): a config change (the mitigation keys)
RESTART = "restart"  # restart(next_seed)
SEEK = "seek"  # seek(delta) / seek_to(position): move through a finished record
SPEED = "speed"  # faster(factor): playback speed
EXPORT = "export"  # export(directory): write the run so far as a record
REMOTE = "remote"  # remote(key): a live remedy sent to another process (gradtui.control_channel)


@dataclass(frozen=True)
class Capabilities:
    """What a source can do. ``commands`` holds the names above; ``reason`` says, for a source
    that is not ``controllable``, why the keys that change the model are unavailable."""

    controllable: bool
    commands: frozenset
    reason: str = ""
    kind: str = "live"  # "live" | "replay" | "follow": how the header names the source

    def allows(self, command: str) -> bool:
        return command in self.commands


LIVE = Capabilities(True, frozenset({PAUSE, STEP, CHANGE, RESTART, EXPORT}), kind="live")
REPLAY = Capabilities(False, frozenset({PAUSE, STEP, SEEK, SPEED, EXPORT}),
                      reason="a replay shows a finished record; `gradtui run RECORD.jsonl` trains it again", kind="replay")
FOLLOW = Capabilities(False, frozenset({EXPORT}),
                      reason="another process writes this record; change the model there", kind="follow")
# following a record whose writer listens on a control file (gradtui.torch): the live remedies
FOLLOW_CONTROL = Capabilities(False, frozenset({EXPORT, PAUSE, REMOTE}),
                              reason="another process trains this model: only its live remedies (space + - c x) reach it; "
                                     "change the rest in its code", kind="follow")


@runtime_checkable
class Source(Protocol):
    """What the interface needs of a source. Commands a source does not list in its
    capabilities may raise NotImplementedError; the interface never sends them."""

    capabilities: Capabilities

    def start(self) -> "Source": ...

    def stop(self, timeout: float = 1.0) -> bool: ...

    def snapshot(self): ...

    @property
    def pending_config(self):
        """The gradtui config the next change builds on (None when there is none)."""

    def toggle_pause(self) -> None: ...

    def step_once(self) -> None: ...

    def export(self, directory) -> str: ...
