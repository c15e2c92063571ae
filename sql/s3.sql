-- The S3 backend against the loopback fixture (s3rver behind a proxy that
-- verifies every signature with botocore): the same functions and rules
-- as the local backend.
\set SHOW_CONTEXT never
\getenv endpoint S3_ENDPOINT
SELECT so_register_backend('s3', 's3://test-bucket/regress',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'test-secret-key'));
SELECT key, scheme, options - 'endpoint' AS options, secrets_set FROM so_backend_info WHERE key = 's3';

CREATE TABLE photos (id serial PRIMARY KEY, file stored_object);
INSERT INTO photos (file)
VALUES (so_put('s3', 'albums/2024/cat photo.jpg', '\xffd8ffe000104a464946', metadata => '{"camera": "x100", "tags": ["cat", "sofa"]}'));
SELECT so_filename(file), so_size(file), so_content_type(file), so_etag(file) = md5('\xffd8ffe000104a464946'::bytea) AS etag_is_md5,
       so_checksum(file) = encode(sha256('\xffd8ffe000104a464946'::bytea), 'hex') AS checksum_is_sha256,
       so_metadata(file), so_version_id(file)
FROM photos;
SELECT so_get(file) FROM photos;
SELECT so_get(file, 2, 3), so_get(file, 8, 100), so_get(file, 100, 1), so_get(file, 0, 0) FROM photos;
SELECT so_exists(file) FROM photos;
-- so_stat reads what is stored: content type and metadata round-trip,
-- nested values too. (S3 does not report a SHA-256: checksum is null.)
SELECT so_size(s), so_content_type(s), so_etag(s) = so_etag(file) AS same_etag, so_metadata(s), so_checksum(s) IS NULL AS no_checksum
FROM photos, LATERAL so_stat('s3', 'albums/2024/cat photo.jpg') AS s;

-- Keys S3 allows: spaces, + = & % ~, //, unicode and 4-byte UTF-8.
SELECT k, convert_from(so_get(so_put('s3', k, convert_to(k, 'UTF8'))), 'UTF8') = k AS round_trip
FROM unnest(ARRAY['a b+c=d&e%f~g.txt', 'double//slash.txt', 'ünïcødé/файл.txt', 'emoji-😀.txt']) AS k;

-- Create-only: 412 from the store becomes the same error as on local storage.
SELECT so_put('s3', 'albums/2024/cat photo.jpg', 'other');
\echo :LAST_ERROR_SQLSTATE
SELECT so_size(so_put('s3', 'albums/2024/cat photo.jpg', 'replaced', overwrite => true));
SELECT convert_from(so_get('{"backend": "s3", "filename": "albums/2024/cat photo.jpg"}'), 'UTF8');
SELECT so_get('{"backend": "s3", "filename": "missing.txt"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_stat('s3', 'missing.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend": "s3", "filename": "missing.txt"}');
SELECT so_put('s3', '', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('s3', repeat('k', 1020), 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('s3', E'tab\there', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('s3', 'meta.txt', 'x', metadata => '{"Camera": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('s3', 'type.txt', 'x', content_type => E'text/plain\u00e9');
\echo :LAST_ERROR_SQLSTATE

-- Transactions, as on local storage. The undo of an aborted write and the
-- delete after commit are network requests: the worker makes them.
BEGIN;
SELECT so_size(so_put('s3', 'tx/rolled-back.txt', 'gone'));
ROLLBACK;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "s3", "filename": "tx/rolled-back.txt"}');
BEGIN;
SELECT so_size(so_put('s3', 'tx/kept.txt', 'kept'));
SAVEPOINT s;
SELECT so_size(so_put('s3', 'tx/undone.txt', 'undone'));
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "s3", "filename": "tx/kept.txt"}') AS kept,
       so_exists('{"backend": "s3", "filename": "tx/undone.txt"}') AS undone;
BEGIN;
SELECT so_size(so_put('s3', 'tx/kept.txt', 'new', overwrite => true));
SELECT convert_from(so_get('{"backend": "s3", "filename": "tx/kept.txt"}'), 'UTF8') AS inside;
ROLLBACK;
SELECT convert_from(so_get('{"backend": "s3", "filename": "tx/kept.txt"}'), 'UTF8') AS after_rollback;
BEGIN;
SELECT so_delete(so_stat('s3', 'tx/kept.txt'));
SELECT so_exists('{"backend": "s3", "filename": "tx/kept.txt"}') AS before_commit;
COMMIT;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_exists('{"backend": "s3", "filename": "tx/kept.txt"}') AS after_commit;
BEGIN;
SELECT so_size(so_put('s3', 'tx/prepared.txt', 'x'));
PREPARE TRANSACTION 'so_regress_s3';
\echo :LAST_ERROR_SQLSTATE

-- Presigned URLs: SigV4 query signing, no network call.
SELECT regexp_replace(so_sign(file), '^http://[^/]+', 'http://ENDPOINT') ~
       '^http://ENDPOINT/test-bucket/regress/albums/2024/cat%20photo.jpg\?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=test-access-key%2F\d{8}%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=\d{8}T\d{6}Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=[0-9a-f]{64}$' AS presigned_get
FROM photos;
SELECT so_sign(file, '2 hours', download_as => 'Cat – 2024.jpg', download_type => 'image/jpeg')
       ~ '\?response-content-disposition=attachment%3B%20filename%3D%22Cat%20_%202024.jpg%22%3B%20filename%2A%3DUTF-8%27%27Cat%2520%25E2%2580%2593%25202024.jpg&response-content-type=image%2Fjpeg&X-Amz-Algorithm=.*&X-Amz-Expires=7200&' AS download_overrides
FROM photos;
SELECT so_sign(file, '8 days') FROM photos;
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign(file, for_upload => true, download_as => 'x.jpg') FROM photos;
\echo :LAST_ERROR_SQLSTATE

-- Wrong credentials: 42501, with S3's code and no secret in the message.
-- (Terse: the DETAIL line carries S3's request id, different every run.)
\set VERBOSITY terse
SELECT so_register_backend('s3-wrong', 's3://test-bucket',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'not-the-secret-xyz'));
SELECT so_put('s3-wrong', 'x.txt', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT position('not-the-secret-xyz' IN :'LAST_ERROR_MESSAGE') AS secret_in_message;
SELECT so_register_backend('s3-nobody', 's3://test-bucket',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'nobody', 'secret_access_key', 'nothing'));
SELECT so_get('{"backend": "s3-nobody", "filename": "x.txt"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('s3-nocreds', 's3://test-bucket', jsonb_build_object('endpoint', :'endpoint', 'allow_http', true));
SELECT so_get('{"backend": "s3-nocreds", "filename": "x.txt"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('s3-nobucket', 's3://no-such-bucket',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'test-secret-key'));
SELECT so_put('s3-nobucket', 'x.txt', 'x');
\echo :LAST_ERROR_SQLSTATE

\set VERBOSITY default
DROP TABLE photos;
SELECT so_unregister_backend(k) FROM unnest(ARRAY['s3', 's3-wrong', 's3-nobody', 's3-nocreds', 's3-nobucket']) AS k;
