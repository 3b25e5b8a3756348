"""The heatmap as an SVG file (written directly: rectangles, polylines and text), and a PNG
beside it when `rsvg-convert` (librsvg) is on PATH.

Cells are coloured by the outcome (viridis; grey: no value, a cross: a failed or non-finite
seed); the theory overlay (gradtui.sweep.overlay) draws the chi_1 = 1 boundary as a vertical
line and depth = k xi_c as dashed curves, clipped to the plot.
"""

from __future__ import annotations

import shutil
import subprocess
from html import escape
from pathlib import Path

from gradtui.sweep.heatmap import Heatmap, colour_at

LEFT, TOP, RIGHT, BOTTOM = 78, 46, 200, 58
PLOT_W, PLOT_H = 560, 420
CURVE_STYLE = {1: "4,3", 3: "7,3", 6: ""}  # dash pattern per multiple of xi_c


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)


def render(hm: Heatmap, title: str, overlay=None) -> str:
    """The SVG document as a string."""
    nx, ny = len(hm.x_values), len(hm.y_values)
    cw, ch = PLOT_W / nx, PLOT_H / ny
    width, height = LEFT + PLOT_W + RIGHT, TOP + PLOT_H + BOTTOM
    X = lambda col: LEFT + col * cw  # noqa: E731  (column coordinate -> pixels)
    Y = lambda row: TOP + PLOT_H - row * ch  # noqa: E731  (row coordinate -> pixels, up = deeper)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
           f'<defs><clipPath id="plot"><rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}"/></clipPath></defs>']
    for ix in range(nx):
        for iy in range(ny):
            x0, y0 = X(ix), Y(iy + 1)
            value = hm.mean(ix, iy)
            fill = "#d9d9d9" if value is None else hm.colour(value)
            out.append(f'<rect x="{x0:.2f}" y="{y0:.2f}" width="{cw:.2f}" height="{ch:.2f}" fill="{fill}"/>')
            if hm.failed.get((ix, iy)):
                m = min(cw, ch) * 0.25
                cx, cy = x0 + cw / 2, y0 + ch / 2
                out.append(f'<path d="M{cx - m:.1f},{cy - m:.1f}L{cx + m:.1f},{cy + m:.1f}M{cx - m:.1f},{cy + m:.1f}'
                           f'L{cx + m:.1f},{cy - m:.1f}" stroke="#d62728" stroke-width="1.5"/>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{PLOT_W}" height="{PLOT_H}" fill="none" stroke="#333"/>')
    step_x = max(1, round(nx / 12))
    for ix in range(0, nx, step_x):
        label = hm.x_sigma_w2[ix] if hm.x_sigma_w2 and hm.x_key != "sigma_w2" else hm.x_values[ix]
        out.append(f'<text x="{X(ix + 0.5):.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle">{escape(_fmt(label))}</text>')
    x_title = "σ_w² (weight variance × fan-in)" if hm.x_sigma_w2 else hm.x_key
    out.append(f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H + 40}" text-anchor="middle">{escape(x_title)}</text>')
    if hm.y_key:
        step_y = max(1, round(ny / 12))
        for iy in range(0, ny, step_y):
            out.append(f'<text x="{LEFT - 6}" y="{Y(iy + 0.5) + 4:.1f}" text-anchor="end">{escape(_fmt(hm.y_values[iy]))}</text>')
        out.append(f'<text transform="translate(20,{TOP + PLOT_H / 2}) rotate(-90)" text-anchor="middle">{escape(hm.y_key)}</text>')
    if overlay is not None and hm.y_key:
        out.extend(_overlay(hm, overlay, X, Y))
    out.extend(_colour_bar(hm, LEFT + PLOT_W + 24, TOP))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _overlay(hm: Heatmap, overlay, X, Y) -> list[str]:
    from gradtui.sweep.overlay import MULTIPLES

    parts = ['<g clip-path="url(#plot)" fill="none" stroke="white">']
    xc = X(hm.x_position(overlay.critical))
    parts.append(f'<line x1="{xc:.1f}" y1="{TOP}" x2="{xc:.1f}" y2="{TOP + PLOT_H}" stroke="#ff3b30" stroke-width="2.5"/>')
    for k in MULTIPLES:
        pts = " ".join(f"{X(hm.x_position(s)):.1f},{Y(hm.y_position(d)):.1f}" for s, d in overlay.depth_curve(k)
                       if d < 1e4)
        dash = f' stroke-dasharray="{CURVE_STYLE[k]}"' if CURVE_STYLE.get(k) else ""
        parts.append(f'<polyline points="{pts}" stroke-width="{2.5 if k == 6 else 1.5}"{dash}/>')
    parts.append("</g>")
    lx, ly = LEFT + PLOT_W + 24, TOP + PLOT_H - 96
    parts.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 22}" y2="{ly}" stroke="#ff3b30" stroke-width="2.5"/>'
                 f'<text x="{lx + 28}" y="{ly + 4}">χ₁ = 1 (σ_w² = {overlay.critical:.2f})</text>')
    for i, k in enumerate(MULTIPLES):
        y = ly + 20 * (i + 1)
        dash = f' stroke-dasharray="{CURVE_STYLE[k]}"' if CURVE_STYLE.get(k) else ""
        parts.append(f'<rect x="{lx - 2}" y="{y - 8}" width="26" height="16" fill="#555"/>'
                     f'<line x1="{lx}" y1="{y}" x2="{lx + 22}" y2="{y}" stroke="white" stroke-width="{2.5 if k == 6 else 1.5}"{dash}/>'
                     f'<text x="{lx + 28}" y="{y + 4}">depth = {k} ξ_c</text>')
    return parts


def _colour_bar(hm: Heatmap, x: int, y: int) -> list[str]:
    lo, hi, log = hm.value_range()
    h, steps = 180, 30
    parts = [f'<text x="{x}" y="{y - 6}">{escape(hm.metric)}{" (log)" if log else ""}'
             f'{f" · mean of {hm.seeds} seeds" if hm.seeds > 1 else ""}</text>']
    for i in range(steps):
        parts.append(f'<rect x="{x}" y="{y + h - (i + 1) * h / steps:.2f}" width="16" height="{h / steps + 0.5:.2f}" '
                     f'fill="{colour_at(i / (steps - 1))}"/>')
    parts.append(f'<text x="{x + 22}" y="{y + 10}">{_fmt(float(hi))}</text>')
    low = f"{_fmt(float(lo))} (chance)" if hm.chance and lo == hm.chance else _fmt(float(lo))
    parts.append(f'<text x="{x + 22}" y="{y + h}">{low}</text>')
    parts.append(f'<rect x="{x}" y="{y + h + 12}" width="16" height="12" fill="#d9d9d9"/>'
                 f'<text x="{x + 22}" y="{y + h + 22}">no value</text>')
    parts.append(f'<text x="{x + 2}" y="{y + h + 42}" fill="#d62728" font-weight="bold">×</text>'
                 f'<text x="{x + 22}" y="{y + h + 42}">failed / NaN</text>')
    return parts


def write(hm: Heatmap, path: Path, title: str, overlay=None) -> list[Path]:
    """Write the SVG (and a PNG when rsvg-convert is available); returns the files written."""
    path = Path(path)
    path.write_text(render(hm, title, overlay), encoding="utf-8")
    written = [path]
    converter = shutil.which("rsvg-convert")
    if converter:
        png = path.with_suffix(".png")
        done = subprocess.run([converter, "-b", "white", "-o", str(png), str(path)], capture_output=True, timeout=60)
        if done.returncode == 0:
            written.append(png)
    return written
