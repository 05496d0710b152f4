"""The sync v1 documents say what the code does: every event type, command type and field."""

from __future__ import annotations

import json
from pathlib import Path

from lockerd.domain import Event
from lockerd.sync.commands import SCHEMAS

ROOT = Path(__file__).resolve().parent.parent
SPEC = json.loads((ROOT / "docs" / "sync-v1.openapi.json").read_text())
PROSE = (ROOT / "docs" / "sync-protocol.md").read_text()


def test_the_openapi_file_lists_every_event_and_command_type() -> None:
    assert SPEC["x-event-types"] == [e.value for e in Event]
    assert SPEC["x-command-types"] == list(SCHEMAS)
    assert set(SPEC["paths"]) == {
        "/v1/lockers/{locker_id}/events",
        "/v1/lockers/{locker_id}/commands",
    }


def test_each_event_type_binds_its_data_schema() -> None:
    bound = [
        (rule["if"]["properties"]["type"]["const"], rule["then"]["properties"]["data"]["$ref"])
        for rule in SPEC["components"]["schemas"]["Event"]["allOf"]
    ]
    assert bound == [(e.value, f"#/components/schemas/data.{e.value}") for e in Event]
    assert all(f"data.{e.value}" in SPEC["components"]["schemas"] for e in Event)


def test_each_command_schema_has_the_fields_the_locker_checks() -> None:
    for schema in SPEC["components"]["schemas"]["Command"]["oneOf"]:
        kind = schema["properties"]["type"]["const"]
        data = schema["properties"]["data"]
        fields = SCHEMAS[kind]
        assert set(data["properties"]) == set(fields), kind
        assert data["required"] == [f for f, (required, _) in fields.items() if required], kind
        assert ("signature" in schema["required"]) == (kind == "compartment.open")


def test_the_protocol_page_describes_every_event_and_command() -> None:
    for kind in [e.value for e in Event] + list(SCHEMAS):
        assert f"`{kind}`" in PROSE, kind
