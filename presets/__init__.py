"""The shipped presets (TOML files), installed as the package gradtui.presets."""
