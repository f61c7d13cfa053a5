"""Access changes in HaloITSM: the request queue, planning, applying, ticketing (plain Python),
and the Dagster op, job and sensor that run them."""
