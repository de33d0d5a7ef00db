-- The UIDs of records a client deleted. The operator may be archiving such
-- a record at that moment (its cache has not yet seen the object go): Put
-- skips a UID listed here, so a deleted record is never written back.
-- Both take a lock per UID (lockUIDs), so neither misses the other.
CREATE TABLE deleted_executions (
    uid        uuid PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_executions_at ON deleted_executions (deleted_at);
