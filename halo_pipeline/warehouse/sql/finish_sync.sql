-- The last statement of a sync's transaction: mark it loaded, with the row counts of the
-- tables as the transaction leaves them. It becomes 'succeeded' when the access models have been
-- rebuilt from these tables. The session variables (SET VARIABLE) name the sync and what it read.
UPDATE halo.sync_runs
SET
    status = 'loaded',
    finished_at = now(),
    synced_at = getvariable('synced_at'),
    api_requests = getvariable('api_requests'),
    memberships_from = getvariable('memberships_from'),
    memberships_why = getvariable('memberships_why'),
    detail_reads = getvariable('detail_reads'),
    agents = (SELECT count(*) FROM halo.agents),
    roles = (SELECT count(*) FROM halo.roles),
    teams = (SELECT count(*) FROM halo.teams),
    agent_roles = (SELECT count(*) FROM halo.agent_roles),
    agent_teams = (SELECT count(*) FROM halo.agent_teams),
    ticket_types = (SELECT count(*) FROM halo.ticket_types)
WHERE sync_id = getvariable('sync_id');
