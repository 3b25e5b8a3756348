"""gradtui for your own PyTorch model (needs the ``torch`` extra; ``import gradtui`` never imports it).

    import gradtui.torch as gt
    watcher = gt.watch(model, optimizer, record="run.jsonl", every=10)
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        watcher.log(loss=loss)
    watcher.close()

and ``gradtui watch run.jsonl`` in another terminal. docs/watch-pytorch.md explains what is
measured, what it costs and the live remedies.
"""

from __future__ import annotations

from gradtui.torch.watcher import NONFINITE_MODES, NonFiniteError, Watcher

__all__ = ["NONFINITE_MODES", "NonFiniteError", "Watcher", "watch"]


def watch(model, optimizer, record=None, every: int = 10, on_nonfinite: str = "record", clip_norm: float = 1.0,
          control: bool = True, quiet: bool = False) -> Watcher:
    """Watch ``model`` trained by ``optimizer``; returns a :class:`Watcher` (also a context manager).

    ``record`` the record's path (default ``gradtui-<time>.jsonl`` in the working directory,
    printed once; an existing file is overwritten); ``every`` measure one step in ``every``
    (steps 1, every+1, ...); ``on_nonfinite`` "record" (only record a NaN/Inf step), "skip"
    (do not apply its update: the weights stay unchanged) or "raise" (NonFiniteError naming
    the module); ``clip_norm`` the max_norm of live clipping (``c`` in the viewer);
    ``control`` creates the live-remedy channel ``<record>.control`` (0600).
    """
    return Watcher(model, optimizer, record=record, every=every, on_nonfinite=on_nonfinite, clip_norm=clip_norm,
                   control=control, quiet=quiet)
