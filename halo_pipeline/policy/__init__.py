"""The access policy: the file, its rules resolved against the warehouse, and what they ask
of requests (approvals, durations, separation of duties) and of the pipeline (expiries,
leavers). Plain Python: Dagster wires it in `defs/policy.py`."""
