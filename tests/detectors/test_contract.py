"""The tracks contract: one declaration (the Pydantic models), one shipped JSON Schema."""

from __future__ import annotations

import jsonschema
import pytest

from detectors.contract import SCHEMA_PATH, SCHEMA_VERSION, TracksDocument, json_schema, load_schema


def test_the_shipped_schema_is_what_the_models_generate():
    """Edit detectors/contract.py, then: python -m detectors.contract > detectors/contracts/tracks.schema.json"""
    assert load_schema() == json_schema(), f"{SCHEMA_PATH} is stale: regenerate it"


def test_the_schema_names_its_version():
    schema = load_schema()
    assert schema["$id"].endswith(f"/{SCHEMA_VERSION}")
    assert schema["properties"]["schema_version"]["default"] == SCHEMA_VERSION
    jsonschema.Draft202012Validator.check_schema(schema)


def test_a_track_needs_three_observations_and_no_unknown_fields():
    obs = {"mjd": 60000.0, "ra": 10.0, "dec": 5.0}
    good = {
        "schema_version": SCHEMA_VERSION,
        "tracks": [{"id": "AH00001", "observations": [obs] * 3}],
    }
    TracksDocument.model_validate(good)
    jsonschema.validate(good, load_schema())
    for bad in (
        {**good, "tracks": [{"id": "AH00001", "observations": [obs] * 2}]},
        {**good, "tracks": [{"id": "AH00001", "observations": [obs] * 3, "colour": "red"}]},
        {**good, "tracks": [{"id": "AH00001", "observations": [{**obs, "ra": "ten"}] * 3}]},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, load_schema())
