-- Files bound to rows: the so_manage trigger, the delete queue, its
-- background worker and so_process_pending, the orphan sweeper, so_copy.
-- Deletes happen after COMMIT, in the worker: so_wait_for_worker() waits
-- until it has carried out what is due.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\set root 'file://' :tmpdir '/lifecycle'
SELECT so_register_backend('lc', :'root');
SELECT so_register_backend('lc2', :'root' || '-2');

CREATE TABLE albums (id int PRIMARY KEY, cover stored_object, photos stored_object[]);
CREATE INDEX ON albums (cover);
CREATE INDEX ON albums USING gin (photos);
SELECT so_manage_column('albums', 'cover');
SELECT so_manage_column('albums', 'photos');
-- Another table holds a copy of a value: its object is still referenced.
CREATE TABLE shares (id int PRIMARY KEY, file stored_object);
SELECT so_manage_column('shares', 'file');

INSERT INTO albums VALUES
  (1, so_put('lc', 'a1/cover.jpg', 'c1'), ARRAY[so_put('lc', 'a1/p1.jpg', '1'), so_put('lc', 'a1/p2.jpg', '2')]),
  (2, so_put('lc', 'a2/cover.jpg', 'c2'), NULL);
INSERT INTO shares VALUES (1, so_stat('lc', 'a1/p1.jpg'));

CREATE FUNCTION present(keys text[]) RETURNS TABLE (key text, present boolean) LANGUAGE sql AS $$
  SELECT k, so_exists(jsonb_build_object('backend', 'lc', 'filename', k)::stored_object) FROM unnest(keys) AS k
$$;

-- DELETE removes the row's objects after commit, except one still shared.
DELETE FROM albums WHERE id = 1;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['a1/cover.jpg', 'a1/p1.jpg', 'a1/p2.jpg']);
-- A rolled-back DELETE removes nothing.
BEGIN;
DELETE FROM albums WHERE id = 2;
ROLLBACK;
SELECT * FROM present(ARRAY['a2/cover.jpg']);
-- UPDATE removes what the new value no longer holds (by identity).
INSERT INTO albums VALUES (3, NULL, ARRAY[so_put('lc', 'a3/x.jpg', 'x'), so_put('lc', 'a3/y.jpg', 'y')]);
UPDATE albums SET photos = photos[1:1] || so_put('lc', 'a3/z.jpg', 'z') WHERE id = 3;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['a3/x.jpg', 'a3/y.jpg', 'a3/z.jpg']);
UPDATE albums SET cover = so_put('lc', 'a2/cover-v2.jpg', 'c2v2') WHERE id = 2;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['a2/cover.jpg', 'a2/cover-v2.jpg']);
-- Deleting the last reference removes it.
DELETE FROM shares;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['a1/p1.jpg']);

-- The decision is taken at commit, when every statement has run: a file
-- moved from one row to another in one transaction stays.
CREATE TABLE docs7 (id int, f stored_object);
SELECT so_manage_column('docs7', 'f');
INSERT INTO docs7 VALUES (1, so_put('lc', 't7/keep.txt', 'keep')), (3, so_put('lc', 't7/moved.txt', 'moved'));
BEGIN;
DELETE FROM docs7 WHERE id = 1;
INSERT INTO docs7 SELECT 2, '{"backend": "lc", "filename": "t7/keep.txt"}';
COMMIT;
BEGIN;
UPDATE albums SET cover = NULL WHERE id = 3;
UPDATE docs7 SET f = NULL WHERE id = 3;
UPDATE albums SET cover = '{"backend": "lc", "filename": "t7/moved.txt"}' WHERE id = 3;
COMMIT;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['t7/keep.txt', 't7/moved.txt']);
-- A file released and not taken up again is deleted after commit.
UPDATE albums SET cover = NULL WHERE id = 3;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT * FROM present(ARRAY['t7/moved.txt']);
DELETE FROM docs7;
SELECT so_wait_for_worker('1 minute') AS settled;
DROP TABLE docs7;

-- so_manage_column names the trigger after the column; names too long for
-- one get a hash, so two long columns never share (replace) a trigger.
CREATE TABLE long_names (
  "a_column_name_that_is_long_enough_to_be_cut_short_by_postgres_1" stored_object,
  "a_column_name_that_is_long_enough_to_be_cut_short_by_postgres_2" stored_object);
SELECT so_manage_column('long_names', 'a_column_name_that_is_long_enough_to_be_cut_short_by_postgres_1');
SELECT so_manage_column('long_names', 'a_column_name_that_is_long_enough_to_be_cut_short_by_postgres_2');
SELECT so_manage_column('long_names', 'a_column_name_that_is_long_enough_to_be_cut_short_by_postgres_2');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'long_names'::regclass ORDER BY 1;
DROP TABLE long_names;

-- Tens of thousands of managed values stored and deleted in one
-- transaction each: the locks that keep the commit-time decision right
-- escalate to the backend, so the shared lock table is not exhausted.
CREATE TABLE bulk (id int PRIMARY KEY, f stored_object);
CREATE INDEX ON bulk (f);
SELECT so_manage_column('bulk', 'f');
BEGIN;
INSERT INTO bulk SELECT i, jsonb_build_object('backend', 'lc', 'filename', 'bulk/' || i)::text::stored_object
  FROM generate_series(1, 20000) AS i;
SELECT count(*) < 300 AS few_locks FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory';
COMMIT;
BEGIN;
DELETE FROM bulk;
COMMIT;
SELECT so_wait_for_worker('2 minutes') AS settled;
SELECT count(*) AS left_queued FROM so_pending_deletes WHERE so_filename(object) LIKE 'bulk/%';
DROP TABLE bulk;

-- Bad use of the trigger: each a clear error.
CREATE TRIGGER t BEFORE DELETE ON albums FOR EACH ROW EXECUTE FUNCTION so_manage('cover');
DELETE FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER t ON albums;
CREATE TRIGGER t AFTER DELETE ON albums FOR EACH STATEMENT EXECUTE FUNCTION so_manage('cover');
DELETE FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER t ON albums;
CREATE TRIGGER t AFTER DELETE ON albums FOR EACH ROW EXECUTE FUNCTION so_manage();
DELETE FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER t ON albums;
CREATE TRIGGER t AFTER DELETE ON albums FOR EACH ROW EXECUTE FUNCTION so_manage('no_such_column');
DELETE FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER t ON albums;
CREATE TRIGGER t AFTER DELETE ON albums FOR EACH ROW EXECUTE FUNCTION so_manage('id');
DELETE FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
DROP TRIGGER t ON albums;
SELECT so_manage();
\echo :LAST_ERROR_SQLSTATE
SELECT so_manage_column('albums', 'id');
\echo :LAST_ERROR_SQLSTATE
SELECT so_manage_column('albums', 'nope');
\echo :LAST_ERROR_SQLSTATE

-- The delete queue, by hand: so_process_pending does what the worker does,
-- and never deletes a key reused since. (These rows are due only at
-- 'infinity', so the worker leaves them to us.)
INSERT INTO so_pending_deletes (object, next_attempt_at) VALUES
  (so_put('lc', 'queue/due.txt', 'due'), 'infinity'),                  -- still there: deleted
  ('{"backend": "lc", "filename": "queue/gone.txt"}', 'infinity'),     -- already gone
  (jsonb_set(so_put('lc', 'queue/reused.txt', 'new content')::jsonb, '{size}', '3')::stored_object,
   'infinity'),                                                          -- another version now: kept
  ('{"backend": "nowhere", "filename": "x.txt"}', 'infinity');          -- unknown backend: fails
SELECT * FROM so_process_pending();
-- What failed stays, with its error and a retry time (backoff).
SELECT so_filename(object), attempts, last_error, next_attempt_at > now() AS retry_later
  FROM so_pending_deletes;
SELECT * FROM present(ARRAY['queue/due.txt', 'queue/reused.txt']);
DELETE FROM so_pending_deletes;

-- The sweeper: objects no column references. TRUNCATE bypasses row
-- triggers; the sweeper finds what it leaves.
CREATE DOMAIN picture AS stored_object;
CREATE TABLE gallery (id int, main picture, extra picture[]);
INSERT INTO gallery VALUES (1, so_put('lc', 'g/main.jpg', 'm'), ARRAY[so_put('lc', 'g/extra.jpg', 'e')::picture]);
CREATE TABLE scratch (file stored_object);
INSERT INTO scratch VALUES (so_put('lc', 'scratch/1.txt', '1')), (so_put('lc', 'scratch/2.txt', '2'));
SELECT so_filename(so_put('lc', 'stray.txt', 'nobody refers to me'));
TRUNCATE scratch;
SELECT so_filename(o) FROM so_orphans('lc', '', '0 seconds') AS o;
SELECT so_filename(o) FROM so_orphans('lc', 'scratch/', '0 seconds') AS o;
SELECT count(*) AS young_are_safe FROM so_orphans('lc');
SELECT so_filename(object), action FROM so_gc('lc', '0 seconds');
SELECT so_filename(object), action FROM so_gc('lc', '0 seconds', dry_run => false);
SELECT count(*) AS orphans_left FROM so_orphans('lc', '', '0 seconds');
SELECT * FROM present(ARRAY['g/main.jpg', 'g/extra.jpg', 'a2/cover-v2.jpg', 'stray.txt']);
SELECT so_orphans('nowhere');
\echo :LAST_ERROR_SQLSTATE

-- so_copy: to another backend, bound to the transaction like so_put.
SELECT so_filename(c), so_size(c), so_etag(c) = so_etag(cover) AS same_etag,
       convert_from(so_get(c), 'UTF8') AS content
FROM albums, LATERAL so_copy(cover, 'lc2') AS c WHERE id = 2;
BEGIN;
SELECT so_filename(so_copy(cover, 'lc2', 'rolled-back.jpg')) FROM albums WHERE id = 2;
ROLLBACK;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "lc2", "filename": "rolled-back.jpg"}');
SELECT so_copy(cover, 'lc2') FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE
SELECT so_copy(cover, 'nowhere') FROM albums WHERE id = 2;
\echo :LAST_ERROR_SQLSTATE

-- Between stores: local to S3 through memory; S3 to S3 on the same store
-- server-side (CopyObject), metadata and content type kept.
\getenv endpoint S3_ENDPOINT
SELECT so_register_backend(k, 's3://test-bucket/' || k,
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'test-secret-key'))
FROM unnest(ARRAY['lc-s3', 'lc-s3-archive']) AS k;
SELECT so_filename(c), so_content_type(c), so_metadata(c), convert_from(so_get(c), 'UTF8') AS content
FROM so_copy(so_put('lc', 'to-s3/report.txt', 'quarterly', metadata => '{"owner": "ann"}'), 'lc-s3') AS c;
SELECT so_filename(c), so_content_type(c), so_metadata(c), convert_from(so_get(c), 'UTF8') AS content
FROM so_copy('{"backend": "lc-s3", "filename": "to-s3/report.txt"}', 'lc-s3-archive', '2024/report.txt') AS c;
BEGIN;
SELECT so_filename(so_copy('{"backend": "lc-s3", "filename": "to-s3/report.txt"}', 'lc-s3-archive', 'rolled-back.txt'));
ROLLBACK;
-- The undo of a network store's write is the worker's too.
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "lc-s3-archive", "filename": "rolled-back.txt"}');

-- Only storage administrators sweep.
CREATE ROLE regress_so_app;
SET ROLE regress_so_app;
SELECT so_orphans('lc');
\echo :LAST_ERROR_SQLSTATE
SELECT so_gc('lc');
\echo :LAST_ERROR_SQLSTATE
SELECT so_process_pending();
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM so_pending_deletes;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP ROLE regress_so_app;

DROP TABLE albums, shares, gallery, scratch;
DROP DOMAIN picture;
DROP FUNCTION present(text[]);
SELECT so_unregister_backend(k) FROM unnest(ARRAY['lc', 'lc2', 'lc-s3', 'lc-s3-archive']) AS k;
