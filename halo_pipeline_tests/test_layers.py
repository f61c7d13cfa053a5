"""The plain layers stand alone: none imports Dagster, and none imports a layer above it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each plain layer, and the project modules it may load (its own and those below it).
LAYERS = {
    "halo_pipeline.halo": {"halo"},
    "halo_pipeline.simulator": {"simulator"},
    "halo_pipeline.warehouse": {"warehouse", "halo"},
    "halo_pipeline.sql_models.project": {"sql_models", "warehouse", "halo"},
    "halo_pipeline.sync": {"sync", "warehouse", "halo"},
    "halo_pipeline.policy.gate": {"policy", "warehouse", "halo"},
    "halo_pipeline.provisioning.runner": {"provisioning", "policy", "warehouse", "halo"},
    "halo_pipeline.provisioning.cli": {"provisioning", "policy", "warehouse", "halo", "shell"},
    "halo_pipeline.policy.cli": {"policy", "provisioning", "warehouse", "halo", "shell"},
    "halo_pipeline.reviews.cli": {
        "reviews",
        "policy",
        "provisioning",
        "warehouse",
        "halo",
        "shell",
        "query_output",
    },
}
LOADED = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(("module", "allowed"), LAYERS.items())
def test_a_plain_layer_loads_no_dagster_and_nothing_above_it(module, allowed):
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", LOADED, module], capture_output=True, text=True, check=True
        ).stdout
    )

    assert [name for name in loaded if name.split(".")[0].startswith("dagster")] == []
    project = {name.split(".")[1] for name in loaded if name.startswith("halo_pipeline.")}
    assert project <= allowed, f"{module} loads {sorted(project - allowed)}"
