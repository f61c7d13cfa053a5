-- Syncs that cannot read every agent's memberships (a tenant where only each agent's detail
-- names its roles, halo/ladder.py) keep the history truthful:
-- * halo.agents.role_list: the list row's role names, so the next sync sees which changed;
-- * halo.sync_runs.memberships_why and detail_reads: why cheaper sources were not used, and
--   how many agent details the sync read;
-- * on each history period, `on_or_before`: it opened on the agent's first read, so the
--   membership was held on or before then, not added then; `added_after` / `removed_after`:
--   the agent's previous read, after which the change happened.
ALTER TABLE halo.agents ADD COLUMN IF NOT EXISTS role_list VARCHAR;
ALTER TABLE halo.sync_runs ADD COLUMN IF NOT EXISTS memberships_why VARCHAR;
ALTER TABLE halo.sync_runs ADD COLUMN IF NOT EXISTS detail_reads INTEGER;
ALTER TABLE halo.agent_role_history ADD COLUMN IF NOT EXISTS on_or_before BOOLEAN;
ALTER TABLE halo.agent_role_history ADD COLUMN IF NOT EXISTS added_after TIMESTAMPTZ;
ALTER TABLE halo.agent_role_history ADD COLUMN IF NOT EXISTS removed_after TIMESTAMPTZ;
ALTER TABLE halo.agent_team_history ADD COLUMN IF NOT EXISTS on_or_before BOOLEAN;
ALTER TABLE halo.agent_team_history ADD COLUMN IF NOT EXISTS added_after TIMESTAMPTZ;
ALTER TABLE halo.agent_team_history ADD COLUMN IF NOT EXISTS removed_after TIMESTAMPTZ;

-- Every sync so far read every agent it wrote: a change happened after the full sync before
-- the one that saw it.
CREATE TEMP MACRO full_sync_before(id) AS (
    SELECT max(s.synced_at) FROM halo.sync_runs AS s
    WHERE s.kind = 'full' AND s.status IN ('loaded', 'succeeded') AND s.sync_id < id
);
UPDATE halo.agent_role_history SET
    on_or_before = false,
    added_after = full_sync_before(first_sync_id),
    removed_after = full_sync_before(removed_in_sync_id)
WHERE on_or_before IS NULL;
UPDATE halo.agent_team_history SET
    on_or_before = false,
    added_after = full_sync_before(first_sync_id),
    removed_after = full_sync_before(removed_in_sync_id)
WHERE on_or_before IS NULL;
DROP MACRO full_sync_before;
