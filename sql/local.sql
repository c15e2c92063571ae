-- The local file system backend: put, get, stat, sign, delete, and the
-- transaction rules, as one session sees them.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\set root 'file://' :tmpdir '/local-regress'
SELECT so_register_backend('files', :'root', '{"base_url": "https://files.example.com/media/"}');

-- so_put returns the full metadata: size, etag (hex MD5, as S3 gives for
-- single-part uploads), checksum (hex SHA-256), content type guessed from
-- the extension, last_modified, metadata.
CREATE TABLE docs (id serial PRIMARY KEY, file stored_object);
INSERT INTO docs (file) VALUES (so_put('files', 'reports/2024/q1.txt', 'hello world', metadata => '{"owner": "ann"}'));
SELECT so_backend(file), so_filename(file), so_size(file), so_etag(file), so_checksum(file),
       so_content_type(file), so_metadata(file), so_last_modified(file) > now() - interval '1 minute' AS recent
FROM docs;
SELECT so_etag(file) = md5('hello world') AS etag_is_md5,
       so_checksum(file) = encode(sha256('hello world'), 'hex') AS checksum_is_sha256
FROM docs;
SELECT so_content_type(so_put('files', 'img/logo.PNG', '\x89504e47')) AS png,
       so_content_type(so_put('files', 'data/blob', '\x00')) AS no_extension,
       so_content_type(so_put('files', 'data/blob.zzunknown', '\x00')) AS unknown_extension,
       so_content_type(so_put('files', 'data/given.txt', 'x', content_type => 'text/csv')) AS given;

-- Reading back, whole and in ranges.
SELECT convert_from(so_get(file), 'UTF8') AS content FROM docs;
SELECT convert_from(so_get(file, 6, 5), 'UTF8') AS world, so_get(file, 6, 0) AS empty,
       convert_from(so_get(file, 9, 100), 'UTF8') AS tail, so_get(file, 100, 5) AS past_end
FROM docs;
SELECT so_exists(file) FROM docs;

-- so_stat builds the value from what is stored, so a file written by other
-- means can be adopted; it agrees with what so_put returned.
SELECT s.file = d.file AS same_identity, so_size(s.file) = so_size(d.file) AS same_size,
       so_etag(s.file) = so_etag(d.file) AS same_etag, so_checksum(s.file) = so_checksum(d.file) AS same_checksum
FROM docs d, LATERAL (SELECT so_stat('files', 'reports/2024/q1.txt') AS file) s;

-- Create-only by default: an existing key is an error naming backend and key.
SELECT so_put('files', 'reports/2024/q1.txt', 'other');
\echo :LAST_ERROR_SQLSTATE
-- overwrite => true replaces it.
SELECT so_size(so_put('files', 'reports/2024/q1.txt', 'replaced!', overwrite => true));
SELECT convert_from(so_get(so_stat('files', 'reports/2024/q1.txt')), 'UTF8');

-- Missing objects and unknown backends.
SELECT so_get('{"backend": "files", "filename": "nope.txt"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_stat('files', 'nope.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend": "files", "filename": "nope.txt"}');
SELECT so_put('nowhere', 'a.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_get('{"backend": "nowhere", "filename": "a.txt"}');
\echo :LAST_ERROR_SQLSTATE

-- Keys are relative paths under the backend's root.
SELECT so_put('files', '/etc/passwd', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', '../outside.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'a/../../outside.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'a//b.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'a/./b.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', E'line\nbreak.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', repeat('x', 201), 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', repeat('abc/', 300), 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', '.so-new-123', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', '', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'reports', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'reports/2024/q1.txt/deeper', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_get('{"backend": "files", "filename": "../../etc/passwd"}');
\echo :LAST_ERROR_SQLSTATE

-- Bad arguments.
SELECT so_put(NULL, 'a.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'a.txt', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('files', 'a.txt', 'x', metadata => '[1, 2]');
\echo :LAST_ERROR_SQLSTATE
SELECT so_get(file, -1, 5) FROM docs;
\echo :LAST_ERROR_SQLSTATE

-- Transactions. A put is undone when its transaction aborts...
BEGIN;
SELECT so_size(so_put('files', 'tx/rolled-back.txt', 'gone'));
SELECT so_exists('{"backend": "files", "filename": "tx/rolled-back.txt"}');
ROLLBACK;
SELECT so_exists('{"backend": "files", "filename": "tx/rolled-back.txt"}');
-- ...also by an error...
BEGIN;
SELECT so_size(so_put('files', 'tx/failed.txt', 'gone'));
SELECT 1 / 0;
ROLLBACK;
SELECT so_exists('{"backend": "files", "filename": "tx/failed.txt"}');
-- ...and by ROLLBACK TO SAVEPOINT, which undoes only its own puts.
BEGIN;
SELECT so_size(so_put('files', 'tx/kept.txt', 'kept'));
SAVEPOINT s1;
SELECT so_size(so_put('files', 'tx/undone.txt', 'undone'));
SAVEPOINT s2;
SELECT so_size(so_put('files', 'tx/undone-too.txt', 'undone'));
ROLLBACK TO SAVEPOINT s1;
SELECT so_size(so_put('files', 'tx/after.txt', 'after'));
COMMIT;
SELECT f, so_exists(('{"backend": "files", "filename": "tx/' || f || '"}')::stored_object)
FROM unnest(ARRAY['kept.txt', 'undone.txt', 'undone-too.txt', 'after.txt']) AS f;

-- An aborted overwrite leaves the previous content; inside the
-- transaction, the new content is what so_get reads.
BEGIN;
SELECT so_size(so_put('files', 'tx/kept.txt', 'new content', overwrite => true));
SELECT convert_from(so_get('{"backend": "files", "filename": "tx/kept.txt"}'), 'UTF8') AS inside;
ROLLBACK;
SELECT convert_from(so_get('{"backend": "files", "filename": "tx/kept.txt"}'), 'UTF8') AS after_rollback;
BEGIN;
SAVEPOINT s;
SELECT so_size(so_put('files', 'tx/kept.txt', 'new content', overwrite => true));
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT convert_from(so_get('{"backend": "files", "filename": "tx/kept.txt"}'), 'UTF8') AS after_savepoint_rollback;

-- so_delete only schedules: the object goes when the transaction commits,
-- never when it rolls back.
BEGIN;
SELECT so_delete(so_stat('files', 'tx/kept.txt'));
SELECT so_exists('{"backend": "files", "filename": "tx/kept.txt"}') AS still_there_before_commit;
ROLLBACK;
SELECT so_exists('{"backend": "files", "filename": "tx/kept.txt"}') AS kept_after_rollback;
BEGIN;
SAVEPOINT s;
SELECT so_delete(so_stat('files', 'tx/kept.txt'));
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT so_exists('{"backend": "files", "filename": "tx/kept.txt"}') AS kept_after_savepoint_rollback;
SELECT so_delete(so_stat('files', 'tx/kept.txt'));
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "files", "filename": "tx/kept.txt"}') AS gone_after_commit;
-- Deleting what is already gone is fine (deletes are idempotent).
SELECT so_delete('{"backend": "files", "filename": "tx/kept.txt"}');

-- Objects written or deleted in a transaction cannot be prepared: the
-- files belong to this session, which a prepared transaction outlives.
BEGIN;
SELECT so_size(so_put('files', 'tx/prepared.txt', 'x'));
PREPARE TRANSACTION 'so_regress';
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend": "files", "filename": "tx/prepared.txt"}') AS removed_with_the_failed_prepare;

-- Nothing is written in a read-only transaction.
BEGIN READ ONLY;
SELECT so_put('files', 'tx/read-only.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- Signed URLs: HMAC-SHA256 over method, key and expiry.
SELECT regexp_replace(so_sign(file), 'expires=\d+&signature=[A-Za-z0-9_-]{43}$', 'expires=E&signature=S') AS url
FROM docs;
SELECT regexp_replace(so_sign(so_put('files', 'odd name/ü+x&y.txt', 'x')), '\?.*', '') AS encoded_url;
SELECT so_verify_url(so_sign(file)) AS valid,
       so_verify_url(so_sign(file) || 'x') AS tampered,
       so_verify_url(replace(so_sign(file), 'q1.txt', 'q2.txt')) AS other_key,
       so_verify_url(regexp_replace(so_sign(file), 'expires=\d+', 'expires=9999999999')) AS later_expiry,
       so_verify_url(so_sign(file), 'PUT') AS get_url_used_for_put,
       so_verify_url(so_sign(file, for_upload => true), 'PUT') AS upload_url,
       so_verify_url('https://elsewhere.example.com/x?expires=1&signature=x') AS foreign
FROM docs;
SELECT (regexp_match(so_sign(file, '10 minutes'), 'expires=(\d+)'))[1]::bigint
       - floor(extract(epoch FROM statement_timestamp()))::bigint AS expires_in_seconds
FROM docs;
CREATE TEMP TABLE expiring AS SELECT so_sign(file, '1 second') AS url FROM docs;
SELECT pg_sleep(2);
SELECT so_verify_url(url) AS expired FROM expiring;
SELECT so_sign(NULL) IS NULL AS null_object_null_url;
SELECT so_sign(file, '-1 hour') FROM docs;
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign(file, download_as => 'report.pdf') FROM docs;
\echo :LAST_ERROR_SQLSTATE
SELECT so_verify_url('https://files.example.com/media/x', 'DELETE');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('nourl', :'root' || '-nourl');
SELECT so_sign(so_put('nourl', 'a.txt', 'x'));
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('nginx', :'root' || '-nginx',
  '{"base_url": "https://cdn.example.com/protected", "sign_scheme": "nginx_secure_link"}');
SELECT regexp_replace(so_sign(so_put('nginx', 'a b.txt', 'x')), 'md5=[A-Za-z0-9_-]{22}&expires=\d+$', 'md5=M&expires=E') AS nginx_url;
SELECT so_sign(so_stat('nginx', 'a b.txt'), for_upload => true);
\echo :LAST_ERROR_SQLSTATE

-- An ordinary role stores and reads files through the functions once the
-- backend's owner grants it, but cannot see the signing secret nor the
-- delete queue.
CREATE ROLE regress_so_reader;
GRANT SELECT, INSERT ON docs TO regress_so_reader;
GRANT USAGE ON SEQUENCE docs_id_seq TO regress_so_reader;
SET ROLE regress_so_reader;
INSERT INTO docs (file) VALUES (so_put('files', 'by-reader.txt', 'mine'));
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT so_grant('files', 'read, write', 'regress_so_reader');
SET ROLE regress_so_reader;
INSERT INTO docs (file) VALUES (so_put('files', 'by-reader.txt', 'mine'));
SELECT convert_from(so_get(file), 'UTF8') FROM docs WHERE so_filename(file) = 'by-reader.txt';
SELECT options->>'signing_secret' FROM so_backends;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM so_pending_deletes;
\echo :LAST_ERROR_SQLSTATE
SELECT options ? 'signing_secret' AS secret_shown FROM so_backend_info WHERE key = 'files';
RESET ROLE;
SELECT so_revoke('files', 'all', 'regress_so_reader');
REVOKE ALL ON docs FROM regress_so_reader;
REVOKE ALL ON SEQUENCE docs_id_seq FROM regress_so_reader;
DROP ROLE regress_so_reader;

DROP TABLE docs;
SELECT so_unregister_backend(k) FROM unnest(ARRAY['files', 'nourl', 'nginx']) AS k;
