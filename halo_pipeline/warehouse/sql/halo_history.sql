-- Runs inside a sync's transaction, after halo.agent_roles and halo.agent_teams were replaced:
-- close the periods of memberships that are gone, open periods for memberships that are new.
-- The sync is the session variable sync_id (SET VARIABLE).

UPDATE halo.agent_role_history AS h
SET removed_in_sync_id = getvariable('sync_id')
WHERE h.removed_in_sync_id IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM halo.agent_roles AS c
      WHERE c.agent_id = h.agent_id AND c.role_id = h.role_id
  );

INSERT INTO halo.agent_role_history
SELECT c.agent_id, c.role_id, a.name, r.name, getvariable('sync_id'), NULL
FROM halo.agent_roles AS c
LEFT JOIN halo.agents AS a USING (agent_id)
LEFT JOIN halo.roles AS r USING (role_id)
WHERE NOT EXISTS (
    SELECT 1 FROM halo.agent_role_history AS h
    WHERE h.removed_in_sync_id IS NULL AND h.agent_id = c.agent_id AND h.role_id = c.role_id
);

UPDATE halo.agent_team_history AS h
SET removed_in_sync_id = getvariable('sync_id')
WHERE h.removed_in_sync_id IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM halo.agent_teams AS c
      WHERE c.agent_id = h.agent_id AND c.team_id = h.team_id
  );

INSERT INTO halo.agent_team_history
SELECT c.agent_id, c.team_id, a.name, t.name, getvariable('sync_id'), NULL
FROM halo.agent_teams AS c
LEFT JOIN halo.agents AS a USING (agent_id)
LEFT JOIN halo.teams AS t USING (team_id)
WHERE NOT EXISTS (
    SELECT 1 FROM halo.agent_team_history AS h
    WHERE h.removed_in_sync_id IS NULL AND h.agent_id = c.agent_id AND h.team_id = c.team_id
);
