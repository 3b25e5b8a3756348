"""Sweeps: a grid of gradtui runs on Dask, summarised in a table and drawn as a heatmap with
mean-field theory overlaid (`gradtui sweep`). Imports Dask only when a sweep runs; never imported
by `import gradtui`."""
