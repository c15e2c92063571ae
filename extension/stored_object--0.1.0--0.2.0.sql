-- stored_object 0.1.0 -> 0.2.0: files bound to rows.
--   so_manage trigger and so_manage_column, durable deferred deletes
--   (so_process_pending), the orphan sweeper (so_orphans, so_gc), so_copy.
--
-- Labels: the trigger, so_process_pending, so_gc and so_copy write storage:
-- VOLATILE PARALLEL UNSAFE. so_orphans only reads, but reads every table
-- as the extension's owner: VOLATILE PARALLEL RESTRICTED.

\echo Use "ALTER EXTENSION stored_object UPDATE TO '0.2.0'" to load this file. \quit

-- 'single', 'array' or NULL: whether a type holds stored_object values
-- (the type, a domain over it, or an array of either).
CREATE FUNCTION so_column_kind(regtype) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_column_kind(regtype) IS
    'Whether a type holds stored_object values: single, array, or NULL';

-- ---------------------------------------------------------------------------
-- Rows and their files: the so_manage trigger
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_manage() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_manage() IS
    'Trigger AFTER UPDATE OR DELETE FOR EACH ROW (arguments: managed columns): deletes the row''s objects after commit, unless another row references them';

CREATE FUNCTION so_manage_column(tbl regclass, col name) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    column_type oid;
BEGIN
    SELECT a.atttypid INTO column_type
      FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of relation % does not exist', col, tbl USING ERRCODE = 'undefined_column';
    END IF;
    IF @extschema@.so_column_kind(column_type) IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation % is not of type stored_object or stored_object[]', col, tbl
            USING ERRCODE = 'datatype_mismatch';
    END IF;
    EXECUTE format('CREATE OR REPLACE TRIGGER %I AFTER UPDATE OR DELETE ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION @extschema@.so_manage(%L)',
                   left('so_manage_' || col, 63), tbl, col);
END
$$;
COMMENT ON FUNCTION so_manage_column(regclass, name) IS
    'Attaches so_manage to one column: the column''s objects are deleted with their rows';

-- ---------------------------------------------------------------------------
-- Deferred deletes that survive crashes
-- ---------------------------------------------------------------------------

-- Immediate, outside the transaction's control: for the queue and the
-- sweeper only. 'deleted', 'gone' (nothing there), or 'changed' (the key
-- now holds another version, which is left alone).
CREATE FUNCTION so_remove_now(obj stored_object, check_version boolean) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION so_remove_now(stored_object, boolean) IS
    'Internal: removes an object at once, optionally only if it is still the version described';

CREATE FUNCTION so_own_queue_ids() RETURNS bigint[]
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_own_queue_ids() IS
    'Internal: so_pending_deletes rows written by this transaction, which its commit handles';

CREATE FUNCTION so_process_pending(max_rows integer DEFAULT NULL)
RETURNS TABLE (deleted bigint, already_gone bigint, kept bigint, failed bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    queued record;
    outcome text;
BEGIN
    deleted := 0; already_gone := 0; kept := 0; failed := 0;
    -- SKIP LOCKED: concurrent runs share the work instead of waiting.
    FOR queued IN
        SELECT q.id, q.object FROM @extschema@.so_pending_deletes q
         WHERE q.id <> ALL (@extschema@.so_own_queue_ids())
         ORDER BY q.id
         LIMIT max_rows
           FOR UPDATE SKIP LOCKED
    LOOP
        BEGIN
            outcome := @extschema@.so_remove_now(queued.object, true);
            DELETE FROM @extschema@.so_pending_deletes WHERE id = queued.id;
            CASE outcome
                WHEN 'deleted' THEN deleted := deleted + 1;
                WHEN 'gone' THEN already_gone := already_gone + 1;
                ELSE kept := kept + 1;  -- the key was reused by a newer put
            END CASE;
        EXCEPTION WHEN OTHERS THEN
            UPDATE @extschema@.so_pending_deletes
               SET attempts = attempts + 1, last_error = SQLERRM
             WHERE id = queued.id;
            failed := failed + 1;
        END;
    END LOOP;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION so_process_pending(integer) IS
    'Retries the queued deletes of committed transactions; never deletes an object whose version changed since';

-- ---------------------------------------------------------------------------
-- Orphan sweeper
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_orphans(backend text, prefix text DEFAULT '', older_than interval DEFAULT '1 hour')
RETURNS SETOF stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_orphans(text, text, interval) IS
    'Objects of a backend that no stored_object or stored_object[] column of this database references, older than older_than';

CREATE FUNCTION so_gc(backend text, older_than interval DEFAULT '1 hour', dry_run boolean DEFAULT true)
RETURNS TABLE (object stored_object, action text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    FOR object IN SELECT o FROM @extschema@.so_orphans(backend, '', older_than) AS o LOOP
        action := CASE WHEN dry_run THEN 'would delete'
                       ELSE @extschema@.so_remove_now(object, false) END;
        RETURN NEXT;
    END LOOP;
END
$$;
COMMENT ON FUNCTION so_gc(text, interval, boolean) IS
    'Deletes the orphans of a backend (dry_run: only lists them) and reports what it did';

-- ---------------------------------------------------------------------------
-- Copying between backends
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_copy(obj stored_object, to_backend text, to_filename text DEFAULT NULL)
RETURNS stored_object AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_copy(stored_object, text, text) IS
    'Copies an object to another backend (server-side on the same S3 store); removed again if the transaction aborts';

-- Who may sweep: the storage administrators (and superusers).
REVOKE EXECUTE ON FUNCTION so_remove_now(stored_object, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_process_pending(integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_orphans(text, text, interval) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_gc(text, interval, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION so_remove_now(stored_object, boolean) TO stored_object_admin;
GRANT EXECUTE ON FUNCTION so_process_pending(integer) TO stored_object_admin;
GRANT EXECUTE ON FUNCTION so_orphans(text, text, interval) TO stored_object_admin;
GRANT EXECUTE ON FUNCTION so_gc(text, interval, boolean) TO stored_object_admin;
GRANT UPDATE, DELETE ON so_pending_deletes TO stored_object_admin;

-- Fixes to 0.1.0 objects.

-- A JSON null (what an application writes when it clears a file column)
-- converts to NULL instead of failing.
CREATE OR REPLACE FUNCTION so_from_json(value jsonb, default_backend text DEFAULT NULL)
RETURNS stored_object LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (CASE WHEN pg_catalog.jsonb_typeof(value) = 'null' THEN NULL
             WHEN default_backend IS NULL OR value->>'backend' IS NOT NULL THEN value
             ELSE value || pg_catalog.jsonb_build_object('backend', default_backend)
        END)::@extschema@.stored_object;

-- pg_dump reads the queue's sequence: storage administrators dump too.
GRANT SELECT ON SEQUENCE so_pending_deletes_id_seq TO stored_object_admin;
