-- Which warehouse this is: an id of its own, which every signed statement names (an approval
-- signed for one warehouse proves nothing in another), and the release that made it and that
-- last upgraded it. Its presence marks the file as this project's.
CREATE TABLE IF NOT EXISTS main.meta (
    warehouse_id VARCHAR NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    release      VARCHAR
);
INSERT INTO main.meta (warehouse_id)
SELECT gen_random_uuid()::VARCHAR
WHERE NOT EXISTS (SELECT 1 FROM main.meta);
