-- When each agent's roles were last read from HaloITSM, and by which sync: a sync that cannot
-- read every agent's roles (a tenant where only each agent's detail shows them) keeps the
-- last-read roles of those it did not read, and says how old they are. Every sync so far read
-- the roles of every agent it wrote, so each row's own sync read them.
ALTER TABLE halo.agents ADD COLUMN IF NOT EXISTS roles_known BOOLEAN;
ALTER TABLE halo.agents ADD COLUMN IF NOT EXISTS roles_read_at TIMESTAMPTZ;
ALTER TABLE halo.agents ADD COLUMN IF NOT EXISTS roles_read_sync_id BIGINT;

UPDATE halo.agents SET roles_known = true, roles_read_at = synced_at, roles_read_sync_id = sync_id
WHERE roles_known IS NULL;
