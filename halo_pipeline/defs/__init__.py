"""Dagster wiring, one module per stage: sync, access models, provisioning, operations.

Each module holds its stage's Dagster definitions and nothing else; the work is done by the
plain layers below (halo, warehouse, sql_models, provisioning), which never import Dagster.
"""
