"""The sweep in the terminal: the heatmap filling in as cells finish, the theory overlay, and a
progress line (done/total, failures, rate, ETA), drawn with rich's live display.

Each cell is three characters on the outcome's colour; `·` not finished yet, `×` failed or
non-finite; a digit k marks the row where depth crosses k * xi_c in that column (k in
overlay.MULTIPLES; `█6█` on a finished cell) and `┃` under the axis marks the chi_1 = 1 boundary. Colours are backed by
symbols, so NO_COLOR terminals still show which cells trained (`█` >= 0.5 of the scale).
"""

from __future__ import annotations

import math
import time

from rich.text import Text

from gradtui.sweep.heatmap import Heatmap

CELL = 3


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Progress:
    """Counts and timing of the cells this run submitted (resumed cells are counted apart)."""

    def __init__(self, total: int, skipped: int):
        self.total, self.skipped = total, skipped
        self.done = skipped
        self.failed = 0
        self.t0 = time.monotonic()
        self.workers = 0

    def finished(self, failed: bool) -> None:
        self.done += 1
        self.failed += bool(failed)

    def line(self) -> str:
        ran = self.done - self.skipped
        elapsed = time.monotonic() - self.t0
        rate = ran / elapsed if elapsed > 0 and ran else 0.0
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "-"
        parts = [f"{self.done}/{self.total} cells", f"{self.failed} failed", f"{rate * 60:.1f} cells/min", f"ETA {eta}",
                 f"{self.workers} worker{'s' if self.workers != 1 else ''}", f"{_duration(elapsed)} elapsed"]
        if self.skipped:
            parts.append(f"{self.skipped} from an earlier run")
        return " · ".join(parts)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "-"
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class SweepView:
    """A rich renderable: title, heatmap, axis, legend and progress line."""

    def __init__(self, hm: Heatmap, title: str, progress: Progress, overlay=None):
        self.hm, self.title, self.progress, self.overlay = hm, title, progress, overlay
        self.marks = self._marks()

    def _marks(self) -> dict:
        """(ix, iy) -> digit k where depth = k * xi_c crosses that column."""
        from gradtui.sweep.overlay import MULTIPLES, correlation_depth_scale

        hm, ov = self.hm, self.overlay
        if ov is None or not hm.y_key or not hm.x_sigma_w2:
            return {}
        marks = {}
        depths = [float(d) for d in hm.y_values]
        for ix, s in enumerate(hm.x_sigma_w2):
            xi = correlation_depth_scale(ov.activation, float(s), ov.sigma_b2)
            for k in MULTIPLES:
                target = k * xi
                if math.isfinite(target) and depths[0] <= target <= depths[-1]:
                    iy = min(range(len(depths)), key=lambda i: abs(depths[i] - target))
                    marks[(ix, iy)] = str(k)
        return marks

    def __rich_console__(self, console, options):
        hm = self.hm
        yield Text(self.title, style="bold")
        label_w = max([len(_fmt(v)) for v in hm.y_values] + [4]) if hm.y_key else 4
        for iy in reversed(range(len(hm.y_values))):
            line = Text((_fmt(hm.y_values[iy]) if hm.y_key else "").rjust(label_w) + " │")
            for ix in range(len(hm.x_values)):
                line.append_text(self._cell(ix, iy))
            yield line
        axis = Text(" " * label_w + " └" + "─" * (CELL * len(hm.x_values)))
        yield axis
        labels = self.hm.x_sigma_w2 if self.hm.x_sigma_w2 else hm.x_values
        yield Text(" " * (label_w + 2) + self._ticks(labels))
        if self.overlay is not None and hm.x_sigma_w2:
            at = min(max(round(CELL * hm.x_position(self.overlay.critical)), 0), CELL * len(hm.x_values) - 1)
            yield Text(" " * (label_w + 2 + at) + f"┃ χ₁ = 1 at σ_w² = {self.overlay.critical:.2f}", style="red")
        x_title = "σ_w²" if hm.x_sigma_w2 else hm.x_key
        lo, hi, log = hm.value_range()
        yield Text(f"x: {x_title}   y: {hm.y_key or '-'}   colour: {hm.metric} {_fmt(float(lo))}..{_fmt(float(hi))}"
                   f"{' (log)' if log else ''}   █ upper half  · pending  × failed"
                   + ("   digits: depth = k ξ_c" if self.marks else ""), style="dim")
        yield Text(self.progress.line())

    def _cell(self, ix: int, iy: int) -> Text:
        hm = self.hm
        mark = self.marks.get((ix, iy))
        if not hm.done(ix, iy):
            return Text((mark or "·").center(CELL), style="dim")
        value = hm.mean(ix, iy)
        failed = hm.failed.get((ix, iy), 0)
        if value is None:
            return Text((mark or "×").center(CELL), style="bold red")
        frac = hm.fraction(value)
        glyph = "×" if failed else ("█" if frac >= 0.5 else "░")
        fg = "black" if frac > 0.6 else "white"
        return Text(f"{glyph}{mark}{glyph}" if mark else glyph.center(CELL), style=f"{fg} on {hm.colour(value)}")

    def _ticks(self, labels) -> str:
        out = ""
        for i, v in enumerate(labels):
            text = _fmt(float(v)) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
            if len(out) <= i * CELL:
                out = out.ljust(i * CELL) + text + " "
        return out
