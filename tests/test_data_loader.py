"""The observed-figures loader: the real file loads and keeps metrics apart; malformed rows
are refused with the file, the row and the column named."""

from pathlib import Path

import pytest

from sim.calibration.data import COLUMNS, MARKET_METRICS, DataError, load_observations, period_end

DATA = Path(__file__).resolve().parent.parent / "data" / "market_shares.csv"
HEADER = ",".join(COLUMNS)
GOOD = "china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,exact,"


def write(tmp_path, *rows, header=HEADER):
    path = tmp_path / "shares.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def problems(path):
    with pytest.raises(DataError) as err:
        load_observations(path)
    return err.value.problems


def test_real_file_loads_and_keeps_metrics_apart():
    obs = load_observations(DATA)
    assert len(obs) > 100
    for market, metrics in MARKET_METRICS.items():
        assert set(obs.loc[obs["market"] == market, "metric"]) <= metrics
    # The 2020Q1 starting shares of the China history are there, as Canalys published them.
    q1 = obs[(obs["market"] == "china_cloud") & (obs["metric"] == "spend_share") & (obs["period"] == "2020Q1")]
    assert dict(zip(q1["provider"], q1["value"])) == {"Alibaba Cloud": 44.5, "Huawei Cloud": 14.1,
                                                      "Tencent Cloud": 13.9, "Baidu AI Cloud": 8.6}
    # Spend shares of one market and quarter never add up to more than the whole market.
    shares = obs[obs["metric"] == "spend_share"].groupby(["market", "period"])["value"].sum()
    assert (shares <= 100.5).all()
    # Token shares live only in the model-services market.
    assert set(obs.loc[obs["metric"] == "token_share", "market"]) == {"china_maas"}


def test_good_row_loads(tmp_path):
    obs = load_observations(write(tmp_path, GOOD))
    assert obs.iloc[0]["value"] == 44.5 and obs.iloc[0]["qualifier"] == "exact" and obs.iloc[0]["row"] == 1


def test_empty_optional_cells_take_defaults(tmp_path):
    row = "china_cloud,top4_share,2020Q1,,81,percent,Canalys,2020-03-31,V,,"
    obs = load_observations(write(tmp_path, row))
    assert obs.iloc[0]["provider"] == "" and obs.iloc[0]["qualifier"] == "exact"


@pytest.mark.parametrize("row, column, words", [
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,144.5,percent,Canalys,2020-03-31,V,exact,", "value", "0 to 100"),
    ("china_cloud,token_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,exact,", "metric", "not a metric of market china_cloud"),
    ("china_cloud,market_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,exact,", "metric", "unknown metric"),
    ("china_cloud,spend_share,2020Q5,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,exact,", "period", "2022Q3"),
    ("china_cloud,spend_share,2020Q1,,44.5,percent,Canalys,2020-03-31,V,exact,", "provider", "needs a provider"),
    ("china_cloud,top4_share,2020Q1,Alibaba Cloud,81,percent,Canalys,2020-03-31,V,exact,", "provider", "market-wide"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,abc,percent,Canalys,2020-03-31,V,exact,", "value", "number"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,nan,percent,Canalys,2020-03-31,V,exact,", "value", "finite"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,US$ bn per quarter,Canalys,2020-03-31,V,exact,", "unit", "allowed: percent"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-04-30,V,exact,", "date", "2020-03-31"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,X,exact,", "quality", "V ("),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,roughly,", "qualifier", "lower_bound"),
    ("china_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,,2020-03-31,V,exact,", "source", "empty"),
    ("mars_cloud,spend_share,2020Q1,Alibaba Cloud,44.5,percent,Canalys,2020-03-31,V,exact,", "market", "china_cloud"),
])
def test_bad_row_is_refused_naming_file_row_and_column(tmp_path, row, column, words):
    path = write(tmp_path, GOOD, row)
    found = problems(path)
    assert len(found) == 1, found
    assert found[0].startswith(f"{path}: row 2 (line 3), column {column!r}:"), found[0]
    assert words in found[0], found[0]


def test_every_bad_row_is_reported_at_once(tmp_path):
    bad_value = GOOD.replace("44.5", "-3")
    bad_period = GOOD.replace("2020Q1", "20Q1")
    found = problems(write(tmp_path, bad_value, GOOD.replace("Alibaba", "Huawei"), bad_period))
    assert [p.split(",")[0].split(": ")[1] for p in found] == ["row 1 (line 2)", "row 3 (line 4)"]


def test_repeated_row_is_refused(tmp_path):
    found = problems(write(tmp_path, GOOD, GOOD.replace("44.5", "45")))
    assert found == [f"{tmp_path / 'shares.csv'}: row 2 (line 3): repeats row 1 (line 2) "
                     "(same market, metric, period, provider and qualifier)"]


def test_a_range_may_have_two_rows(tmp_path):
    low = "china_cloud,hhi,2020Q1,,2450,HHI,derived,2020-03-31,D,range_low,"
    high = "china_cloud,hhi,2020Q1,,2600,HHI,derived,2020-03-31,D,range_high,"
    assert len(load_observations(write(tmp_path, low, high))) == 2


def test_header_problems(tmp_path):
    no_unit = HEADER.replace(",unit", "")
    assert "missing column(s) unit" in problems(write(tmp_path, GOOD, header=no_unit))[0]
    extra = HEADER + ",comment"
    assert "unknown column(s) comment" in problems(write(tmp_path, GOOD + ",x", header=extra))[0]


def test_too_many_fields(tmp_path):
    found = problems(write(tmp_path, GOOD + ",surplus"))
    assert found[0].endswith("row 1 (line 2): 12 fields, the header has 11")


def test_empty_and_missing_files(tmp_path):
    assert problems(write(tmp_path))[0].endswith("no data rows")
    assert problems(tmp_path / "nope.csv")[0].endswith("no such data file")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00bad")
    assert "not UTF-8" in problems(binary)[0]


def test_cli_prints_data_errors_without_traceback(tmp_path, capsys):
    from sim.cli import main

    path = write(tmp_path, GOOD.replace("44.5", "144.5"))
    code = main(["validate", "configs/china_history_2020.toml", "--data", str(path), "--fit", "2020Q1:2023Q4",
                 "--replications", "1", "--workers", "1", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"error: {path}: row 1 (line 2), column 'value'" in err and "Traceback" not in err


def test_period_end():
    assert str(period_end("2024Q2")) == "2024-06-30" and str(period_end("2022")) == "2022-12-31"
