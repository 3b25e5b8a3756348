"""Render the preset table (docs/presets.md) from the shipped preset files, so it cannot drift.

    python -m gradtui.config.presets_doc > docs/presets.md

Name, title, description and the keys to press all come from each TOML file;
tests/test_preset_promises.py presses those keys and checks they work.
"""

from __future__ import annotations

from gradtui.config.loader import parse_toml, preset_names, preset_path

def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _raw(name: str) -> dict:
    return parse_toml(preset_path(name).read_text(encoding="utf-8"), name)


def preset_table(link: str = "#") -> str:
    """The Markdown table of every shipped preset; ``link`` prefixes each name's anchor."""
    lines = ["| preset | what you will see | press |", "|---|---|---|"]
    for name in preset_names():
        raw = _raw(name)
        lines.append(f"| [`{name}`]({link}{name}) | {_one_line(raw.get('title', ''))} | {_one_line(raw.get('press', ''))} |")
    return "\n".join(lines)


def render_markdown() -> str:
    """The whole preset page as Markdown."""
    lines = [
        "# Presets",
        "",
        "Generated from the files in `presets/` by `python -m gradtui.config.presets_doc`; a test fails when it is stale.",
        "Open one with `gradtui NAME` (live) or `gradtui run NAME` (headless); `gradtui presets` lists them.",
        "The format of a preset file and every key are in [config.md](config.md).",
        "",
        preset_table(),
        "",
    ]
    for name in preset_names():
        raw = _raw(name)
        lines += [f"## {name}", "", f"**{raw.get('title', '').strip()}**", "", " ".join(raw.get("description", "").split()), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
