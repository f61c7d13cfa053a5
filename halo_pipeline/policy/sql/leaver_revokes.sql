-- What disabled agents still hold, as of the last sync, that no policy:leaver revoke has been
-- filed for since the agent gained it: each becomes one revoke request, once.
SELECT g.principal_id AS agent_id, g.entitlement_id, g.agent_name, g.resource_type,
       g.resource_name
FROM access.grants AS g
JOIN access.grant_history AS h
  ON h.grant_id = g.grant_id AND h.removed_at IS NULL
WHERE g.agent_is_disabled
  AND NOT EXISTS (
      SELECT 1 FROM provisioning.requests AS r
      WHERE r.action = 'revoke' AND r.requested_by = 'policy:leaver'
        AND r.agent_id = g.principal_id AND r.entitlement_id = g.entitlement_id
        AND r.created_at >= h.first_seen_at
  )
ORDER BY agent_id, entitlement_id
