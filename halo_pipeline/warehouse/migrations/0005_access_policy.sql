-- Access policy: time-bound grants, requests the pipeline files for a policy (linked to the
-- request they follow from), and who decided what.
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS expires_at TIMESTAMPTZ;
-- `--for`: counted from when the grant is applied, so a wait for approval does not eat it.
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS valid_for INTERVAL;
ALTER TABLE provisioning.requests ADD COLUMN IF NOT EXISTS linked_request_id BIGINT;
-- Who decided (the --by of approve or deny), the operating-system user who ran the command
-- (--by is not authenticated), and their note.
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS actor VARCHAR;
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS os_user VARCHAR;
ALTER TABLE provisioning.request_events ADD COLUMN IF NOT EXISTS note VARCHAR;

-- The policy file as the last sync resolved it against halo.roles, for access.policy_violations.
CREATE SCHEMA IF NOT EXISTS policy;
CREATE TABLE IF NOT EXISTS policy.rules (
    rule     VARCHAR PRIMARY KEY,  -- a separation-of-duties rule's name, or a rule of the file
    kind     VARCHAR NOT NULL,     -- separation_of_duties | privileged_unapproved | privileged_expired | disabled_with_access
    severity VARCHAR NOT NULL      -- warn | error
);
CREATE TABLE IF NOT EXISTS policy.roles (
    rule      VARCHAR NOT NULL,    -- 'privileged', or a separation-of-duties rule's name
    role_id   VARCHAR NOT NULL,
    role_name VARCHAR NOT NULL
);
