"""Render the config reference (docs/config.md) from the schema, so it cannot drift.

    python -m gradtui.config.docs > docs/config.md
"""

from __future__ import annotations

import dataclasses

from gradtui.config.schema import SECTIONS, key_specs


def _default(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def render_markdown() -> str:
    """The whole reference page as Markdown."""
    specs = key_specs()
    lines = [
        "# Preset and config reference",
        "",
        "Generated from `gradtui/config/schema.py` by `python -m gradtui.config.docs`; a test fails when it is stale.",
        "",
        "A preset is a TOML file: `name`, `title`, `description` and `press` (the keys to try, in a few words)",
        "strings, then the tables below.",
        "Every key is optional: a preset sets only what it changes. The same dotted keys work with",
        "`--set` on the command line (`--set model.depth=30`) and with `Config.with_overrides`.",
        "A key marked *only for* is refused when set where it does not apply.",
        "",
    ]
    for section, cls in SECTIONS.items():
        lines += [f"## [{section}]", "", cls.__doc__.strip(), "", "| key | default | allowed | meaning |", "|---|---|---|---|"]
        for f in dataclasses.fields(cls):
            spec = specs[f"{section}.{f.name}"]
            scope = []
            if spec.kinds:
                scope.append("model.kind " + "/".join(spec.kinds))
            if spec.tasks:
                scope.append("data.task " + "/".join(spec.tasks))
            meaning = spec.doc + (f" *Only for {'; '.join(scope)}.*" if scope else "")
            lines.append(f"| `{f.name}` | `{_default(spec.default)}` | {spec.allowed()} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_markdown(), end="")
