"""The project's engine on the choice rule: a ``Market`` built from the neutralised
config, driven either by the choice submodel alone or by the whole quarter."""

from __future__ import annotations

from sim.model import Market
from sim.submodels import choice, model_choice


def run_choice_step(market: Market, quarters: int) -> Market:
    """Only the choice rule: ``sim.submodels.choice.step`` and the start of model use
    (``model_choice.step``, tied to the cloud in the neutral config), once per quarter."""
    for _ in range(quarters):
        choice.step(market)
        model_choice.step(market)
    return market


def run_market_step(market: Market, quarters: int) -> Market:
    """The whole quarter (all seven submodels and the recorder); with the neutral config
    only the choice rule moves anything customers see."""
    for _ in range(quarters):
        market.step()
    return market


def state(market: Market) -> dict:
    c = market.customers
    return {"provider": c.provider, "tenure": c.tenure, "uses_model": c.uses_model}
