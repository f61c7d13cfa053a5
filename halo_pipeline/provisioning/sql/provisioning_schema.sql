-- The provisioning queue. Requests come from `halo-pipeline request` or from plain SQL:
--   INSERT INTO provisioning.requests (action, entitlement_id, agent_id, reason, requested_by)
--   VALUES ('grant', 'team:4:member', 17, 'on call rota', 'ana@example.com');
-- Everything else has a default; provisioning_job validates SQL-filed requests again.
CREATE SCHEMA IF NOT EXISTS provisioning;

CREATE SEQUENCE IF NOT EXISTS provisioning.request_id_seq START 1;
CREATE SEQUENCE IF NOT EXISTS provisioning.event_id_seq START 1;

CREATE TABLE IF NOT EXISTS provisioning.requests (
    request_id     BIGINT DEFAULT nextval('provisioning.request_id_seq') NOT NULL,
    action         VARCHAR NOT NULL,   -- grant | revoke | create_account | disable_account | enable_account
    entitlement_id VARCHAR,            -- role:<role_id>:assigned | team:<team_id>:member (grant, revoke)
    agent_id       BIGINT,             -- the agent (set on create_account once created)
    account_name   VARCHAR,            -- create_account
    account_email  VARCHAR,            -- create_account
    account_team   VARCHAR,            -- create_account: the new agent's team (name)
    reason         VARCHAR,
    requested_by   VARCHAR,
    status         VARCHAR DEFAULT 'pending' NOT NULL,
    plan           VARCHAR,            -- the exact change, in HaloITSM's terms
    ticket_id      BIGINT,
    ticket_requested_at TIMESTAMPTZ,   -- set before the ticket POST: a rerun searches first
    ticket_closed  BOOLEAN DEFAULT false NOT NULL,
    error          VARCHAR,            -- why it failed, in words a person can act on
    failed_attempts INTEGER DEFAULT 0 NOT NULL,  -- runs that failed before finishing it
    created_at     TIMESTAMPTZ DEFAULT now() NOT NULL,
    updated_at     TIMESTAMPTZ DEFAULT now() NOT NULL
);

-- Every change of a request's state, and the steps between that matter after a crash.
CREATE TABLE IF NOT EXISTS provisioning.request_events (
    event_id    BIGINT DEFAULT nextval('provisioning.event_id_seq') NOT NULL,
    request_id  BIGINT NOT NULL,
    changed_at  TIMESTAMPTZ DEFAULT now() NOT NULL,
    from_status VARCHAR,
    to_status   VARCHAR NOT NULL,
    detail      VARCHAR,
    run_id      VARCHAR
);

-- One random id per warehouse, in every ticket's tag, so a rebuilt warehouse or a second one
-- against the same tenant never takes another's ticket for its own.
CREATE TABLE IF NOT EXISTS provisioning.queue_info (queue_id VARCHAR NOT NULL);
INSERT INTO provisioning.queue_info
SELECT substr(md5(gen_random_uuid()::VARCHAR), 1, 6)
WHERE NOT EXISTS (SELECT 1 FROM provisioning.queue_info);
