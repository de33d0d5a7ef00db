-- One row per finished Execution. The columns are what Appwrite's queries
-- filter, order and search on, and what decides visibility; the outputs are
-- stored once, in their own columns; object is the rest of the Execution
-- (metadata, spec, status without the outputs) as the API server had it.
-- Strings compare byte by byte (COLLATE "C"), as the facade compares them
-- in memory, so that its orders and cursors can walk these indexes.
CREATE TABLE executions (
    uid                  uuid PRIMARY KEY,
    namespace            text COLLATE "C" NOT NULL,
    function_id          text COLLATE "C" NOT NULL,
    id                   text COLLATE "C" NOT NULL,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    -- retention counts from here, as it does for the objects
    finished_at          timestamptz NOT NULL,
    deployment_id        text COLLATE "C" NOT NULL,
    trigger              text COLLATE "C" NOT NULL,
    status               text COLLATE "C" NOT NULL,
    response_status_code integer NOT NULL,
    duration             double precision NOT NULL,
    request_method       text COLLATE "C" NOT NULL,
    request_path         text COLLATE "C" NOT NULL,
    scheduled_at         timestamptz,
    -- the Appwrite user the execution ran for ('' for guests and API keys)
    user_id              text COLLATE "C" NOT NULL,
    response_body        text NOT NULL,
    logs                 text NOT NULL,
    errors               text NOT NULL,
    response_headers     jsonb NOT NULL,
    object               jsonb NOT NULL
);

-- A list is one function's records in creation order, then by ID; newest
-- first keeps ties in ID order (Appwrite's orderDesc($createdAt)), which
-- the second index gives walked backwards.
CREATE INDEX executions_list ON executions (namespace, function_id, created_at, id);
CREATE INDEX executions_list_desc ON executions (namespace, function_id, created_at, id DESC);
-- Lists filtered by status (the common filter), and their counts.
CREATE INDEX executions_status ON executions (namespace, function_id, status, created_at, id);
-- A get names the ID, and takes the newest record should the ID repeat
-- (created_at here, or the planner may walk the list index instead).
CREATE INDEX executions_id ON executions (namespace, id, created_at);
-- Retention deletes the oldest finished first.
CREATE INDEX executions_finished ON executions (finished_at);
