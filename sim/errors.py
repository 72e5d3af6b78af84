"""Errors worded for the user, which the CLI prints as one line (no traceback).

Kept free of heavy imports so that the CLI can catch them without loading the model.
"""

from __future__ import annotations

import math


class OutputError(Exception):
    """An output cannot be written where the user asked (a file in the way, no permission, a
    read-only or full disk); the message names the path and the reason."""


class NonFiniteState(ArithmeticError):
    """The model's state turned non-finite (NaN or infinite); the run cannot go on.

    ``str(exc)`` is one line for the user; ``details`` says where (quarter, variable, mechanism,
    settings).  Built with ``NonFiniteState.at(...)``; the plain constructor takes the message
    alone, so the error survives pickling into and out of sweep workers."""

    def __init__(self, message: str, details: dict | None = None):
        super().__init__(message)
        self.details = details or {}

    def __reduce__(self):
        return (type(self), (str(self), self.details))

    @classmethod
    def at(cls, *, quarter: str, step: int, quarters: int, variable: str, value: float, mechanism: str,
           settings: list[str], where: str = "", run: int | None = None, runs: int = 1, name: str = "",
           seed: int | None = None) -> "NonFiniteState":
        """The error of one run; ``run`` (its place in a batch of ``runs``), ``name`` and ``seed``
        say which run of a batch it is (a run alone: ``run`` None, not mentioned)."""
        text = "NaN" if math.isnan(value) else ("infinite" if value > 0 else "-infinite")
        stopped = ("the run was stopped" if run is None else
                   f"in run {run + 1} of a batch of {runs} (config {name!r}, run.seed = {seed}); the batch was stopped")
        message = (f"quarter {quarter} (quarter {step + 1} of {quarters}): {variable}{where} became {text} in the "
                   f"{mechanism} mechanism; settings involved: {', '.join(settings)}; {stopped} "
                   f"(no results written)")
        details = dict(quarter=quarter, step=step, variable=variable, mechanism=mechanism, settings=settings)
        if run is not None:
            details.update(run=run, name=name, seed=seed)
        return cls(message, details)
