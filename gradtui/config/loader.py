"""Finding and reading presets: shipped names, paths to TOML files, and --set overrides."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Iterable

from gradtui.config.model import Config, ConfigError, build_config, closest, parse_value, unknown_key
from gradtui.config.schema import key_specs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_PRESET = "vanishing-sigmoid"


def _preset_dir():
    return resources.files("gradtui.presets")


def preset_names() -> list[str]:
    """Names of the shipped presets, sorted."""
    return sorted(p.name[:-5] for p in _preset_dir().iterdir() if p.name.endswith(".toml"))


def shown(text: str, limit: int = 80) -> str:
    """A user-given name for a message, shortened when it is very long."""
    return text if len(text) <= limit else f"{text[:limit - 20]}...{text[-12:]} ({len(text)} characters)"


def _is_file(path) -> bool:
    """path.is_file(), False for names the system refuses (too long, say) instead of an OSError."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # ENAMETOOLONG; a NUL byte
        return False


def preset_path(name: str):
    """The resource path of a shipped preset; ConfigError naming the closest ones if unknown."""
    candidate = _preset_dir() / f"{name}.toml"
    if "/" in name or not _is_file(candidate):
        names = preset_names()
        raise ConfigError(
            f"unknown preset {shown(name)!r}{closest(name, names)} (shipped presets: {', '.join(names)}; "
            "or give a path to a .toml file)"
        )
    return candidate


def parse_toml(text: str, source: str) -> dict:
    """Parse TOML text; a syntax error becomes a ConfigError carrying the line number."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))  # a byte-order mark is allowed, as in TOML 1.1
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: malformed TOML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed TOML: values are nested too deeply (arrays or tables inside each other)") from None


def load_config(name_or_path: str | Path) -> Config:
    """Load a shipped preset by name (``"vanishing-sigmoid"``) or a TOML file by path."""
    text_name = str(name_or_path)
    path = Path(text_name).expanduser()
    looks_like_path = text_name.endswith(".toml") or "/" in text_name or _is_file(path)
    if looks_like_path:
        if not _is_file(path):
            raise ConfigError(f"no preset file at {shown(text_name)} (shipped presets: {', '.join(preset_names())})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"cannot read {shown(text_name)}: {getattr(err, 'strerror', None) or err}") from None
        source = str(path)
        default_name = path.stem
    else:
        text = preset_path(text_name).read_text(encoding="utf-8")
        source = text_name
        default_name = text_name
    raw = parse_toml(text, source)
    raw.setdefault("name", default_name)
    return build_config(raw, source=source)


def parse_assignments(assignments: Iterable[str]) -> dict:
    """Turn ``["model.depth=30", "train.clip=norm"]`` into typed overrides."""
    specs = key_specs()
    overrides = {}
    for item in assignments:
        dotted, sep, value = item.partition("=")
        dotted = dotted.strip()
        if not sep:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE (for example --set model.depth=30)")
        if dotted not in specs:
            raise unknown_key(dotted)
        overrides[dotted] = parse_value(specs[dotted], value)
    return overrides
