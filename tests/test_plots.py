"""The share plot's end labels never sit on top of each other."""

import pandas as pd

from sim.plots import label_positions


def test_end_labels_are_pushed_apart_in_order():
    values = pd.Series({"A": 8.4, "B": 8.3, "C": 30.0, "D": 8.35})
    placed = label_positions(values, gap=1.0)
    heights = sorted(placed.values())
    assert all(b - a >= 1.0 - 1e-12 for a, b in zip(heights, heights[1:]))
    assert placed["B"] == 8.3 and placed["C"] == 30.0  # the lowest and a lone label stay at their value
    assert placed["B"] < placed["D"] < placed["A"]  # order kept
