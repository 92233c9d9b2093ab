from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from claimflow.config import ConfigError, load_config, parse_config

MINIMAL = {"teams": ["motor"], "hubs": [{"id": "hub-1", "centers": ["center-1"]}]}


def _error(data: object, source: str = "cf.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data, source)
    return str(info.value)


def test_bundled_example_loads_with_documented_defaults() -> None:
    config = load_config()
    assert config.timezone == "Europe/London"
    assert config.defaults.same_day_cutoff == time(12, 0)
    assert config.team_settings["motor"].working_hours is not None
    assert config.team_settings["priority-client"].working_hours.end == time(20, 0)  # type: ignore[union-attr]
    assert config.hub_centers == {"hub-1": ("center-1",), "hub-2": ("center-1",)}


def test_contract_example_is_accepted() -> None:
    config = parse_config(
        {
            "timezone": "Europe/London",
            "clients": [
                {
                    "id": "victor-agency",
                    "timezone": "America/New_York",
                    "same_day_cutoff": "12:00",
                    "due": "18:00",
                    "business_days": ["mon", "tue", "wed", "thu", "fri"],
                }
            ],
            "teams": ["priority-client", "international-settlements"],
            "hubs": [{"id": "hub-1", "centers": ["center-1"]}],
        }
    )
    assert [t.id for t in config.teams] == ["priority-client", "international-settlements"]


def test_unquoted_yaml_time_is_read_as_a_time(tmp_path: Path) -> None:
    # YAML 1.1 reads 12:00 as the number 720; the loader must still mean noon.
    path = tmp_path / "cf.yaml"
    path.write_text(
        "teams: [motor]\nhubs: [{id: hub-1, centers: [c]}]\ndefaults: {same_day_cutoff: 12:00}\n"
    )
    assert load_config(path).defaults.same_day_cutoff == time(12, 0)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (
            {"clients": [{"id": "x", "timezone": "Europe/Londn"}]},
            "cf.yaml: clients[0].timezone: unknown time zone 'Europe/Londn'",
        ),
        (
            {"clients": [{"id": "x", "due": "25:00"}]},
            "cf.yaml: clients[0].due: expected a local time",
        ),
        ({"teams": ["a", "a"]}, "cf.yaml: teams: team 'a' is listed twice"),
        ({"hubs": [{"id": "h", "centers": []}]}, "cf.yaml: hubs[0].centers:"),
        (
            {"detectors": {"inflow_drop": {"drop_rato": 0.3}}},
            "cf.yaml: detectors.inflow_drop.drop_rato: unknown key",
        ),
        (
            {"defaults": {"same_day_cutoff": "19:00"}},
            "cf.yaml: defaults: same_day_cutoff 19:00 is after due",
        ),
        ({"engine": {"window": "7m", "evaluate_every": "2m"}}, "whole multiple of evaluate_every"),
        (
            {"engine": {"allowed_lateness": "soon"}},
            "cf.yaml: engine.allowed_lateness: expected a duration",
        ),
        (
            {"teams": [{"id": "t", "working_hours": {"start": "18:00", "end": "08:00"}}]},
            "cf.yaml: teams[0].working_hours: start 18:00 must be before end 08:00",
        ),
        (
            {"clients": [{"id": "x", "business_days": ["monday"]}]},
            "cf.yaml: clients[0].business_days[0]",
        ),
    ],
)
def test_errors_name_file_key_and_problem(patch: dict[str, object], expected: str) -> None:
    assert expected in _error({**MINIMAL, **patch})


def test_missing_required_keys() -> None:
    message = _error({"timezone": "Europe/London"})
    assert "cf.yaml: teams: Field required" in message
    assert "cf.yaml: hubs: Field required" in message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("teams: [motor\nhubs: x\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: line \d+, column \d+: not valid YAML"):
        load_config(path)


def test_unreadable_file_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"expected a mapping"):
        load_config(path)
