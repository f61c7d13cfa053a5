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
