"""Access reviews: campaigns that snapshot grants, record who kept or revoked each, file the
revokes, and report the outcome for auditors. Plain Python: no Dagster here."""
