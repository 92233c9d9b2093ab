"""JSON Schema files for producer teams, generated from the event models."""

from __future__ import annotations

import json
from pathlib import Path

from claimflow.contract.models import EVENT_MODELS


def rendered() -> dict[str, str]:
    out = {}
    for model in EVENT_MODELS:
        schema = model.model_json_schema(mode="validation")
        name = schema["properties"]["type"]["const"]
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://claimflow.example/schemas/v1/{name}.schema.json",
            **schema,
            "additionalProperties": True,
        }
        for prop in schema["properties"].values():
            if prop.get("format") == "date-time":
                prop["description"] = (
                    prop.get("description", "")
                    + " RFC 3339 with an explicit offset (Z or +hh:mm), in the years 2000 to 2099."
                ).strip()
                prop["pattern"] = r"(Z|z|[+-]\d{2}:\d{2})$"
        out[f"{name}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write_schemas(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered().items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def check_schemas(folder: Path) -> list[str]:
    """Names of schema files that are missing or differ from what the models render."""
    stale = []
    for name, text in rendered().items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale
