-- Release 0.1.0's tables, as its first writer made them. IF NOT EXISTS throughout: a warehouse
-- that release made already holds them, and this migration only records that it does.

-- Source tables: one row per HaloITSM object as of the latest successful sync.
-- No primary keys: the asset checks verify uniqueness, and DuckDB loads faster without indexes.
CREATE SCHEMA IF NOT EXISTS halo;

CREATE SEQUENCE IF NOT EXISTS halo.sync_id_seq START 1;

CREATE TABLE IF NOT EXISTS halo.sync_runs (
    sync_id          BIGINT NOT NULL,
    kind             VARCHAR DEFAULT 'full' NOT NULL,  -- full | targeted (after provisioning)
    dagster_run_id   VARCHAR,
    source_url       VARCHAR,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    status           VARCHAR NOT NULL,   -- running | succeeded | failed
    synced_at        TIMESTAMPTZ,        -- when the data was read from HaloITSM
    error            VARCHAR,
    api_requests     INTEGER,
    memberships_from VARCHAR,            -- 'agent rows' or 'per roles and per teams'
    agents           INTEGER,
    roles            INTEGER,
    teams            INTEGER,
    agent_roles      INTEGER,
    agent_teams      INTEGER,
    ticket_types     INTEGER
);

CREATE TABLE IF NOT EXISTS halo.agents (
    agent_id     BIGINT NOT NULL,
    name         VARCHAR NOT NULL,
    firstname    VARCHAR,
    surname      VARCHAR,
    email        VARCHAR,
    is_disabled  BOOLEAN NOT NULL,
    is_api_agent BOOLEAN NOT NULL,
    is_admin     BOOLEAN NOT NULL,
    default_team VARCHAR,
    department   VARCHAR,
    sync_id      BIGINT NOT NULL,
    synced_at    TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS halo.roles (
    role_id        VARCHAR NOT NULL,
    role_int_id    BIGINT NOT NULL,
    name           VARCHAR NOT NULL,
    notes          VARCHAR,
    is_integration BOOLEAN NOT NULL,
    sync_id        BIGINT NOT NULL,
    synced_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS halo.teams (
    team_id         BIGINT NOT NULL,
    name            VARCHAR NOT NULL,
    department_id   BIGINT,
    department_name VARCHAR,
    is_inactive     BOOLEAN NOT NULL,
    sync_id         BIGINT NOT NULL,
    synced_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS halo.agent_roles (
    agent_id  BIGINT NOT NULL,
    role_id   VARCHAR NOT NULL,
    sync_id   BIGINT NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS halo.agent_teams (
    agent_id  BIGINT NOT NULL,
    team_id   BIGINT NOT NULL,
    sync_id   BIGINT NOT NULL,
    synced_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS halo.ticket_types (
    ticket_type_id BIGINT NOT NULL,
    name           VARCHAR NOT NULL,
    initial_status BIGINT,
    sync_id        BIGINT NOT NULL,
    synced_at      TIMESTAMPTZ NOT NULL
);

-- Membership history: one row per continuous period an agent held a role or was in a team,
-- open while removed_in_sync_id is NULL. Each sync updates it in the same transaction that
-- replaces the tables above (see halo_history.sql), so history and snapshot never disagree and
-- it grows with changes, not with the number of syncs. Names are as they were when the period
-- opened, so a deleted team's past members still read as people and team names.
CREATE TABLE IF NOT EXISTS halo.agent_role_history (
    agent_id           BIGINT NOT NULL,
    role_id            VARCHAR NOT NULL,
    agent_name         VARCHAR,
    role_name          VARCHAR,
    first_sync_id      BIGINT NOT NULL,
    removed_in_sync_id BIGINT
);

CREATE TABLE IF NOT EXISTS halo.agent_team_history (
    agent_id           BIGINT NOT NULL,
    team_id            BIGINT NOT NULL,
    agent_name         VARCHAR,
    team_name          VARCHAR,
    first_sync_id      BIGINT NOT NULL,
    removed_in_sync_id BIGINT
);
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
