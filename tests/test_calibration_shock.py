"""The two general mechanisms the China history needs: a quarter from which model services
(tokens) switch on, and one-off lasting token price cuts that raise volume and lower the
price billed per token."""

import pytest

from sim.config import ConfigError, load_config, with_overrides
from sim.model import Market
from sim.submodels.pricing import token_price_factor


def base(**extra):
    cfg = load_config("minimal")
    return with_overrides(cfg, {"run.customers": 2000, "run.quarters": 8, "demand.bass_p": 0.0,
                                "demand.bass_q": 0.0, **extra}, source="test")


def run(cfg, quarters):
    market = Market(config=cfg)
    rows = []
    for _ in range(quarters):
        intensity = market.token_compute  # compute per token used in this quarter's service step
        market.step()
        rows.append({p.name: dict(tokens=p.tokens_demanded, billed=p.billed_gpu, served=p.served_gpu,
                                  compute=p.customer_compute, util=p.utilisation, intensity=intensity)
                     for p in market.active_providers()})
    return market, rows


def test_no_model_use_before_model_services_start():
    cfg = base(**{"demand.model_services_start": "2025Q4"})  # start 2025Q1: offset 3
    market = Market(config=cfg)
    used = []
    for _ in range(6):
        market.step()
        used.append(int(market.customers.uses_model.sum()))
    assert used[:3] == [0, 0, 0]
    assert used[3] > 0 and used[5] > used[3]


def test_without_start_model_use_begins_at_once():
    market = Market(config=base())
    market.step()
    assert market.customers.uses_model.sum() > 0


def test_token_price_cut_raises_volume_and_keeps_token_bill_at_unit_elasticity():
    # The model layer tied to the cloud, so that the cut cannot move buyers between models
    # (tests/test_model_choice.py checks that it does when models are chosen apart).
    plain = base(**{"models.choose_apart": False})
    cut = base(**{"models.choose_apart": False, "pricing.token_price_cuts": [{"quarter": 4, "cut": 0.9, "provider": "FullStack"}]})
    _, a = run(plain, 6)
    _, b = run(cut, 6)
    # Before the cut the two runs are identical.
    assert a[3] == b[3]
    fa, fb = a[4]["FullStack"], b[4]["FullStack"]
    # Same customers in quarter 4 (the cut acts in service, after choice): volume x10.
    assert fa["compute"] == fb["compute"] and fa["tokens"] > 0
    assert fb["tokens"] == pytest.approx(10 * fa["tokens"], rel=1e-5)
    # The porter did not cut: its token volume is unchanged.
    assert b[4]["Porter"]["tokens"] == pytest.approx(a[4]["Porter"]["tokens"], rel=1e-6)
    # Tokens are billed at a tenth of the compute price: at elasticity 1 the bill for tokens is
    # unchanged, scaled by the part of demand that capacity could serve.
    for f, cut in ((fa, 1.0), (fb, 0.1)):
        served = min(1.0, 1.0 / f["util"])
        expected = (f["compute"] + f["tokens"] * f["intensity"] * cut) * served
        assert f["billed"] == pytest.approx(expected, rel=1e-6)
    assert fb["util"] > fa["util"]  # ten times the tokens need more compute


def test_token_price_factor_multiplies_cuts_in_force():
    cfg = base(**{"pricing.token_price_cuts": [{"quarter": "2025Q3", "cut": 0.5},
                                                {"quarter": "2026Q1", "cut": 0.8, "provider": "Porter"}]})
    assert token_price_factor(cfg, "Porter", 1) == 1.0
    assert token_price_factor(cfg, "Porter", 2) == 0.5
    assert token_price_factor(cfg, "Porter", 4) == pytest.approx(0.1)
    assert token_price_factor(cfg, "FullStack", 4) == 0.5


def test_token_price_cut_lowers_billed_token_revenue_below_served_compute():
    cfg = base(**{"pricing.token_price_cuts": [{"quarter": 0, "cut": 0.99}], "demand.token_share": 1.0})
    _, rows = run(cfg, 3)
    f = rows[2]["FullStack"]
    assert f["tokens"] > 0 and f["billed"] < f["served"]  # tokens billed at 1 % of the compute price


def test_unknown_provider_in_price_cut_is_refused():
    with pytest.raises(ConfigError) as err:
        base(**{"pricing.token_price_cuts": [{"quarter": 1, "cut": 0.5, "provider": "Nobody"}]})
    assert "token_price_cuts" in str(err.value) and "FullStack" in str(err.value)


@pytest.mark.parametrize("value", [1.0, -0.1])
def test_cut_out_of_range_is_refused(value):
    with pytest.raises(ConfigError) as err:
        base(**{"pricing.token_price_cuts": [{"quarter": 1, "cut": value}]})
    assert "token_price_cuts" in str(err.value) and ("<= 0.999" in str(err.value) or ">= 0" in str(err.value))


def test_bad_model_services_start_is_refused():
    with pytest.raises(ConfigError) as err:
        base(**{"demand.model_services_start": "2023Q5"})
    assert "model_services_start" in str(err.value)
