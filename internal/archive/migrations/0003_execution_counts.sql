-- How many records each function has, per user and status: a list's total
-- (up to Appwrite's 5 000) is read here rather than counted row by row,
-- which at a million records was most of the database's work per list.
-- Statement triggers keep it exact through every insert, upsert, delete
-- and retention pass; each locks its counter rows in key order (Put
-- writes its rows in that order too), so two writers of one function
-- queue rather than deadlock.
CREATE TABLE execution_counts (
    namespace   text COLLATE "C" NOT NULL,
    function_id text COLLATE "C" NOT NULL,
    user_id     text COLLATE "C" NOT NULL,
    status      text COLLATE "C" NOT NULL,
    n           bigint NOT NULL,
    PRIMARY KEY (namespace, function_id, user_id, status)
);

CREATE FUNCTION execution_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO execution_counts AS c (namespace, function_id, user_id, status, n)
        SELECT namespace, function_id, user_id, status, count(*) FROM added
        GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (namespace, function_id, user_id, status) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION execution_counts_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM execution_counts AS c
        WHERE (c.namespace, c.function_id, c.user_id, c.status) IN
              (SELECT namespace, function_id, user_id, status FROM removed)
        ORDER BY c.namespace, c.function_id, c.user_id, c.status FOR UPDATE;
    UPDATE execution_counts AS c SET n = c.n - r.n
        FROM (SELECT namespace, function_id, user_id, status, count(*) AS n FROM removed GROUP BY 1, 2, 3, 4) AS r
        WHERE (c.namespace, c.function_id, c.user_id, c.status) = (r.namespace, r.function_id, r.user_id, r.status);
    RETURN NULL;
END $$;

CREATE TRIGGER executions_counted_insert AFTER INSERT ON executions
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION execution_counts_add();
CREATE TRIGGER executions_counted_delete AFTER DELETE ON executions
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION execution_counts_remove();
-- An upsert of a record already there (a retried archive) updates it: the
-- old row's count goes, the new row's comes, whatever changed.
CREATE TRIGGER executions_counted_update_old AFTER UPDATE ON executions
    REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION execution_counts_remove();
CREATE TRIGGER executions_counted_update_new AFTER UPDATE ON executions
    REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION execution_counts_add();

INSERT INTO execution_counts (namespace, function_id, user_id, status, n)
    SELECT namespace, function_id, user_id, status, count(*) FROM executions GROUP BY 1, 2, 3, 4;
