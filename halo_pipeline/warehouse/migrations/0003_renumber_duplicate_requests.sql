-- Before request_id becomes a key the database enforces (0004): a warehouse that already holds
-- duplicates (rows inserted with SQL) keeps every row, each later one with a new id past the
-- highest, and an event that says what it was. DuckDB builds no index in a transaction that
-- updated the table, hence two migrations.
CREATE TEMPORARY TABLE renumbered AS
SELECT
    row_id,
    request_id AS old_id,
    (SELECT coalesce(max(request_id), 0) FROM provisioning.requests)
        + row_number() OVER (ORDER BY request_id, created_at, row_id) AS new_id,
    status
FROM (
    SELECT
        rowid AS row_id,
        request_id,
        created_at,
        status,
        row_number() OVER (PARTITION BY request_id ORDER BY created_at, rowid) AS n
    FROM provisioning.requests
)
WHERE n > 1;

UPDATE provisioning.requests AS r SET request_id = x.new_id
FROM renumbered AS x
WHERE r.rowid = x.row_id;

INSERT INTO provisioning.request_events (request_id, from_status, to_status, detail)
SELECT new_id, status, status,
    'request_id ' || old_id || ' was held by another request too: renumbered ' || new_id
FROM renumbered;

DROP TABLE renumbered;
