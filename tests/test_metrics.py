"""Metrics: shares, HHI (0-10,000 scale), concentration ratios CR3/CR5 and the recorded rows."""

import numpy as np
import pandas as pd
import pytest

from sim import metrics
from sim.customers import NO_PROVIDER
from sim.model import Market
from sim.simulate import simulate
from tests.conftest import make_config, provider


def test_hhi_is_on_the_0_to_10000_scale():
    assert metrics.hhi(np.array([1.0])) == pytest.approx(10_000.0)  # monopoly
    assert metrics.hhi(np.full(4, 0.25)) == pytest.approx(2_500.0)  # four equal firms: 10,000 / 4
    assert metrics.hhi(np.array([0.5, 0.3, 0.2])) == pytest.approx(50**2 + 30**2 + 20**2)
    assert metrics.hhi(np.zeros(3)) == 0.0


def test_concentration_ratio_sums_the_k_largest_shares():
    shares = np.array([0.05, 0.30, 0.02, 0.25, 0.10, 0.08, 0.20])  # unsorted on purpose
    assert metrics.concentration_ratio(shares, 1) == pytest.approx(0.30)
    assert metrics.concentration_ratio(shares, 3) == pytest.approx(0.30 + 0.25 + 0.20)
    assert metrics.concentration_ratio(shares, 5) == pytest.approx(0.30 + 0.25 + 0.20 + 0.10 + 0.08)
    assert metrics.concentration_ratio(shares, 7) == pytest.approx(1.0)
    assert metrics.concentration_ratio(shares[:2], 3) == pytest.approx(0.35), "fewer firms than k: all of them"


def test_concentration_of_many_rows_equals_the_one_row_functions_to_the_last_bit():
    # The recorder computes every metric's HHI and CR3/CR5 in one call; that must not move a
    # recorded number by a rounding (numpy sums 8 or more values with a different association).
    rng = np.random.default_rng(3)
    for providers in range(1, 17):
        shares = rng.dirichlet(np.full(providers, 0.7), size=7)
        shares[0] = 0.0
        hhis, cr3, cr5 = metrics.concentration(shares)
        for i, row in enumerate(shares):
            assert hhis[i] == metrics.hhi(row)
            assert cr3[i] == metrics.concentration_ratio(row, 3)
            assert cr5[i] == metrics.concentration_ratio(row, 5)


def test_shares_sum_to_one_or_are_all_zero():
    values = np.array([3.0, 1.0, 0.0, 4.0])
    assert metrics.shares_of(values) == pytest.approx([0.375, 0.125, 0.0, 0.5])
    empty = metrics.shares_of(np.zeros(3))
    assert empty.dtype == float and (empty == 0).all()


@pytest.fixture  # per test, not per module: mutmut credits a run only to the test that ran it
def six_providers():
    """Six providers of clearly different sizes, so that the k largest and k smallest differ."""
    sizes = [0.35, 0.25, 0.15, 0.12, 0.08, 0.05]
    providers = [provider(f"P{i}", initial_share=s, compute=1e6 * s) for i, s in enumerate(sizes)]
    return simulate(make_config(providers, customers=3000, quarters=4))


@pytest.mark.parametrize("metric", metrics.METRICS)
def test_recorded_concentration_matches_the_recorded_shares(six_providers, metric):
    providers, market = six_providers.providers, six_providers.market.set_index("step")
    for step, rows in providers.groupby("step"):
        shares = np.sort(rows[f"share_{metric}"].to_numpy())[::-1]
        assert shares.sum() == pytest.approx(1.0)
        row = market.loc[step]
        assert row[f"cr3_{metric}"] == pytest.approx(shares[:3].sum())
        assert row[f"cr5_{metric}"] == pytest.approx(shares[:5].sum())
        assert row[f"hhi_{metric}"] == pytest.approx(np.sum((100 * shares) ** 2))
        assert shares[0] < row[f"cr3_{metric}"] < row[f"cr5_{metric}"] < 1.0
        assert 10_000 / 6 < row[f"hhi_{metric}"] < 10_000


def test_recorded_provider_rows_carry_the_providers_state(six_providers):
    providers, market = six_providers.providers, six_providers.market
    assert len(providers) == 6 * 4 and (providers["status"] == "active").all()
    for step, rows in providers.groupby("step"):
        row = market.set_index("step").loc[step]
        assert row["total_revenue"] == pytest.approx(rows["revenue"].sum())
        assert row["total_tokens"] == pytest.approx(rows["tokens"].sum())
        assert row["active_providers"] == 6
        assert rows["customers"].sum() > 0 and rows["model_users"].sum() > 0
        for metric in metrics.METRICS:
            assert rows[f"share_{metric}"].to_numpy() == pytest.approx(rows[metric] / rows[metric].sum())


FLOW_COLUMNS = ["quarter", "step", "from", "to", "customers"]


def test_flows_record_who_moved_where_and_keep_their_columns_when_nobody_moved():
    segments = {s: {"renewal_hazard": 0.0} for s in ("internet", "enterprise", "government", "startup", "overseas")}
    still = simulate(make_config(n_identical=2, customers=500, quarters=3,
                                 demand={"bass_p": 0.0, "bass_q": 0.0, "segments": segments}))
    assert still.flows.empty and list(still.flows.columns) == FLOW_COLUMNS
    moving = simulate(make_config(n_identical=2, customers=2000, quarters=3, demand={"bass_p": 0.2}))
    flows = moving.flows
    assert list(flows.columns) == FLOW_COLUMNS and len(flows) > 0
    joined = flows[flows["from"] == metrics.NONE_LABEL].groupby("step")["customers"].sum()
    assert (joined == moving.market.set_index("step")["new_adopters"]).all(), "every new adopter chose a provider"
    assert set(flows["quarter"]) <= set(moving.market["quarter"])


def test_longest_overload_counts_consecutive_quarters_above_the_limit():
    rows = pd.DataFrame({
        "provider": ["B"] * 7 + ["A"] * 7,
        "utilisation": [1.6, 1.7, 0.9, 1.6, 1.6, 1.6, 1.2,      # B: spells of 2 and 3
                        2.0, 2.0, 1.9, 1.5, 1.6, np.nan, 1.7],  # A: exactly at the limit is not over; NaN breaks
    })
    assert metrics.longest_overload(rows, limit=1.5) == {"B": 3, "A": 3}
    assert metrics.longest_overload(rows, limit=5.0) == {"B": 0, "A": 0}
    assert metrics.longest_overload(rows.iloc[:0], limit=1.5) == {}


def test_recorded_rows_match_the_market_state_of_their_quarter():
    config = make_config(n_identical=3, customers=2000, quarters=3, demand={"bass_p": 0.1})
    market = Market(config=config)
    for _ in range(3):
        market.step()
    providers, quarters, _ = market.recorder.frames()
    last = quarters.iloc[-1]
    people = market.customers
    assert list(quarters["quarter"]) == ["2025Q1", "2025Q2", "2025Q3"] and list(quarters["step"]) == [0, 1, 2]
    assert last["adopted"] == people.adopted.sum() and last["new_adopters"] == market.new_adopters > 0
    assert last["churn"] == market.churn and last["frontier"] == market.frontier
    assert last["open_capability"] == market.open_capability > 0
    assert last["active_providers"] == 3 and last["entries"] == last["exits"] == 0
    rows = providers[providers["step"] == 2].set_index("provider")
    for p in market.active_providers():
        row = rows.loc[p.name]
        assert row["model_users"] == np.count_nonzero(people.model_provider == p.slot) > 0
        assert row["customers"] == np.count_nonzero(people.provider == p.slot) == p.customers
        assert (row["compute"], row["tokens"], row["revenue"]) == pytest.approx((p.customer_compute, p.tokens, p.revenue))
        assert (row["price"], row["cash"], row["capability"]) == pytest.approx((p.price, p.cash, p.capability))


SEGMENTS = ("internet", "enterprise", "government", "startup", "overseas")


@pytest.mark.parametrize("count_by_slot_from", [metrics.COUNT_BY_SLOT_FROM, 0])
def test_recorded_rows_follow_the_providers_and_customers_state(monkeypatch, count_by_slot_from):
    """Each quarter's rows: the three layers' revenue from billed GPU-quarters at the price, model
    users by model provider (by a bincount, and by one count per slot as a large run counts them),
    token totals, multi-homers, and the market totals sum the rows."""
    monkeypatch.setattr(metrics, "COUNT_BY_SLOT_FROM", count_by_slot_from)
    providers = [provider("A", initial_share=0.5, captive_tokens=50.0), provider("B", initial_share=0.3),
                 provider("C", initial_share=0.2, has_model=False)]
    config = make_config(providers, customers=3000, multihoming={"share": 0.5, "split": 0.3},
                         models={"token_unit": 2.0e6}, pricing={"token_compute": 0.5},
                         demand={"segments": {s: {"model_use_rate": 0.5} for s in SEGMENTS}})
    market = Market(config=config)
    for _ in range(3):
        market.step()
        people = market.customers
        rows = {r["provider"]: r for r in market.recorder.provider_rows[-3:]}
        row = market.recorder.market_rows[-1]
        for p in market.active_providers():
            r = rows[p.name]
            assert r["cloud_revenue"] == pytest.approx(p.price * p.billed_compute_gpu / 1e6, rel=1e-12)
            assert r["maas_revenue"] == pytest.approx(p.price * p.billed_token_gpu / 1e6, rel=1e-12)
            assert r["ai_cloud_revenue"] == pytest.approx(p.price * (p.billed_ai_gpu + p.billed_token_gpu) / 1e6, rel=1e-12)
            assert r["model_users"] == np.count_nonzero(people.model_provider == p.slot)
            assert (r["token_factor"], r["training_share"], r["standing"]) == (p.token_factor, p.training_share, p.standing)
            assert (r["tokens_demanded"], r["unserved_tokens"], r["captive_tokens"]) == (
                p.tokens_demanded, p.unserved_tokens, p.captive_tokens_quarter)
        for total, column in (("total_cloud_revenue", "cloud_revenue"), ("total_ai_cloud_revenue", "ai_cloud_revenue"),
                              ("total_maas_tokens", "maas_tokens"), ("total_tokens_demanded", "tokens_demanded"),
                              ("total_unserved_tokens", "unserved_tokens"), ("total_captive_tokens", "captive_tokens")):
            assert row[total] == pytest.approx(sum(r[column] for r in rows.values()), rel=1e-12), total
        assert row["maas_tokens_trillion"] == row["total_maas_tokens"] * 2.0e6 / 1e12
        assert row["multihoming_customers"] == np.count_nonzero(people.second_provider != NO_PROVIDER)
        assert row["total_model_users"] == np.count_nonzero(people.model_provider != NO_PROVIDER)
    assert row["total_maas_tokens"] > 0 and row["total_captive_tokens"] > 0 and row["multihoming_customers"] > 100
    assert row["total_ai_cloud_revenue"] > row["total_cloud_revenue"] * 0.01
    assert min(r["model_users"] for r in rows.values()) > 0  # porters sell the open model


def test_entries_and_exits_of_a_quarter_are_listed_and_one_quarter_makes_a_frame():
    market = Market(config=make_config(n_identical=3, customers=200))
    market.step()
    providers, market_frame, _ = market.recorder.frames()
    assert len(market_frame) == 1 and len(providers) == 3 and "total_maas_tokens" in market_frame.columns
    assert (providers["quarter"] == market_frame.loc[0, "quarter"]).all()
    market.entries, market.exits = ["E1", "E2"], ["P0", "P1"]
    market.recorder.record(market)
    row = market.recorder.market_rows[-1]
    assert (row["entered"], row["exited"], row["entries"], row["exits"]) == ("E1|E2", "P0|P1", 2, 2)


def test_a_provider_gone_in_an_earlier_quarter_is_recorded_empty():
    from sim.submodels import entry_exit

    market = Market(config=make_config(n_identical=3, customers=300))
    market.step()
    gone = market.active_providers()[0]
    entry_exit.exit_provider(market, gone)
    market.exits = []  # it left in an earlier quarter
    live = market.active_providers()[0]
    live.standing = 0.7
    market.recorder.record(market)
    row = market.recorder.provider_rows[-3]
    assert row["provider"] == gone.name and row["status"] == "exited"
    assert np.isnan(row["price"]) and np.isnan(row["token_factor"]) and np.isnan(row["training_share"])
    for column in ("capability", "compute_stock", "capex", "opex", "internal_revenue", "parent_funding", "gpus_bought", "standing",
                   "maas_revenue", "tokens_demanded", "unserved_tokens", "captive_tokens", *metrics.METRICS):
        assert row[column] == 0.0, column
    assert market.recorder.provider_rows[-2]["standing"] == 0.7
    _, _, flows = market.recorder.frames()
    assert len(flows) > 0 and flows[["from", "to"]].notna().all().all()
    assert set(flows["to"]) <= {*market.names, metrics.NONE_LABEL}


def test_shares_of_values_summing_to_one_or_less_and_of_nothing():
    assert metrics.shares_of(np.array([0.2, 0.3])) == pytest.approx([0.4, 0.6])
    nothing = metrics.shares_of(np.array([0, 0]))
    assert nothing.dtype == float and nothing.tolist() == [0.0, 0.0]


def test_a_batch_records_each_run_from_its_own_state_and_a_run_on_its_own_past_its_horizon():
    """The batch records all its runs at once, each from its own providers and customers (its
    exits and entries named in its row only); ``market.recorder.record()`` records that run alone,
    into arrays that grow past run.quarters, and the other runs' tables do not move."""
    from sim.batch import Batch

    configs = [make_config(n_identical=3, customers=400, quarters=2, seed=s, demand={"bass_p": 0.1},
                           multihoming={"share": 0.5, "split": 0.3}) for s in (1, 2, 3)]
    batch = Batch(configs)
    batch.step()
    batch.step()
    batch.markets[1].exits, batch.markets[1].entries = ["P1"], ["E9"]
    batch.recorder.record()  # a third record of every run: past the horizon, the arrays grow
    for r, market in enumerate(batch.markets):
        providers, quarters, flows = market.recorder.frames()
        last = quarters.iloc[-1]
        named = ("P1", "E9", 1) if r == 1 else ("", "", 0)
        assert (last["exited"], last["entered"], last["exits"]) == named and len(quarters) == 3
        people = market.customers
        assert last["adopted"] == people.adopted.sum() and last["multihoming_customers"] == (people.second_provider != -1).sum()
        users = np.bincount(people.model_provider.astype(np.intp) + 1, minlength=4)[1:]
        assert list(providers["model_users"].iloc[-3:]) == list(users) and last["total_model_users"] == users.sum() > 0
        moved = flows[flows["step"] == 2]
        names = [metrics.NONE_LABEL, *market.names]
        assert sorted(zip(moved["from"], moved["to"], moved["customers"])) == sorted(
            (names[i], names[j], int(market.flows[i, j])) for i, j in zip(*np.nonzero(market.flows)))
    first = batch.markets[0]
    before = [m.recorder.frames() for m in batch.markets]
    for _ in range(3):
        first.recorder.record()
    for r in (1, 2):
        for a, b in zip(before[r], batch.markets[r].recorder.frames()):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    providers, quarters, flows = first.recorder.frames()
    assert list(quarters["step"]) == [0, 1, 2, 2, 2, 2] and len(providers) == 6 * 3
    pd.testing.assert_frame_equal(quarters.iloc[:3], before[0][1], check_exact=True)
    # The state has not moved since the third record: the numbers repeat it.
    numbers = [c for c in quarters.columns if c not in ("quarter", "step")]
    pd.testing.assert_frame_equal(quarters[numbers].iloc[3:].reset_index(drop=True),
                                  quarters[numbers].iloc[[2, 2, 2]].reset_index(drop=True), check_exact=True)
    numbers = [c for c in providers.columns if c not in ("quarter", "step")]
    pd.testing.assert_frame_equal(providers[numbers].iloc[9:].reset_index(drop=True),
                                  providers[numbers].iloc[[6, 7, 8] * 3].reset_index(drop=True), check_exact=True)
    assert len(flows) == len(before[0][2]) + 3 * len(flows[flows["step"] == 1])


def test_shares_of_a_small_total_and_of_none():
    """Shares are value / total over the quarter's providers for any positive total (also below 1)
    and 0 when the total is 0; HHI follows."""
    market = Market(config=make_config(n_identical=3, customers=300))
    market.step()
    tokens = market.provider_table.tokens
    tokens[0] = [0.2, 0.3, 0.0]
    market.recorder.record()
    rows = market.recorder.provider_rows[-3:]
    assert [r["share_tokens"] for r in rows] == [0.2 / 0.5, 0.3 / 0.5, 0.0]
    assert market.recorder.market_rows[-1]["hhi_tokens"] == metrics.hhi(np.array([0.4, 0.6, 0.0]))
    tokens[0] = 0.0
    market.recorder.record()
    assert [r["share_tokens"] for r in market.recorder.provider_rows[-3:]] == [0.0, 0.0, 0.0]
    assert market.recorder.market_rows[-1]["hhi_tokens"] == 0.0 and market.recorder.market_rows[-1]["cr3_tokens"] == 0.0


def test_rows_arrow_tables_and_latest_values_are_the_frames():
    import pyarrow as pa

    market = Market(config=make_config(n_identical=3, customers=500, quarters=3, demand={"bass_p": 0.1}))
    empty = market.recorder.frames()
    assert empty[0].empty and empty[1].empty and empty[2].empty and list(empty[2].columns) == FLOW_COLUMNS
    assert market.recorder.tables()["market"].num_rows == 0 and market.recorder.provider_rows == []
    market.run()
    recorder = market.recorder
    providers, quarters, flows = recorder.frames()
    assert len(flows) > 0
    whole = {"step", "model_users", "adopted", "new_adopters", "active_providers", "entries", "exits", "total_model_users",
             "multihoming_customers", "customers"}
    for frame in (providers, quarters, flows):
        for column in frame.columns:
            kind = frame[column].dtype.kind
            if column in ("quarter", "provider", "status", "entered", "exited", "from", "to"):
                assert kind in "OT" or str(frame[column].dtype) == "str", column
            else:
                expected = "i" if column in whole and not (frame is providers and column == "customers") else "f"
                assert kind == expected and frame[column].dtype.itemsize == 8, column
    pd.testing.assert_frame_equal(pd.DataFrame(recorder.provider_rows), providers, check_exact=True)
    pd.testing.assert_frame_equal(pd.DataFrame(recorder.market_rows), quarters, check_exact=True)
    pd.testing.assert_frame_equal(pd.DataFrame(recorder.flow_rows), flows, check_exact=True)
    tables = recorder.tables()
    for name, frame, rows in (("providers", providers, recorder.provider_rows), ("market", quarters, recorder.market_rows)):
        assert tables[name].schema == pa.Table.from_pylist(rows).schema
        pd.testing.assert_frame_equal(tables[name].to_pandas(), frame, check_exact=True)
    same = lambda a, b: a == b or (a != a and b != b)  # noqa: E731 - NaN equals NaN
    for record, row in ((2, quarters.iloc[-1]), (0, quarters.iloc[0])):
        for column in quarters.columns:
            value = recorder.at(record, column) if record == 0 else recorder.latest(column)
            assert same(value, row[column]) and type(value) is type(row[column].item() if hasattr(row[column], "item") else row[column]), column
    for slot, (_, row) in enumerate(providers.tail(3).iterrows()):
        for column in providers.columns:
            value = recorder.latest(column, slot)
            assert same(value, row[column]), (slot, column)
            assert same(recorder.at(0, column, slot), providers.iloc[slot][column]), (slot, column)


def test_each_run_of_a_pair_counts_its_own_model_users():
    from sim.batch import Batch

    batch = Batch([make_config(n_identical=3, customers=300, seed=s) for s in (1, 2)])
    batch.step()
    batch.markets[1].recorder.record()  # the second run alone, from its own customers
    assert len(batch.markets[0].recorder.market_rows) == 1 and len(batch.markets[1].recorder.market_rows) == 2
    for market in batch.markets:
        users = np.bincount(market.customers.model_provider.astype(np.intp) + 1, minlength=4)[1:]
        people = market.customers
        for row in market.recorder.market_rows:
            assert row["adopted"] == people.adopted.sum() and row["total_model_users"] == users.sum() > 0
        assert [r["model_users"] for r in market.recorder.provider_rows[-3:]] == list(users)


def test_records_read_every_quarter_equal_records_read_at_the_end():
    """The recorder keeps a quarter's table numbers and works out its metrics when they are read
    (all records not yet worked out at once): reading after every quarter, after some or only at
    the end gives the same tables, bit for bit (fails if a record were worked out twice)."""
    providers = [provider("A", initial_share=0.5), provider("B", initial_share=0.3), provider("C", initial_share=0.2)]
    config = make_config(providers, customers=1500, quarters=8)
    markets = [Market(config=config) for _ in range(3)]
    for q in range(8):
        for m in markets:
            m.step()
        markets[0].recorder.latest("hhi_revenue")  # every quarter
        if q in (2, 3, 6):
            markets[1].recorder.latest("share_revenue", 1)  # now and then
    tables = [m.recorder.frames() for m in markets]
    for other in tables[1:]:
        for a, b in zip(tables[0], other):
            pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert tables[0][1]["hhi_revenue"].gt(0).all()
