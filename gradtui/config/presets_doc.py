"""Render the preset table (docs/presets.md) from the shipped preset files, so it cannot drift.

    python -m gradtui.config.presets_doc > docs/presets.md

Name, title, description and the keys to press all come from each TOML file;
tests/test_preset_promises.py presses those keys and checks they work.
"""

from __future__ import annotations

from gradtui.config.loader import parse_toml, preset_names, preset_path

def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render_markdown() -> str:
    """The whole preset page as Markdown."""
    lines = [
        "# Presets",
        "",
        "Generated from the files in `presets/` by `python -m gradtui.config.presets_doc`; a test fails when it is stale.",
        "Open one with `gradtui NAME` (live) or `gradtui run NAME` (headless); `gradtui presets` lists them.",
        "The format of a preset file and every key are in [config.md](config.md).",
        "",
        "| preset | what you will see | press |",
        "|---|---|---|",
    ]
    details = []
    for name in preset_names():
        raw = parse_toml(preset_path(name).read_text(encoding="utf-8"), name)
        title = _one_line(raw.get("title", ""))
        lines.append(f"| [`{name}`](#{name}) | {title} | {_one_line(raw.get('press', ''))} |")
        details += [f"## {name}", "", f"**{raw.get('title', '').strip()}**", "", " ".join(raw.get("description", "").split()), ""]
    lines.append("")
    return "\n".join(lines + details)


if __name__ == "__main__":
    print(render_markdown(), end="")
