"""A non-editable install ships the presets inside the package (the tests run on an editable one)."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_every_preset_and_the_stylesheet(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("gradtui-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for preset in (ROOT / "presets").glob("*.toml"):
        assert f"gradtui/presets/{preset.name}" in names
    assert "gradtui/ui/app.tcss" in names
    assert any(n.endswith("entry_points.txt") for n in names)
