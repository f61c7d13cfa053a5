-- Runs inside a sync's transaction, after halo.agent_roles and halo.agent_teams were replaced:
-- close the periods of memberships that are gone, open periods for memberships that are new.
-- The sync is the session variable sync_id (SET VARIABLE); previous_reads holds each agent's
-- roles_known and roles_read_at as they were before this sync. Agents not read this sync kept
-- their rows, so their periods neither open nor close.
--
-- A period opened on an agent's first read (an agent listed before whose memberships were
-- never read) is `on_or_before`: held by then, not added then. A new agent is read first, so
-- what it holds is added. Each change keeps the agent's previous read: it happened after it.

UPDATE halo.agent_role_history AS h
SET removed_in_sync_id = getvariable('sync_id'),
    removed_after = (SELECT p.roles_read_at FROM previous_reads AS p WHERE p.agent_id = h.agent_id)
WHERE h.removed_in_sync_id IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM halo.agent_roles AS c
      WHERE c.agent_id = h.agent_id AND c.role_id = h.role_id
  );

INSERT INTO halo.agent_role_history (agent_id, role_id, agent_name, role_name, first_sync_id,
                                     removed_in_sync_id, on_or_before, added_after)
SELECT c.agent_id, c.role_id, a.name, r.name, getvariable('sync_id'), NULL,
       coalesce(NOT p.roles_known, false), p.roles_read_at
FROM halo.agent_roles AS c
LEFT JOIN halo.agents AS a USING (agent_id)
LEFT JOIN halo.roles AS r USING (role_id)
LEFT JOIN previous_reads AS p USING (agent_id)
WHERE NOT EXISTS (
    SELECT 1 FROM halo.agent_role_history AS h
    WHERE h.removed_in_sync_id IS NULL AND h.agent_id = c.agent_id AND h.role_id = c.role_id
);

UPDATE halo.agent_team_history AS h
SET removed_in_sync_id = getvariable('sync_id'),
    removed_after = (SELECT p.roles_read_at FROM previous_reads AS p WHERE p.agent_id = h.agent_id)
WHERE h.removed_in_sync_id IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM halo.agent_teams AS c
      WHERE c.agent_id = h.agent_id AND c.team_id = h.team_id
  );

INSERT INTO halo.agent_team_history (agent_id, team_id, agent_name, team_name, first_sync_id,
                                     removed_in_sync_id, on_or_before, added_after)
SELECT c.agent_id, c.team_id, a.name, t.name, getvariable('sync_id'), NULL,
       coalesce(NOT p.roles_known, false), p.roles_read_at
FROM halo.agent_teams AS c
LEFT JOIN halo.agents AS a USING (agent_id)
LEFT JOIN halo.teams AS t USING (team_id)
LEFT JOIN previous_reads AS p USING (agent_id)
WHERE NOT EXISTS (
    SELECT 1 FROM halo.agent_team_history AS h
    WHERE h.removed_in_sync_id IS NULL AND h.agent_id = c.agent_id AND h.team_id = c.team_id
);
