-- Source tables: one row per HaloITSM object as of the latest successful sync.
-- No primary keys: the asset checks verify uniqueness, and DuckDB loads faster without indexes.
CREATE SCHEMA IF NOT EXISTS halo;

CREATE SEQUENCE IF NOT EXISTS halo.sync_id_seq START 1;

CREATE TABLE IF NOT EXISTS halo.sync_runs (
    sync_id          BIGINT NOT NULL,
    dagster_run_id   VARCHAR,
    source_url       VARCHAR,
    started_at       TIMESTAMPTZ NOT NULL,
    finished_at      TIMESTAMPTZ,
    status           VARCHAR NOT NULL,   -- running | succeeded | failed
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
