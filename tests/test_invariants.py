"""Property-based checks over random valid configs: conservation, shares, bounds, determinism."""

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.config import validate
from sim.customers import NO_PROVIDER
from sim.metrics import METRICS
from sim.model import Market

SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


@st.composite
def configs(draw):
    n = draw(st.integers(1, 5))
    raw_shares = [draw(st.floats(0.05, 1.0)) for _ in range(n)]
    providers = []
    for i, share in enumerate(raw_shares):
        providers.append({
            "name": f"P{i}", "has_model": draw(st.booleans()),
            "capability": draw(st.floats(0.1, 1.2)), "compute": draw(st.floats(1e3, 1e6)),
            "training_share": draw(st.floats(0.0, 0.6)), "own_chip_share": draw(st.floats(0, 1)),
            "lock_in": draw(st.floats(0, 5)), "cash": draw(st.floats(-50.0, 1e5)),
            "capex_share": draw(st.floats(0, 2)), "captive_compute": draw(st.floats(0, 1e5)),
            "captive_tokens": draw(st.floats(0, 1e5)), "initial_share": share / sum(raw_shares),
            "affinity": {s: draw(st.floats(-2, 2)) for s in SEGMENTS if draw(st.booleans())},
        })
    entrants = []
    if draw(st.booleans()):
        entrants.append({"name": "New", "bankroll": draw(st.floats(0, 5e3)), "funding": draw(st.floats(0, 500)),
                         "earliest": draw(st.integers(0, 4)), "compute": 0.0})
    raw = {
        "run": {"customers": draw(st.integers(50, 1500)), "quarters": draw(st.integers(1, 8)), "seed": draw(st.integers(0, 2**32))},
        "demand": {"initial_adoption": draw(st.floats(0, 1)), "bass_p": draw(st.floats(0, 0.2)), "bass_q": draw(st.floats(0, 0.5)),
                   "token_elasticity": draw(st.floats(0, 2)), "size_tail": draw(st.floats(1.1, 4))},
        "choice": {"switching_base": draw(st.floats(0, 5)), "model_lock": draw(st.floats(0, 5))},
        "models": {"choose_apart": draw(st.booleans()), "same_cloud_bonus": draw(st.floats(0, 10)),
                   "model_renewal_hazard": draw(st.floats(0, 1)), "initial_use": draw(st.floats(0, 1)),
                   "price_weight": draw(st.floats(0, 3))},
        "multihoming": {"share": draw(st.floats(0, 1)), "split": draw(st.floats(0, 0.5)),
                        "migration_rate": draw(st.floats(0.05, 1))},
        "pricing": {"token_price_cuts": [{"quarter": draw(st.integers(0, 6)), "cut": draw(st.floats(0, 0.99))}] if draw(st.booleans()) else []},
        "finance": {"import_cap": draw(st.one_of(st.none(), st.floats(0, 1e5))), "capacity_response": draw(st.floats(0, 1))},
        "open_weights": {"enabled": draw(st.booleans()), "release": draw(st.integers(0, 6)), "capability": draw(st.floats(0, 1))},
        "entry": {"exit_after": draw(st.integers(1, 4)), "entry_compute": draw(st.floats(0, 1e5))},
        "service": {"surges": [{"quarter": draw(st.integers(0, 6)), "multiplier": draw(st.floats(0.5, 10))}] if draw(st.booleans()) else []},
        "providers": providers, "entrants": entrants,
    }
    return validate(raw, "hypothesis")


def check_quarter(market: Market) -> None:
    people = market.customers
    active = {p.slot for p in market.active_providers()}
    held = set(np.unique(people.provider[people.provider != NO_PROVIDER]).tolist())
    assert held <= active, "every customer is with an active provider or none"
    assert not (people.provider[~people.adopted] != NO_PROVIDER).any(), "non-adopters have no provider"
    assert (people.tenure >= 0).all() and (people.model_tenure >= 0).all()
    # The model layer: a model provider is active (or none); only model users have one; non-adopters none.
    models = set(np.unique(people.model_provider[people.model_provider != NO_PROVIDER]).tolist())
    assert models <= active, "every model buyer buys from an active provider or none"
    assert not ((people.model_provider != NO_PROVIDER) & ~people.uses_model).any()
    assert not (people.model_provider[~people.adopted] != NO_PROVIDER).any()
    if not market.config.models.choose_apart:
        users = people.model_provider != NO_PROVIDER
        assert (people.model_provider[users] == people.provider[users]).all(), "tied: the cloud's own model"
    # Multi-homing: a second cloud is active, not the primary, held only with a primary; split in [0, 1].
    second = people.second_provider != NO_PROVIDER
    assert set(np.unique(people.second_provider[second]).tolist()) <= active
    assert not (second & (people.second_provider == people.provider)).any()
    assert not (second & (people.provider == NO_PROVIDER)).any()
    assert ((people.split >= 0) & (people.split <= 1)).all() and (people.split[~second] == 0).all()
    for p in market.active_providers():
        assert 0.0 <= p.reliability <= 1.0 and p.compute >= 0 and p.price > 0
        assert p.capability >= market.open_capability - 1e-12
        # Served never exceeds demanded; nothing non-finite.
        assert 0.0 <= p.tokens <= p.tokens_demanded * (1 + 1e-12) + 1e-12
        assert p.unserved_tokens >= -1e-9 * max(1.0, p.tokens_demanded)
        assert np.isfinite([p.tokens, p.tokens_demanded, p.revenue, p.billed_gpu]).all()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_invariants_hold_for_random_configs(config):
    market = Market(config=config)
    for _ in range(config.run.quarters):
        market.step()
        check_quarter(market)
    providers, quarters, flows = market.recorder.frames()
    for metric in METRICS:
        totals = providers.groupby("step")[f"share_{metric}"].sum()
        assert np.all(np.isclose(totals, 1.0) | np.isclose(totals, 0.0)), metric
        assert ((quarters[f"hhi_{metric}"] >= 0) & (quarters[f"hhi_{metric}"] <= 10_000 + 1e-6)).all()
    assert (quarters["churn"].between(0, 1)).all()
    # The three layers: revenue splits into cloud and MaaS revenue; AI cloud revenue lies between MaaS and all.
    rows = providers[providers["status"] != "pending"]
    assert np.allclose(rows["revenue"], rows["cloud_revenue"] + rows["maas_revenue"], rtol=1e-9, atol=1e-9)
    assert (rows["ai_cloud_revenue"] <= rows["revenue"] * (1 + 1e-9) + 1e-9).all()
    assert (rows["ai_cloud_revenue"] >= rows["maas_revenue"] * (1 - 1e-9) - 1e-9).all()
    assert np.allclose(rows["tokens"], rows["maas_tokens"]) and (rows["tokens"] <= rows["tokens_demanded"] * (1 + 1e-9) + 1e-9).all()
    last = providers[(providers["step"] == providers["step"].max()) & (providers["status"] == "active")]
    if quarters["exits"].iloc[-1] == 0:  # an exit moves customers after service counted them (to none or a second cloud)
        assert last["customers"].sum() == (market.customers.provider != NO_PROVIDER).sum()

    again = Market(config=config)
    again.run()
    pd.testing.assert_frame_equal(providers, again.recorder.frames()[0])
    assert np.array_equal(market.customers.provider, again.customers.provider)


def test_customer_view_is_read_only():
    import dataclasses

    import pytest

    from sim.config import load_config
    market = Market(config=load_config("minimal"))
    view = market.customers.view(0, market.names)
    assert view.segment in SEGMENTS and view.compute_demand > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.provider = "x"
    frame = market.customers.frame()
    assert len(frame) == market.config.run.customers
    frame.loc[0, "tenure"] = 999
    assert market.customers.tenure[0] != 999, "the frame is a copy"
