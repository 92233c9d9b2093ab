"""Every configuration key is documented, and the docs name no key that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from claimflow.config import Config

DOC = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if (
            isinstance(annotation, type)
            and issubclass(annotation, BaseModel)
            and name
            in {
                "defaults",
                "working_hours",
                "engine",
                "detectors",
                "inflow_drop",
                "hub_link_break",
                "sla_at_risk",
                "negative_feedback",
            }
        ):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_every_configuration_key_is_documented() -> None:
    documented = set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)*)`", DOC))
    missing = {
        k
        for k in _keys(Config)
        if k not in documented and not k.startswith(("clients", "teams", "hubs", "working_hours"))
    }
    assert missing == set()
    assert "working_hours.start" in DOC and "clients[].timezone" in DOC


def test_documented_detector_keys_exist() -> None:
    real = _keys(Config)
    named = set(re.findall(r"`((?:detectors|engine|defaults)\.[a-z_.]+)`", DOC))
    assert named - real == set()


def test_every_worker_setting_is_documented() -> None:
    from claimflow.streams.settings import env_names

    text = (Path(__file__).resolve().parents[2] / "docs" / "worker.md").read_text()
    missing = [name for name in env_names() if f"`{name}`" not in text]
    assert not missing, f"docs/worker.md does not describe {missing}"
