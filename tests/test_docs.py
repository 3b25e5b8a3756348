"""Documentation generated from the code stays in step with it."""

from pathlib import Path

from gradtui.config.docs import render_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_config_reference_is_current():
    current = (ROOT / "docs" / "config.md").read_text()
    assert current == render_markdown(), "docs/config.md is stale: run python -m gradtui.config.docs > docs/config.md"


def test_readme_test_command_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text().splitlines()
    command = next(line.strip() for line in readme if "pytest" in line and not line.lstrip().startswith(("#", "-", "|")))
    assert command in (ROOT / ".ci" / "run").read_text()


def test_readme_preset_table_matches_the_shipped_presets():
    from gradtui.config.presets_doc import preset_table

    assert preset_table("docs/presets.md#") in (ROOT / "README.md").read_text()
