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


def config_from_header(header: dict, source: str) -> Config:
    """The gradtui config a record's header carries (the run's config at its start)."""
    raw = header.get("config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the record has no gradtui config in its header (it was written by "
                          f"{header.get('producer', 'another program')}), so it cannot be run again; it can be replayed")
    raw = {k: v for k, v in raw.items() if k != "source"}
    return build_config(raw, source=source)


def load_record_config(path: Path) -> Config:
    """The config in the header of the JSON Lines record at ``path``."""
    import json

    from gradtui.record_read import check_header

    try:
        with open(path, "rb") as f:
            first = f.readline()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("type") != "header":
        raise ConfigError(f"{path}: line 1 is not a gradtui record header, so the file gives no config")
    from gradtui.record import RecordError

    try:
        check_header(header, str(path))
    except RecordError as err:
        raise ConfigError(str(err)) from None
    return config_from_header(header, str(path))


def load_config(name_or_path: str | Path) -> Config:
    """Load a shipped preset by name (``"vanishing-sigmoid"``), a TOML file by path, or the
    config in the header of a JSON Lines record (``"run.jsonl"``: the run's config at its start)."""
    text_name = str(name_or_path)
    path = Path(text_name).expanduser()
    if text_name.endswith(".jsonl"):
        if not _is_file(path):
            raise ConfigError(f"no record file at {shown(text_name)}")
        return load_record_config(path)
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
