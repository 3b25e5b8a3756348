"""Config values as users give them: NumPy scalars, nested tables, huge numbers, a BOM, and
messages that name what is allowed."""

import numpy as np
import pytest

import gradtui
from gradtui.config import ConfigError, load_config, parse_assignments


@pytest.fixture(scope="module")
def base():
    return load_config("vanishing-sigmoid")


def test_numpy_scalars_are_accepted(base):
    cfg = base.with_overrides({"model.depth": np.int64(3), "train.lr": np.float32(0.25), "model.batchnorm": np.bool_(True),
                               "model.activation": np.str_("relu")})
    assert (cfg.model.depth, cfg.model.batchnorm, cfg.model.activation) == (3, True, "relu")
    assert type(cfg.model.depth) is int and type(cfg.train.lr) is float and cfg.train.lr == 0.25


def test_nested_tables_are_accepted_as_in_toml(base):
    cfg = base.with_overrides({"model": {"depth": 3, "width": 16}, "train.lr": 0.5})
    assert (cfg.model.depth, cfg.model.width, cfg.train.lr) == (3, 16, 0.5)
    with pytest.raises(ConfigError, match=r"unknown key model.dpth; did you mean model.depth\?"):
        base.with_overrides({"model": {"dpth": 3}})


@pytest.mark.parametrize("key", ["", "name", "model", "modle.depth"])
def test_unknown_keys_list_the_allowed_ones(base, key):
    for attempt in (lambda: base.with_overrides({key: 3}), lambda: parse_assignments([f"{key}=3"])):
        with pytest.raises(ConfigError) as err:
            attempt()
        text = str(err.value)
        assert "unknown key" in text and "[model] kind, depth, width" in text and "[alerts]" in text


def test_huge_numbers_are_refused_and_echoed_as_given(base):
    digits = "9" * 400
    with pytest.raises(ConfigError, match=r"train.lr = 999999999999\.\.\.999999 \(400 characters\) is not allowed"):
        base.with_overrides({"train.lr": int(digits)})
    with pytest.raises(ConfigError, match=r"train.lr = '999999999999\.\.\.999999 \(400 characters\)' is not allowed"):
        parse_assignments([f"train.lr={digits}"])
    thirty = "9" * 30
    with pytest.raises(ConfigError, match=rf"model.depth = {thirty} is not allowed: expected an integer >= 1 and <= 1000"):
        base.with_overrides(parse_assignments([f"model.depth={thirty}"]))


def test_deeply_nested_toml_is_a_config_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("[model]\ndepth = " + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(path)


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf" + b'title = "with a BOM"\n[model]\ndepth = 3\n')
    cfg = load_config(path)
    assert cfg.model.depth == 3 and cfg.title == "with a BOM"


def test_very_long_names_are_config_errors(tmp_path):
    for name in ("a" * 300, "a" * 300 + ".toml", str(tmp_path / ("b" * 300) / "x.toml")):
        with pytest.raises(ConfigError, match=r"\(3\d\d characters\)"):
            load_config(name)


def test_no_held_out_split_names_the_values(base):
    with pytest.raises(ConfigError, match=r"data.samples = 16 with data.test_fraction = 0.01 leaves 16 training and 0 held-out"):
        base.with_overrides({"data.samples": 16, "data.test_fraction": 0.01, "train.batch_size": 1})


def test_session_refuses_a_negative_step_limit(base):
    from gradtui.session import Session

    for bad in (-5, 0, 2.5, True):
        with pytest.raises(ValueError, match="max_steps must be a whole number of at least 1"):
            Session(base, max_steps=bad)
    assert Session(base, max_steps=np.int64(3)).max_steps == 3


def test_import_gradtui_loads_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, gradtui; gradtui.load_config('vanishing-sigmoid'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'numba', 'rich', 'textual'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert gradtui.Experiment.__name__ == "Experiment" and callable(gradtui.read_record)
