-- stored_object 0.2.0 -> 0.3.0: access control and the lifecycle promise.
--
--   * Backend privileges (read, write, delete) in so_backends.acl, managed
--     with so_grant / so_revoke; rows readable by a role pass their table
--     owner's privileges on (see the README's security model).
--   * Storage administration per database: holders of UPDATE on
--     so_backends (the database owner, with the grant option, and whoever
--     so_grant_admin names), instead of the cluster-wide role
--     stored_object_admin.
--   * Committed deletes are carried out by a background worker from the
--     durable queue so_delete_queue (shown with ages by the view
--     so_pending_deletes); so_manage decides at commit.
--   * Internal functions leave the public API; every statement the
--     extension runs pins its search_path.
--
-- Existing backends stay usable by every role, as in 0.2.0: read, write
-- and delete are granted to PUBLIC, and a WARNING says how to tighten (a
-- NOTICE would never reach the user: extension scripts run with
-- client_min_messages at WARNING at least). A fresh install (which runs
-- this script too, on an empty registry) grants nothing to PUBLIC.

\echo Use "ALTER EXTENSION stored_object UPDATE TO '0.3.0'" to load this file. \quit

-- ---------------------------------------------------------------------------
-- Backend owners and privileges
-- ---------------------------------------------------------------------------

ALTER TABLE so_backends ADD COLUMN owner regrole;
ALTER TABLE so_backends ADD COLUMN acl aclitem[];
COMMENT ON COLUMN so_backends.owner IS
    'The role that registered the backend; it holds every privilege on it and may grant them';
COMMENT ON COLUMN so_backends.acl IS
    'Privileges on the backend, as aclitems: r = read, w = write, d = delete (NULL: the owner''s only)';

DO $$
DECLARE
    keys text;
BEGIN
    SELECT pg_catalog.string_agg(pg_catalog.quote_literal(b.key), ', ' ORDER BY b.key) INTO keys
      FROM @extschema@.so_backends AS b;
    UPDATE @extschema@.so_backends
       SET owner = CURRENT_USER::regrole,
           acl = ARRAY[(CURRENT_USER::regrole::text OPERATOR(pg_catalog.||) '=rwd/'
                        OPERATOR(pg_catalog.||) CURRENT_USER::regrole::text)::aclitem,
                       ('=rwd/' OPERATOR(pg_catalog.||) CURRENT_USER::regrole::text)::aclitem];
    IF keys IS NOT NULL THEN
        RAISE WARNING 'stored_object 0.3.0: the existing storage backends % stay usable by every role: read, write and delete were granted to PUBLIC', keys
            USING HINT = 'To restrict a backend: SELECT so_revoke(''key'', ''all'', ''PUBLIC''); then so_grant(''key'', ''read, write, delete'', ''role'') to the roles that need it.';
    END IF;
END
$$;
ALTER TABLE so_backends ALTER COLUMN owner SET NOT NULL;

-- The list of backends for everyone: secret values removed (the list of
-- secret options, from the C++ core, written in as a constant, so the
-- view needs no function a role may not execute), owner and privileges.
DO $$
BEGIN
    EXECUTE pg_catalog.format($view$
CREATE OR REPLACE VIEW @extschema@.so_backend_info AS
SELECT b.key,
       pg_catalog.lower(pg_catalog.split_part(b.url, ':', 1)) AS scheme,
       b.url,
       b.options OPERATOR(pg_catalog.-) %1$L::text[] AS options,
       ARRAY(SELECT s FROM pg_catalog.unnest(%1$L::text[]) AS s
              WHERE b.options OPERATOR(pg_catalog.?) s ORDER BY s) AS secrets_set,
       b.created_at,
       b.updated_at,
       b.owner::text AS owner,
       (SELECT pg_catalog.jsonb_object_agg(g.grantee, g.privileges)
          FROM (SELECT CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                            ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS grantee,
                       pg_catalog.jsonb_agg(CASE a.privilege_type WHEN 'SELECT' THEN 'read'
                                                                  WHEN 'UPDATE' THEN 'write'
                                                                  ELSE 'delete' END
                                            ORDER BY CASE a.privilege_type WHEN 'SELECT' THEN 1
                                                                           WHEN 'UPDATE' THEN 2 ELSE 3 END)
                                                                           AS privileges
                  FROM pg_catalog.aclexplode(COALESCE(b.acl,
                         ARRAY[(b.owner::text OPERATOR(pg_catalog.||) '=rwd/' OPERATOR(pg_catalog.||) b.owner::text)::aclitem])) AS a
                 GROUP BY 1) AS g) AS privileges
  FROM @extschema@.so_backends AS b
$view$, @extschema@.so_secret_options());
END
$$;
COMMENT ON VIEW so_backend_info IS
    'Registered storage backends without secret values, with their owners and privileges (role -> read, write, delete)';

CREATE FUNCTION so_grant(backend text, privileges text, role text) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION so_revoke(backend text, privileges text, role text) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_grant(text, text, text) IS
    'Grants privileges on a storage backend (read, write, delete or all, comma-separated) to a role or PUBLIC; for its owner and storage administrators';
COMMENT ON FUNCTION so_revoke(text, text, text) IS
    'Revokes privileges on a storage backend from a role or PUBLIC; for its owner and storage administrators';

-- ---------------------------------------------------------------------------
-- Storage administrators, per database
-- ---------------------------------------------------------------------------

-- The durable queue of deletes keeps its rows; the view shows their age.
ALTER TABLE so_pending_deletes RENAME TO so_delete_queue;
ALTER SEQUENCE so_pending_deletes_id_seq RENAME TO so_delete_queue_id_seq;
ALTER TABLE so_delete_queue ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT pg_catalog.now();
COMMENT ON TABLE so_delete_queue IS
    'Deletes of committed transactions that the background worker (or so_process_pending) has yet to carry out';
CREATE VIEW so_pending_deletes AS
SELECT q.id, q.object, q.scheduled_at, pg_catalog.now() OPERATOR(pg_catalog.-) q.scheduled_at AS age,
       q.attempts, q.last_error, q.next_attempt_at
  FROM @extschema@.so_delete_queue AS q;
COMMENT ON VIEW so_pending_deletes IS
    'Committed deletes not carried out yet, oldest first by id: age, attempts, last error and next attempt';
REVOKE ALL ON so_pending_deletes FROM PUBLIC;

CREATE FUNCTION so_grant_admin(role name, with_grant_option boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
DECLARE
    grantable text := CASE WHEN with_grant_option THEN ' WITH GRANT OPTION' ELSE '' END;
BEGIN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON @extschema@.so_backends, @extschema@.so_delete_queue, '
                   '@extschema@.so_pending_deletes TO %I', role) OPERATOR(pg_catalog.||) grantable;
    EXECUTE format('GRANT SELECT, USAGE ON SEQUENCE @extschema@.so_delete_queue_id_seq TO %I', role)
            OPERATOR(pg_catalog.||) grantable;
END
$$;
CREATE FUNCTION so_revoke_admin(role name) RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    EXECUTE format('REVOKE ALL ON @extschema@.so_backends, @extschema@.so_delete_queue, '
                   '@extschema@.so_pending_deletes FROM %I CASCADE', role);
    EXECUTE format('REVOKE ALL ON SEQUENCE @extschema@.so_delete_queue_id_seq FROM %I CASCADE', role);
END
$$;
COMMENT ON FUNCTION so_grant_admin(name, boolean) IS
    'Makes a role a storage administrator of this database: it may register backends, read their secrets, sweep and dump; needs the grant option (the database owner has it)';
COMMENT ON FUNCTION so_revoke_admin(name) IS 'Takes storage administration of this database from a role';

-- The database owner administers its storage and may make others do so.
-- The cluster-wide role stored_object_admin keeps its grants only where it
-- has members (an upgrade that relies on it); otherwise it is unused.
DO $$
DECLARE
    db_owner name;
BEGIN
    SELECT pg_catalog.pg_get_userbyid(d.datdba) INTO db_owner
      FROM pg_catalog.pg_database AS d WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database();
    PERFORM @extschema@.so_grant_admin(db_owner, true);
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members AS m
                    WHERE m.roleid OPERATOR(pg_catalog.=) 'stored_object_admin'::regrole) THEN
        PERFORM @extschema@.so_revoke_admin('stored_object_admin');
        REVOKE EXECUTE ON FUNCTION @extschema@.so_register_backend(text, text, jsonb),
                                   @extschema@.so_alter_backend(text, text, jsonb),
                                   @extschema@.so_unregister_backend(text),
                                   @extschema@.so_orphans(text, text, interval) FROM stored_object_admin;
    ELSE
        PERFORM @extschema@.so_grant_admin('stored_object_admin', false);
        RAISE WARNING 'stored_object 0.3.0: stored_object_admin has members and stays a storage administrator of this database'
            USING HINT = 'Storage administration is per database now: SELECT so_grant_admin(''role''); then REVOKE the membership in stored_object_admin.';
    END IF;
END
$$;

-- Registry changes: table privileges decide who may (a storage
-- administrator), so every role may call the functions.
GRANT EXECUTE ON FUNCTION so_register_backend(text, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION so_alter_backend(text, text, jsonb) TO PUBLIC;
GRANT EXECUTE ON FUNCTION so_unregister_backend(text) TO PUBLIC;

-- Messages never echo a key that is not a valid one (it could hold a
-- newline that forges a log line); operators are schema-qualified.
CREATE OR REPLACE FUNCTION so_alter_backend(key text, url text DEFAULT NULL, options jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    -- Options merge: given keys replace, a JSON null removes a key.
    UPDATE @extschema@.so_backends AS b
       SET url = COALESCE(so_alter_backend.url, b.url),
           options = jsonb_strip_nulls(b.options OPERATOR(pg_catalog.||) COALESCE(so_alter_backend.options, '{}'))
     WHERE b.key OPERATOR(pg_catalog.=) so_alter_backend.key;
    IF NOT FOUND THEN
        IF so_alter_backend.key OPERATOR(pg_catalog.!~) '^[A-Za-z0-9_.-]{1,63}$' THEN
            RAISE EXCEPTION 'invalid backend key' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'A backend key has 1 to 63 characters: letters, digits, ''_'', ''-'' and ''.''.';
        END IF;
        RAISE EXCEPTION 'storage backend "%" does not exist', so_alter_backend.key
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION so_unregister_backend(key text)
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.so_backends AS b WHERE b.key OPERATOR(pg_catalog.=) so_unregister_backend.key;
    IF NOT FOUND THEN
        IF so_unregister_backend.key OPERATOR(pg_catalog.!~) '^[A-Za-z0-9_.-]{1,63}$' THEN
            RAISE EXCEPTION 'invalid backend key' USING ERRCODE = 'invalid_parameter_value',
                HINT = 'A backend key has 1 to 63 characters: letters, digits, ''_'', ''-'' and ''.''.';
        END IF;
        RAISE EXCEPTION 'storage backend "%" does not exist', so_unregister_backend.key
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION so_register_backend(key text, url text, options jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, @extschema@, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.so_backends (key, url, options)
    VALUES (key, url, COALESCE(options, '{}'));
EXCEPTION WHEN unique_violation THEN
    -- The registry's trigger validated the key before the unique index saw it.
    RAISE EXCEPTION 'storage backend "%" already exists', key
        USING ERRCODE = 'duplicate_object', HINT = 'Use so_alter_backend to change it.';
END
$$;

-- ---------------------------------------------------------------------------
-- Internals out of the public API
-- ---------------------------------------------------------------------------

DROP FUNCTION so_own_queue_ids();
REVOKE EXECUTE ON FUNCTION so_column_kind(regtype) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_secret_options() FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_backends_trigger() FROM PUBLIC;
COMMENT ON FUNCTION so_column_kind(regtype) IS
    'Internal: whether a type holds stored_object values: single, array, or NULL';
COMMENT ON FUNCTION so_secret_options() IS 'Internal: names of backend options whose values are secrets';

-- so_manage_column in C: no internal function to call, and trigger names
-- that never collide (long column names get a hash).
CREATE OR REPLACE FUNCTION so_manage_column(tbl regclass, col name) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_manage_column(regclass, name) IS
    'Attaches so_manage to one column (AFTER INSERT OR UPDATE OR DELETE): the column''s objects are deleted with their rows, and values entering it are checked';
COMMENT ON FUNCTION so_manage() IS
    'Trigger AFTER INSERT OR UPDATE OR DELETE FOR EACH ROW (arguments: managed columns): checks values entering the row; at commit deletes objects that left it and that no managed row references';

-- ---------------------------------------------------------------------------
-- Deletes by the background worker; sweeping in C
-- ---------------------------------------------------------------------------

DROP FUNCTION so_process_pending(integer);
CREATE FUNCTION so_process_pending(max_rows integer DEFAULT NULL)
RETURNS TABLE (deleted bigint, already_gone bigint, kept bigint, failed bigint)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_process_pending(integer) IS
    'Carries out queued deletes of committed transactions now, as the background worker does; never deletes an object whose version changed since; for storage administrators';

DROP FUNCTION so_gc(text, interval, boolean);
DROP FUNCTION so_remove_now(stored_object, boolean);
CREATE FUNCTION so_gc(backend text, older_than interval DEFAULT '1 hour', dry_run boolean DEFAULT true)
RETURNS TABLE (object stored_object, action text)
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION so_gc(text, interval, boolean) IS
    'Deletes the orphans of a backend (dry_run: only lists them) after finishing overwrites a crash interrupted; for storage administrators';

-- The sweeper checks that its caller is a storage administrator.
GRANT EXECUTE ON FUNCTION so_orphans(text, text, interval) TO PUBLIC;
GRANT EXECUTE ON FUNCTION so_process_pending(integer) TO PUBLIC;
GRANT EXECUTE ON FUNCTION so_gc(text, interval, boolean) TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Fixes to 0.2.0 objects
-- ---------------------------------------------------------------------------

-- The 32-bit hash is now the low half of the 64-bit one, as the hash
-- operator class contract asks; hash indexes over stored objects are
-- rebuilt with it.
CREATE OR REPLACE FUNCTION so_hash(stored_object) RETURNS integer
    AS 'MODULE_PATHNAME', 'so_hash32' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
DO $$
DECLARE
    index_oid regclass;
BEGIN
    FOR index_oid IN
        -- A hash index stores hash codes: find its stored_object keys through
        -- its operator classes, and stored_object[] keys (array_ops hashes
        -- each element with so_hash) through the table's columns.
        SELECT i.indexrelid::regclass
          FROM pg_catalog.pg_index AS i
          JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
          JOIN pg_catalog.pg_am AS am ON am.oid OPERATOR(pg_catalog.=) c.relam
         WHERE am.amname OPERATOR(pg_catalog.=) 'hash'
           AND (EXISTS (SELECT FROM pg_catalog.pg_opclass AS o
                         WHERE o.oid OPERATOR(pg_catalog.=) ANY (i.indclass::pg_catalog.oid[])
                           AND o.opcintype OPERATOR(pg_catalog.=) '@extschema@.stored_object'::regtype)
                OR EXISTS (SELECT FROM pg_catalog.pg_attribute AS a
                            WHERE a.attrelid OPERATOR(pg_catalog.=) i.indrelid
                              AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])
                              AND @extschema@.so_column_kind(a.atttypid) IS NOT NULL))
    LOOP
        EXECUTE pg_catalog.format('REINDEX INDEX %s', index_oid);
    END LOOP;
END
$$;

-- Triggers made by 0.2.0's so_manage_column fire on UPDATE and DELETE
-- only: their columns work as before, but pass no rights on to readers
-- (values entering them were not checked) until the trigger is remade.
DO $$
DECLARE
    tables text;
BEGIN
    SELECT pg_catalog.string_agg(DISTINCT t.tgrelid::regclass::text, ', ') INTO tables
      FROM pg_catalog.pg_trigger AS t
     WHERE t.tgfoid OPERATOR(pg_catalog.=) '@extschema@.so_manage()'::regprocedure
       AND (t.tgtype::integer OPERATOR(pg_catalog.&) 4) OPERATOR(pg_catalog.=) 0;
    IF tables IS NOT NULL THEN
        RAISE WARNING 'stored_object 0.3.0: the so_manage triggers of % do not check INSERTs', tables
            USING HINT = 'Run so_manage_column(table, column) again for each managed column: rows then pass their table owner''s read privilege on to the roles that may read them.';
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- Waiting for the worker
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_wait_for_worker(timeout interval DEFAULT '1 minute') RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION so_wait_for_worker(interval) IS
    'Waits until the background worker has carried out the due deletes and undos of this database (true), or the timeout passed (false); false at once without a worker or on a standby';

-- Comparisons by identity raise no error that depends on the values (only
-- on corrupt data) and reveal nothing but the result: LEAKPROOF, so a
-- query under row-level security may use an index on a stored_object
-- column (the reader's check, see the README's security model).
ALTER FUNCTION so_eq(stored_object, stored_object) LEAKPROOF;
ALTER FUNCTION so_ne(stored_object, stored_object) LEAKPROOF;
ALTER FUNCTION so_lt(stored_object, stored_object) LEAKPROOF;
ALTER FUNCTION so_le(stored_object, stored_object) LEAKPROOF;
ALTER FUNCTION so_gt(stored_object, stored_object) LEAKPROOF;
ALTER FUNCTION so_ge(stored_object, stored_object) LEAKPROOF;

-- A value being stored in a managed column is checked against the queue:
-- by identity, through this index.
CREATE INDEX so_delete_queue_object ON so_delete_queue (object);

-- ---------------------------------------------------------------------------
-- Listing
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_list(backend text, prefix text DEFAULT '', recursive boolean DEFAULT true)
RETURNS SETOF stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED ROWS 1000;
COMMENT ON FUNCTION so_list(text, text, boolean) IS
    'The objects of a backend whose keys start with prefix (recursive => false: not below a further "/"), as stored objects, the extension''s own files left out; for roles with the read privilege on the backend';

-- ---------------------------------------------------------------------------
-- Public backends
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_url(obj stored_object, expires_in interval DEFAULT '1 hour') RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_url(stored_object, interval) IS
    'The object''s public URL on a backend with public_base_url, else a signed download URL valid for expires_in (as so_sign)';

-- ---------------------------------------------------------------------------
-- Descriptions that 0.3.0 changed
-- ---------------------------------------------------------------------------

COMMENT ON TABLE so_backends IS
    'Registered storage backends, their owners and privileges. Holds secrets: readable only by superusers and this database''s storage administrators; list backends with so_backend_info';
COMMENT ON FUNCTION so_delete(stored_object) IS
    'Deletes the object after the transaction commits (queued in so_delete_queue, carried out by the background worker once the commit is durable); nothing happens if it rolls back; needs the delete privilege';
COMMENT ON FUNCTION so_orphans(text, text, interval) IS
    'Objects of a backend that no stored_object or stored_object[] column of this database references, older than older_than; for storage administrators';
COMMENT ON FUNCTION so_register_backend(text, text, jsonb) IS
    'Registers a storage backend: file:///dir, osfs://dir or s3://bucket/prefix, with options; for storage administrators (file backends, server credentials and internal endpoints: superusers)';

-- ---------------------------------------------------------------------------
-- Object attributes: headers, storage class and tags kept on the object
-- ---------------------------------------------------------------------------

-- so_put takes attributes: a new argument, so the function is made again
-- (an EXECUTE privilege revoked from so_put by hand must be revoked again).
DROP FUNCTION so_put(text, text, bytea, text, jsonb, boolean);
CREATE FUNCTION so_put(backend text, filename text, content bytea, content_type text DEFAULT NULL,
                       metadata jsonb DEFAULT NULL, overwrite boolean DEFAULT false,
                       attributes jsonb DEFAULT NULL)
RETURNS stored_object AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_put(text, text, bytea, text, jsonb, boolean, jsonb) IS
    'Stores content under filename in a backend and returns its metadata; removed again if the transaction aborts; create-only unless overwrite; attributes (cache_control, content_disposition, content_encoding, content_language, storage_class, tags) over the backend''s defaults; needs the write privilege';

CREATE FUNCTION so_attributes(stored_object) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_attributes(stored_object) IS
    'What the store keeps on the object beside its bytes: headers, storage class, tags, and how it is encrypted (sse, sse_kms_key_id)';

-- ---------------------------------------------------------------------------
-- Operation statistics
-- ---------------------------------------------------------------------------

-- The function checks its caller (pg_read_all_stats: every database;
-- storage administrators: their own), so every role may call it.
CREATE FUNCTION so_operation_stats_rows(
    OUT dbid oid, OUT backend text, OUT operation text, OUT calls bigint, OUT errors bigint,
    OUT errors_by_class jsonb, OUT bytes_read bigint, OUT bytes_written bigint, OUT retries bigint,
    OUT total_time double precision, OUT max_time double precision)
RETURNS SETOF record AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_operation_stats_rows() IS 'Internal: the rows of so_operation_stats';

CREATE VIEW so_operation_stats AS
SELECT s.dbid, d.datname, s.backend, s.operation, s.calls, s.errors, s.errors_by_class,
       s.bytes_read, s.bytes_written, s.retries, s.total_time, s.max_time,
       CASE WHEN s.calls OPERATOR(pg_catalog.>) 0
            THEN s.total_time OPERATOR(pg_catalog./) s.calls END AS mean_time
  FROM @extschema@.so_operation_stats_rows() AS s
  LEFT JOIN pg_catalog.pg_database AS d ON d.oid OPERATOR(pg_catalog.=) s.dbid;
COMMENT ON VIEW so_operation_stats IS
    'Storage operations per database, backend and operation (put, get, stat, delete, sign, copy, list): calls, errors by SQLSTATE class, bytes read from and written to the store, retries, total, longest and mean time in milliseconds; every database''s for pg_read_all_stats, this database''s for its storage administrators';
GRANT SELECT ON so_operation_stats TO PUBLIC;

CREATE FUNCTION so_operation_stats_reset() RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_operation_stats_reset() IS
    'Zeroes so_operation_stats: every database''s for a superuser, this database''s for its storage administrators';

-- ---------------------------------------------------------------------------
-- Uploads from clients, with limits the database sets
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_sign_upload(backend text, filename text, content_type text, size bigint DEFAULT NULL,
                               max_size bigint DEFAULT NULL, expires_in interval DEFAULT '1 hour',
                               method text DEFAULT 'POST')
RETURNS jsonb AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_sign_upload(text, text, text, bigint, bigint, interval, text) IS
    'A signed upload of filename a client sends straight to the store (S3: a POST form with a policy, or a PUT with signed Content-Type and Content-Length; local: a PUT nginx takes into the upload area), the backend''s max_size and allowed_content_types and the caller''s size limits inside what is signed; needs the write privilege';

CREATE FUNCTION so_adopt(backend text, filename text, expected_size bigint DEFAULT NULL,
                         expected_checksum text DEFAULT NULL)
RETURNS stored_object AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_adopt(text, text, bigint, text) IS
    'Turns an uploaded object into a value inside the transaction: checked against the backend''s limits and the expected size and SHA-256 (a failing object is removed); removed again if the transaction aborts; needs the write privilege';

-- Puts beyond one bytea: in pieces from SQL, or from a file of the server.
CREATE FUNCTION so_upload_begin(backend text, filename text, content_type text DEFAULT NULL,
                                metadata jsonb DEFAULT NULL, attributes jsonb DEFAULT NULL)
RETURNS bigint AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION so_upload_append(upload bigint, content bytea) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
CREATE FUNCTION so_upload_finish(upload bigint) RETURNS stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
CREATE FUNCTION so_upload_abort(upload bigint) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION so_upload_begin(text, text, text, jsonb, jsonb) IS
    'Starts a put whose content arrives in pieces (so_upload_append), within this transaction; returns its number; needs the write privilege';
COMMENT ON FUNCTION so_upload_append(bigint, bytea) IS
    'Appends a piece to an upload; returns the bytes so far; memory stays at one piece (S3: one part)';
COMMENT ON FUNCTION so_upload_finish(bigint) IS
    'Stores an upload create-only and returns its value; removed again if the transaction aborts';
COMMENT ON FUNCTION so_upload_abort(bigint) IS 'Abandons an upload and removes what it wrote';

CREATE FUNCTION so_put_file(backend text, filename text, path text, content_type text DEFAULT NULL,
                            metadata jsonb DEFAULT NULL, attributes jsonb DEFAULT NULL)
RETURNS stored_object AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_put_file(text, text, text, text, jsonb, jsonb) IS
    'Stores a file of the server''s file system, streamed (never held whole); for members of pg_read_server_files with the write privilege';
REVOKE EXECUTE ON FUNCTION so_put_file(text, text, text, text, jsonb, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION so_put_file(text, text, text, text, jsonb, jsonb) TO pg_read_server_files;
