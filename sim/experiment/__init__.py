"""Experiments: sweeps over parameters with replicates, run locally or on Dask in batches of
runs stepped together (``sim.experiment.batching``), streamed to Parquet run by run, resumable,
with quantile summaries, sensitivity indices and figures.

Load API (pandas DataFrames): ``load_runs``, ``load_design``, ``load_providers``,
``load_market``, ``load_manifest`` from ``sim.experiment.store``.
"""

from sim.experiment.store import load_design, load_manifest, load_market, load_providers, load_runs

__all__ = ["load_design", "load_manifest", "load_market", "load_providers", "load_runs"]
