"""docs/model.md keeps up with the code: every config key is documented, every submodel
module has its own section, and the sections follow the schedule of Market.step()."""

import inspect
import re
import typing
from pathlib import Path

from pydantic import BaseModel

from sim import config as cfg
from sim.model import SCHEDULE, Market

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "model.md"
SUBMODELS = ROOT / "sim" / "submodels"


def section_models(model: type[BaseModel], seen: dict[str, type[BaseModel]] | None = None) -> dict[str, type[BaseModel]]:
    """Every pydantic model reachable from ``model`` through field annotations
    (lists, dicts, optionals and Annotated included)."""
    seen = {} if seen is None else seen
    if model.__name__ in seen:
        return seen
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for inner in models_in(field.annotation):
            section_models(inner, seen)
    return seen


def models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in models_in(arg)]


def headings() -> list[str]:
    return [line for line in DOC.read_text().splitlines() if line.startswith("#")]


def test_walk_finds_the_known_sections():
    # Guards the walk itself: if it found nothing, the next test would pass vacuously.
    found = section_models(cfg.Config)
    known = ["Config", "RunConfig", "DemandConfig", "SegmentConfig", "PricingConfig", "ChoiceConfig",
             "ServiceConfig", "SurgeConfig", "FinanceConfig", "CapabilityConfig", "OpenWeightsConfig",
             "EntryConfig", "ProviderConfig", "CommittedCapex", "EntrantConfig", "InstalledBaseConfig", "InvestmentConfig"]
    assert set(known) <= set(found), sorted(set(known) - set(found))
    # Every section class defined in sim/config.py is reachable from Config.
    defined = {name for name, obj in vars(cfg).items()
               if isinstance(obj, type) and issubclass(obj, cfg.Section) and obj is not cfg.Section}
    assert defined <= set(found), sorted(defined - set(found))


def test_every_config_field_is_documented():
    text = DOC.read_text()
    missing = sorted({f"{model.__name__}.{name}"
                      for model in section_models(cfg.Config).values()
                      for name in model.model_fields
                      if f"`{name}`" not in text})
    assert not missing, f"config fields not described in docs/model.md: {', '.join(missing)}"


def test_every_submodel_module_has_a_section():
    modules = sorted(p.stem for p in SUBMODELS.glob("*.py") if p.stem != "__init__")
    assert len(modules) >= 7
    lines = headings()
    missing = [m for m in modules if not any(f"sim/submodels/{m}.py" in h for h in lines)]
    assert not missing, f"submodels without a section heading in docs/model.md: {', '.join(missing)}"


def test_submodel_sections_follow_the_schedule():
    schedule = [module.__name__.rsplit(".", 1)[-1] for module, name in SCHEDULE
                if name == "step" and module.__name__.startswith("sim.submodels.")]
    assert len(schedule) >= 7, schedule
    lines = headings()
    position = {m: next(i for i, h in enumerate(lines) if f"sim/submodels/{m}.py" in h) for m in schedule}
    documented = sorted(schedule, key=position.get)
    assert documented == schedule, f"docs/model.md orders the submodels {documented}; sim.model.SCHEDULE runs {schedule}"


TABLE_SECTIONS = {
    "run": cfg.RunConfig, "demand": cfg.DemandConfig, "demand.segments": cfg.SegmentConfig,
    "pricing": cfg.PricingConfig, "pricing.token_price_cuts": cfg.TokenPriceCut, "choice": cfg.ChoiceConfig,
    "installed_base": cfg.InstalledBaseConfig, "investment": cfg.InvestmentConfig,
    "multihoming": cfg.MultihomingConfig, "multihoming.segments": cfg.MultihomingSegment, "models": cfg.ModelsConfig,
    "service": cfg.ServiceConfig, "service.surges": cfg.SurgeConfig, "finance": cfg.FinanceConfig,
    "capability": cfg.CapabilityConfig, "open_weights": cfg.OpenWeightsConfig, "entry": cfg.EntryConfig,
    "providers": cfg.ProviderConfig, "providers.committed_capex": cfg.CommittedCapex, "entrants": cfg.EntrantConfig,
    "parents": cfg.ParentConfig, "showcase": cfg.ShowcaseConfig,
}
ROW = re.compile(r"^\| (?P<section>[a-z_.]+) \| `(?P<key>\w+)` \| (?P<default>[^|]*) \|")
# 0.8, −0.3, 4,000, 2.5 × 10⁶, 10⁵
NUMBER = re.compile(r"^(?P<m>[−-]?[\d,]*\.?\d+)(?:\s*×\s*10(?P<exp>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)|(?P<pow>[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+))?")
SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def documented_defaults():
    """(section, key, number) for every parameter-table row whose default starts with a number."""
    for line in DOC.read_text().splitlines():
        row = ROW.match(line)
        if not row or row["section"] not in TABLE_SECTIONS:
            continue
        number = NUMBER.match(row["default"].strip())
        if not number:
            continue
        value = float(number["m"].replace(",", "").replace("−", "-"))
        if number["exp"]:
            value *= 10 ** int(number["exp"].translate(SUPERSCRIPT))
        elif number["pow"]:
            value **= int(number["pow"].translate(SUPERSCRIPT))
        yield row["section"], row["key"], value


def test_documented_defaults_match_the_code():
    """The parameter tables are written by hand; a default changed in sim/config.py without the
    document fails here.  Segment rows give the generic default of a new segment."""
    rows = list(documented_defaults())
    assert len(rows) > 40, "the table rows were not found: has their format changed?"
    wrong = []
    for section, key, value in rows:
        field = TABLE_SECTIONS[section].model_fields.get(key)
        assert field is not None, f"docs/model.md documents {section}.{key}, which the config does not have"
        default = field.default
        if isinstance(default, (int, float)) and not isinstance(default, bool) and abs(default - value) > 1e-9 * max(1, abs(value)):
            wrong.append(f"{section}.{key}: doc {value}, code {default}")
    assert not wrong, wrong
