"""Benchmarks and plain-NumPy reference implementations that gradtui's engine is measured against."""
