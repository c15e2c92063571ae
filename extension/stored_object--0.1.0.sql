-- stored_object 0.1.0: the stored_object type and the backend registry.
--
-- Function labels, chosen on purpose:
--   * Type I/O, accessors and identity operators are IMMUTABLE STRICT
--     PARALLEL SAFE: they depend on their argument only.
--   * Registry changes are VOLATILE PARALLEL UNSAFE: they write a table.

\echo Use "CREATE EXTENSION stored_object" to load this file. \quit

DO $$
BEGIN
    -- Keys, file names and metadata are UTF-8 end to end (S3 requires it).
    IF pg_catalog.current_setting('server_encoding') <> 'UTF8' THEN
        RAISE EXCEPTION 'stored_object requires a UTF8 database, not %',
            pg_catalog.current_setting('server_encoding')
            USING ERRCODE = 'feature_not_supported';
    END IF;
    -- The storage administrators' role; cluster-wide, so it may already exist.
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'stored_object_admin') THEN
        CREATE ROLE stored_object_admin NOLOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------------------
-- The type
-- ---------------------------------------------------------------------------

CREATE TYPE stored_object;

CREATE FUNCTION stored_object_in(cstring) RETURNS stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION stored_object_out(stored_object) RETURNS cstring
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION stored_object_recv(internal) RETURNS stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION stored_object_send(stored_object) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE stored_object (
    INPUT = stored_object_in,
    OUTPUT = stored_object_out,
    RECEIVE = stored_object_recv,
    SEND = stored_object_send,
    INTERNALLENGTH = VARIABLE,
    STORAGE = extended
);

COMMENT ON TYPE stored_object IS
    'Metadata of one stored file (backend, filename, content type, size, etag, checksum, version, last modified, user metadata); text form is a JSON object';
COMMENT ON FUNCTION stored_object_in(cstring) IS 'Reads a stored_object from its JSON text';
COMMENT ON FUNCTION stored_object_out(stored_object) IS 'Writes a stored_object as canonical JSON text';
COMMENT ON FUNCTION stored_object_recv(internal) IS 'Reads the binary form of a stored_object';
COMMENT ON FUNCTION stored_object_send(stored_object) IS 'Writes the binary form of a stored_object';

-- JSON in and out through the text form: a JSONB column written by an
-- application converts with USING col::stored_object, and a stored_object
-- can be stored into a json/jsonb column.
CREATE CAST (stored_object AS jsonb) WITH INOUT AS ASSIGNMENT;
CREATE CAST (jsonb AS stored_object) WITH INOUT AS ASSIGNMENT;
CREATE CAST (stored_object AS json) WITH INOUT AS ASSIGNMENT;
CREATE CAST (json AS stored_object) WITH INOUT AS ASSIGNMENT;
COMMENT ON CAST (stored_object AS jsonb) IS 'the canonical JSON text form as jsonb';
COMMENT ON CAST (jsonb AS stored_object) IS 'reads a JSON file object; errors name what is wrong';
COMMENT ON CAST (stored_object AS json) IS 'the canonical JSON text form as json';
COMMENT ON CAST (json AS stored_object) IS 'reads a JSON file object; errors name what is wrong';

-- Conversions for JSON written by applications that keep the backend in
-- the column definition rather than in each value (advanced-alchemy), and
-- for lists of files (its multiple=True columns). Not STRICT: a NULL
-- default_backend means "values name their backend".
CREATE FUNCTION so_from_json(value jsonb, default_backend text DEFAULT NULL)
RETURNS stored_object LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN (CASE WHEN default_backend IS NULL OR value->>'backend' IS NOT NULL THEN value
             ELSE value || pg_catalog.jsonb_build_object('backend', default_backend)
        END)::@extschema@.stored_object;

CREATE FUNCTION so_array_from_json(value jsonb, default_backend text DEFAULT NULL)
RETURNS stored_object[] LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT CASE WHEN value IS NULL OR pg_catalog.jsonb_typeof(value) = 'null' THEN NULL
           ELSE ARRAY(SELECT @extschema@.so_from_json(e.value, default_backend)
                        FROM pg_catalog.jsonb_array_elements(
                               CASE WHEN pg_catalog.jsonb_typeof(value) = 'array' THEN value
                                    ELSE pg_catalog.jsonb_build_array(value) END)
                             WITH ORDINALITY AS e(value, n)
                       WHERE pg_catalog.jsonb_typeof(e.value) <> 'null'
                       ORDER BY e.n)
           END;
END;

COMMENT ON FUNCTION so_from_json(jsonb, text) IS
    'Converts a JSON file object to stored_object, adding default_backend when the value names none';
COMMENT ON FUNCTION so_array_from_json(jsonb, text) IS
    'Converts a JSON array of file objects (or a single one) to stored_object[], skipping nulls';

-- ---------------------------------------------------------------------------
-- Accessors
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_backend(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_filename(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_content_type(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_size(stored_object) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_etag(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_checksum(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_version_id(stored_object) RETURNS text
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- IMMUTABLE like to_timestamp(float8): an epoch is the same instant in every zone.
CREATE FUNCTION so_last_modified(stored_object) RETURNS timestamptz
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_metadata(stored_object) RETURNS jsonb
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION so_backend(stored_object) IS 'Key of the backend that holds the object';
COMMENT ON FUNCTION so_filename(stored_object) IS 'Key of the object inside its backend';
COMMENT ON FUNCTION so_content_type(stored_object) IS 'MIME type of the object, or NULL';
COMMENT ON FUNCTION so_size(stored_object) IS 'Size of the object in bytes, or NULL';
COMMENT ON FUNCTION so_etag(stored_object) IS 'Entity tag of the object, or NULL';
COMMENT ON FUNCTION so_checksum(stored_object) IS 'Checksum of the object content, or NULL';
COMMENT ON FUNCTION so_version_id(stored_object) IS 'Version of the object in a versioned store, or NULL';
COMMENT ON FUNCTION so_last_modified(stored_object) IS 'When the object was last written, or NULL';
COMMENT ON FUNCTION so_metadata(stored_object) IS 'User metadata of the object';

-- ---------------------------------------------------------------------------
-- Identity: (backend, filename, version_id)
-- ---------------------------------------------------------------------------

CREATE FUNCTION so_eq(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_ne(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_lt(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_le(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_gt(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_ge(stored_object, stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_cmp(stored_object, stored_object) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_hash(stored_object) RETURNS integer
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION so_hash_extended(stored_object, bigint) RETURNS bigint
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION so_eq(stored_object, stored_object) IS 'Same identity: backend, filename and version_id';
COMMENT ON FUNCTION so_ne(stored_object, stored_object) IS 'Different identity';
COMMENT ON FUNCTION so_lt(stored_object, stored_object) IS 'Identity order: less than';
COMMENT ON FUNCTION so_le(stored_object, stored_object) IS 'Identity order: less than or equal';
COMMENT ON FUNCTION so_gt(stored_object, stored_object) IS 'Identity order: greater than';
COMMENT ON FUNCTION so_ge(stored_object, stored_object) IS 'Identity order: greater than or equal';
COMMENT ON FUNCTION so_cmp(stored_object, stored_object) IS 'btree support: compares identities bytewise';
COMMENT ON FUNCTION so_hash(stored_object) IS 'hash support: hash of the identity';
COMMENT ON FUNCTION so_hash_extended(stored_object, bigint) IS 'hash support: seeded 64-bit hash of the identity';

CREATE OPERATOR = (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_eq,
    COMMUTATOR = =, NEGATOR = <>, RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES
);
CREATE OPERATOR <> (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_ne,
    COMMUTATOR = <>, NEGATOR = =, RESTRICT = neqsel, JOIN = neqjoinsel
);
CREATE OPERATOR < (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_lt,
    COMMUTATOR = >, NEGATOR = >=, RESTRICT = scalarltsel, JOIN = scalarltjoinsel
);
CREATE OPERATOR <= (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_le,
    COMMUTATOR = >=, NEGATOR = >, RESTRICT = scalarlesel, JOIN = scalarlejoinsel
);
CREATE OPERATOR > (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_gt,
    COMMUTATOR = <, NEGATOR = <=, RESTRICT = scalargtsel, JOIN = scalargtjoinsel
);
CREATE OPERATOR >= (
    LEFTARG = stored_object, RIGHTARG = stored_object, PROCEDURE = so_ge,
    COMMUTATOR = <=, NEGATOR = <, RESTRICT = scalargesel, JOIN = scalargejoinsel
);

COMMENT ON OPERATOR = (stored_object, stored_object) IS 'same identity (backend, filename, version_id)';
COMMENT ON OPERATOR <> (stored_object, stored_object) IS 'different identity';
COMMENT ON OPERATOR < (stored_object, stored_object) IS 'identity order: less than';
COMMENT ON OPERATOR <= (stored_object, stored_object) IS 'identity order: less than or equal';
COMMENT ON OPERATOR > (stored_object, stored_object) IS 'identity order: greater than';
COMMENT ON OPERATOR >= (stored_object, stored_object) IS 'identity order: greater than or equal';

CREATE OPERATOR CLASS stored_object_ops DEFAULT FOR TYPE stored_object USING btree AS
    OPERATOR 1 <, OPERATOR 2 <=, OPERATOR 3 =, OPERATOR 4 >=, OPERATOR 5 >,
    FUNCTION 1 so_cmp(stored_object, stored_object);

CREATE OPERATOR CLASS stored_object_hash_ops DEFAULT FOR TYPE stored_object USING hash AS
    OPERATOR 1 =,
    FUNCTION 1 so_hash(stored_object),
    FUNCTION 2 so_hash_extended(stored_object, bigint);

-- ---------------------------------------------------------------------------
-- The backend registry
-- ---------------------------------------------------------------------------

CREATE TABLE so_backends (
    key text PRIMARY KEY,
    url text NOT NULL,
    options jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE so_backends IS
    'Registered storage backends. Holds secrets: readable only by superusers and stored_object_admin; list backends with so_backend_info';

-- pg_dump dumps its rows, so a dump and restore keeps the backends.
SELECT pg_catalog.pg_extension_config_dump('so_backends', '');

REVOKE ALL ON so_backends FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON so_backends TO stored_object_admin;

CREATE FUNCTION so_backends_trigger() RETURNS trigger
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_backends_trigger() IS
    'Validates every write to so_backends, checks who may write it, and invalidates the registry caches';

CREATE TRIGGER so_backends_check BEFORE INSERT OR UPDATE OR DELETE ON so_backends
    FOR EACH ROW EXECUTE FUNCTION so_backends_trigger();
CREATE TRIGGER so_backends_truncate AFTER TRUNCATE ON so_backends
    FOR EACH STATEMENT EXECUTE FUNCTION so_backends_trigger();

CREATE FUNCTION so_register_backend(key text, url text, options jsonb DEFAULT '{}')
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO @extschema@.so_backends (key, url, options)
    VALUES (key, url, COALESCE(options, '{}'));
EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'storage backend "%" already exists', key
        USING ERRCODE = 'duplicate_object', HINT = 'Use so_alter_backend to change it.';
END
$$;

CREATE FUNCTION so_alter_backend(key text, url text DEFAULT NULL, options jsonb DEFAULT NULL)
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Options merge: given keys replace, a JSON null removes a key.
    UPDATE @extschema@.so_backends AS b
       SET url = COALESCE(so_alter_backend.url, b.url),
           options = jsonb_strip_nulls(b.options || COALESCE(so_alter_backend.options, '{}'))
     WHERE b.key = so_alter_backend.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'storage backend "%" does not exist', so_alter_backend.key
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

CREATE FUNCTION so_unregister_backend(key text)
RETURNS void LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM @extschema@.so_backends AS b WHERE b.key = so_unregister_backend.key;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'storage backend "%" does not exist', so_unregister_backend.key
            USING ERRCODE = 'undefined_object';
    END IF;
END
$$;

COMMENT ON FUNCTION so_register_backend(text, text, jsonb) IS
    'Registers a storage backend: file:///dir, osfs://dir or s3://bucket/prefix, with options';
COMMENT ON FUNCTION so_alter_backend(text, text, jsonb) IS
    'Changes a backend: a new URL, and options merged in (a JSON null removes an option)';
COMMENT ON FUNCTION so_unregister_backend(text) IS 'Removes a storage backend from the registry';

REVOKE EXECUTE ON FUNCTION so_register_backend(text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_alter_backend(text, text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION so_unregister_backend(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION so_register_backend(text, text, jsonb) TO stored_object_admin;
GRANT EXECUTE ON FUNCTION so_alter_backend(text, text, jsonb) TO stored_object_admin;
GRANT EXECUTE ON FUNCTION so_unregister_backend(text) TO stored_object_admin;

-- Names of the options that hold secrets, from the C++ core, so the list
-- exists in one place.
CREATE FUNCTION so_secret_options() RETURNS text[]
    AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_secret_options() IS 'Names of backend options whose values are secrets';

-- The list of backends for everyone: secret values removed, the names of
-- the secrets that are set listed instead.
CREATE VIEW so_backend_info AS
SELECT b.key,
       pg_catalog.lower(pg_catalog.split_part(b.url, ':', 1)) AS scheme,
       b.url,
       b.options - @extschema@.so_secret_options() AS options,
       ARRAY(SELECT s FROM pg_catalog.unnest(@extschema@.so_secret_options()) AS s
              WHERE b.options ? s ORDER BY s) AS secrets_set,
       b.created_at,
       b.updated_at
  FROM @extschema@.so_backends AS b;
COMMENT ON VIEW so_backend_info IS 'Registered storage backends, without secret values';
GRANT SELECT ON so_backend_info TO PUBLIC;

-- ---------------------------------------------------------------------------
-- Stored objects
-- ---------------------------------------------------------------------------
--
-- Labels:
--   * so_put, so_delete: VOLATILE PARALLEL UNSAFE; they write storage and
--     record work for the transaction's end in this backend's memory.
--   * so_get, so_exists: VOLATILE (storage changes under us) PARALLEL
--     RESTRICTED: they read what this transaction staged, which only the
--     leader process knows.
--   * so_stat: VOLATILE PARALLEL SAFE.
--   * so_sign, so_verify_url: STABLE PARALLEL SAFE; no I/O, and every row
--     of a statement uses the statement's start time.

-- Deletes waiting for their transaction's commit or for a retry.
CREATE TABLE so_pending_deletes (
    id bigserial PRIMARY KEY,
    object stored_object NOT NULL,
    scheduled_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    attempts integer NOT NULL DEFAULT 0,
    last_error text
);
COMMENT ON TABLE so_pending_deletes IS
    'Deletes recorded by committed transactions whose objects may still exist; so_process_pending() retries them';
SELECT pg_catalog.pg_extension_config_dump('so_pending_deletes', '');
SELECT pg_catalog.pg_extension_config_dump('so_pending_deletes_id_seq', '');
REVOKE ALL ON so_pending_deletes FROM PUBLIC;
GRANT SELECT ON so_pending_deletes TO stored_object_admin;

CREATE FUNCTION so_put(backend text, filename text, content bytea, content_type text DEFAULT NULL,
                       metadata jsonb DEFAULT NULL, overwrite boolean DEFAULT false)
RETURNS stored_object AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE PARALLEL UNSAFE;
COMMENT ON FUNCTION so_put(text, text, bytea, text, jsonb, boolean) IS
    'Stores content under filename in a backend and returns its metadata; removed again if the transaction aborts; create-only unless overwrite';

CREATE FUNCTION so_get(obj stored_object) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
CREATE FUNCTION so_get(obj stored_object, "offset" bigint, length bigint) RETURNS bytea
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_get(stored_object) IS 'Content of a stored object';
COMMENT ON FUNCTION so_get(stored_object, bigint, bigint) IS
    'Part of a stored object: length bytes from offset (fewer at the end)';

CREATE FUNCTION so_exists(obj stored_object) RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION so_exists(stored_object) IS 'Whether the object exists in its backend';

CREATE FUNCTION so_stat(backend text, filename text) RETURNS stored_object
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_stat(text, text) IS
    'Metadata of an object as stored (size, time, etag, checksum), to adopt a file written by other means';

CREATE FUNCTION so_delete(obj stored_object) RETURNS void
    AS 'MODULE_PATHNAME' LANGUAGE C VOLATILE STRICT PARALLEL UNSAFE;
COMMENT ON FUNCTION so_delete(stored_object) IS
    'Deletes the object when the transaction commits; nothing happens if it rolls back';

CREATE FUNCTION so_sign(obj stored_object, expires_in interval DEFAULT '1 hour',
                        for_upload boolean DEFAULT false, download_as text DEFAULT NULL,
                        download_type text DEFAULT NULL)
RETURNS text AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION so_sign(stored_object, interval, boolean, text, text) IS
    'A URL that lets its holder download (or upload) the object until it expires; NULL for a NULL object';

CREATE FUNCTION so_verify_url(url text, method text DEFAULT 'GET') RETURNS boolean
    AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION so_verify_url(text, text) IS
    'Whether a URL signed for a local backend is intact, unexpired and valid for the method';
