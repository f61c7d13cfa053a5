-- Halo's agent list rows (Uname_List) carry no is_admin: unknown is NULL, not false.
ALTER TABLE halo.agents ALTER COLUMN is_admin DROP NOT NULL;

-- A team membership is more than a team: who manages it, what the member may see. NULL where
-- the sync read the membership without them (per team, when list rows lack teams).
ALTER TABLE halo.agent_teams ADD COLUMN is_manager BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN fortickets BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN foropps BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN forprojects BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN unassigned_access BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN otheragent_access BOOLEAN;
ALTER TABLE halo.agent_teams ADD COLUMN no_config_access BOOLEAN;

-- Ticket type lists (RequestType_List) carry no initial status, so it was never known; they
-- do say whether a create must name fields only the tenant knows (HALO_TICKET_FIELDS).
ALTER TABLE halo.ticket_types DROP COLUMN initial_status;
ALTER TABLE halo.ticket_types ADD COLUMN has_mandatory_fields BOOLEAN;
