"""Calibration and validation against the public market record (issue 4).

data        load and validate the observed figures (data/market_shares.csv)
targets     which observations the model is compared with, and the simulated counterpart
replicate   replications with common random numbers
params      the free parameters and how they are written into a config
objective   the fit criterion
fit         the optimiser (scipy differential evolution) with a progress bar
overlay     the fitted values as a config overlay TOML
validate    out-of-sample errors and simulated bands
facts       the stylized facts of model-anchors.md section 6 as named checks
report      markdown and JSON reports
plots       figures: simulated bands against the observed points, the loss profile
"""
