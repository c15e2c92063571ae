-- The stored_object type: text form, errors, casts, accessors, identity.
CREATE EXTENSION stored_object;

-- What advanced-alchemy's FileObject.to_dict() writes reads as is, and
-- prints canonically: fixed key order, no whitespace, metadata keys sorted.
SELECT '{"filename": "docs/report.pdf", "content_type": "application/pdf", "size": 1024,
         "path": "docs/report.pdf", "protocol": "file", "last_modified": 1700000000.123456,
         "checksum": null, "etag": "\"abc\"", "version_id": null,
         "metadata": {"owner": {"id": 7}, "tags": ["a", "b"]}, "extra": {},
         "backend": "local"}'::stored_object;

-- Only backend and filename are required.
SELECT '{"backend": "local", "filename": "a.txt"}'::stored_object;

-- The same value always prints the same text.
SELECT a::text = b::text AS canonical
FROM (SELECT '{"filename":"x","backend":"b","metadata":{"b":1,"a":2}}'::stored_object AS a,
             '{ "backend" : "b", "metadata" : { "a" : 2, "b" : 1 }, "filename" : "x" }'::stored_object AS b) s;

-- Accessors.
SELECT so_backend(o), so_filename(o), so_content_type(o), so_size(o), so_etag(o),
       so_checksum(o), so_version_id(o), so_last_modified(o) AT TIME ZONE 'UTC' AS last_modified_utc,
       so_metadata(o)
FROM (SELECT '{"backend":"s3","filename":"img/cat.png","content_type":"image/png","size":42,
               "etag":"e","checksum":"c","version_id":"v1","last_modified":1700000000.5,
               "metadata":{"k":"v"}}'::stored_object AS o) s;
SELECT so_content_type(o) IS NULL AS no_type, so_size(o) IS NULL AS no_size,
       so_last_modified(o) IS NULL AS no_time, so_metadata(o) AS metadata
FROM (SELECT '{"backend":"b","filename":"f"}'::stored_object AS o) s;

-- Bad input: SQLSTATE 22P02 and a message naming what is wrong.
SELECT '{"backend": "b", "filename": "f",}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '["backend", "filename"]'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"filename": "f"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "", "filename": "f"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": ""}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": ["f"]}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "size": "12"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "size": -1}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "size": 1.5}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "last_modified": "2024-01-01"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "metadata": "x"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "owner": "me"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f\u0000"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "path": "other"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT '{"backend": "b", "filename": "f", "extra": {"x": 1}}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
SELECT repeat('[', 1000)::stored_object;
\echo :LAST_ERROR_SQLSTATE

-- Casts to and from json, jsonb and text.
SELECT '{"backend":"b","filename":"f","size":3}'::stored_object::jsonb;
SELECT '{"backend":"b","filename":"f"}'::stored_object::json;
SELECT '{"backend":"b","filename":"f"}'::stored_object::text;
SELECT '{"backend":"b","filename":"f","size":3}'::jsonb::stored_object;
SELECT '{"backend":"b","filename":"f"}'::json::stored_object;

-- A JSONB column written by an application converts in place: with a cast
-- when values name their backend, with so_from_json / so_array_from_json
-- when the backend was a column setting (advanced-alchemy) or a column
-- holds a list of files.
CREATE TABLE documents (id int PRIMARY KEY, file jsonb, files jsonb);
INSERT INTO documents VALUES
  (1, '{"filename":"a.pdf","content_type":"application/pdf","size":10,"last_modified":1700000000.25,
        "checksum":null,"etag":"e1","version_id":null,"metadata":{"n":[1,{"x":true}]},"backend":"local"}',
      '[{"filename":"p1.png","backend":"local","size":1},{"filename":"p2.png","backend":"local","size":2}]'),
  (2, '{"filename":"b.txt","content_type":"text/plain","size":0,"path":"b.txt","protocol":"file",
        "last_modified":null,"checksum":null,"etag":null,"version_id":null,"metadata":{},"extra":{}}',
      '[]'),
  (3, NULL, NULL);
CREATE TABLE documents_before AS SELECT * FROM documents;
ALTER TABLE documents
  ALTER COLUMN file TYPE stored_object USING so_from_json(file, default_backend => 'local'),
  ALTER COLUMN files TYPE stored_object[] USING so_array_from_json(files, 'local');
SELECT id, file, array_length(files, 1) AS nfiles FROM documents ORDER BY id;
-- Every value survives: back to jsonb, the documents compare equal
-- (ignoring keys we do not keep, and the added backend).
SELECT b.id,
       (b.file - 'path' - 'protocol' - 'extra' || '{"backend":"local"}')
         @> jsonb_strip_nulls(d.file::jsonb) AS file_survives,
       jsonb_strip_nulls(b.file - 'path' - 'protocol' - 'extra' || '{"backend":"local"}')
         = jsonb_strip_nulls(d.file::jsonb) AS file_equal
FROM documents_before b JOIN documents d USING (id) WHERE b.file IS NOT NULL ORDER BY b.id;
SELECT so_filename(f), so_size(f) FROM documents, unnest(files) AS f ORDER BY 1;
SELECT so_array_from_json('null') IS NULL AS json_null, so_array_from_json('[null]') AS no_files,
       so_filename((so_array_from_json('{"backend":"b","filename":"single"}'))[1]) AS single_object;
SELECT so_array_from_json('[{"filename":"no-backend"}]');
\echo :LAST_ERROR_SQLSTATE
-- A plain cast works when every value names its backend.
SELECT '{"backend":"b","filename":"f"}'::jsonb::stored_object = so_from_json('{"filename":"f"}', 'b') AS same;

-- Identity is (backend, filename, version_id): size and metadata do not count.
SELECT '{"backend":"b","filename":"f","size":1}'::stored_object
     = '{"backend":"b","filename":"f","size":2}'::stored_object AS same_identity,
       '{"backend":"b","filename":"f"}'::stored_object
     = '{"backend":"b","filename":"f","version_id":"v1"}'::stored_object AS other_version,
       '{"backend":"a","filename":"z"}'::stored_object
     < '{"backend":"b","filename":"a"}'::stored_object AS ordered_by_backend_first;

CREATE TABLE attachments (id serial, file stored_object);
INSERT INTO attachments (file) VALUES
  ('{"backend":"b","filename":"x","size":1}'), ('{"backend":"b","filename":"x","size":2}'),
  ('{"backend":"b","filename":"y"}'), ('{"backend":"b","filename":"x","version_id":"2"}');
SELECT DISTINCT so_filename(file), so_version_id(file) FROM attachments ORDER BY 1, 2;
SELECT so_filename(file), count(*) FROM attachments GROUP BY file ORDER BY 1;
-- Hash and merge joins use the operator classes.
SET enable_nestloop = off;
SET enable_mergejoin = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM attachments a JOIN attachments b ON a.file = b.file;
SELECT count(*) FROM attachments a JOIN attachments b ON a.file = b.file;
RESET enable_mergejoin;
SET enable_hashjoin = off;
SELECT count(*) FROM attachments a JOIN attachments b ON a.file = b.file;
RESET enable_hashjoin;
RESET enable_nestloop;
-- UNIQUE is by identity.
CREATE UNIQUE INDEX ON attachments (file) WHERE id > 2;
INSERT INTO attachments (file) VALUES ('{"backend":"b","filename":"y","size":99}');
\echo :LAST_ERROR_SQLSTATE
-- Arrays of files (advanced-alchemy's multiple=True).
SELECT ARRAY['{"backend":"b","filename":"1"}','{"backend":"b","filename":"2"}']::stored_object[]
     = ARRAY['{"backend":"b","filename":"1","size":5}','{"backend":"b","filename":"2"}']::stored_object[] AS arrays_equal;
SELECT '{"backend":"b","filename":"2"}'::stored_object
     = ANY (ARRAY['{"backend":"b","filename":"1"}','{"backend":"b","filename":"2"}']::stored_object[]) AS in_array;

-- COPY BINARY round-trips every value.
\getenv tmpdir SO_TEST_TMPDIR
\set copyfile :tmpdir '/attachments.bin'
COPY attachments TO :'copyfile' (FORMAT binary);
CREATE TABLE attachments_copy (LIKE attachments);
COPY attachments_copy FROM :'copyfile' (FORMAT binary);
SELECT count(*) AS rows, bool_and(a.file::text = c.file::text) AS identical
FROM attachments a JOIN attachments_copy c USING (id);

DROP TABLE documents, documents_before, attachments, attachments_copy;
