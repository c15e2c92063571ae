-- Limits a backend sets (max_size, allowed_content_types), enforced by
-- so_put, so_copy, so_sign_upload and so_adopt; the arguments of the
-- upload functions. (What S3 does with a signed upload is tested with
-- botocore and curl in tests/system/test_s3_uploads.py.)
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\getenv endpoint S3_ENDPOINT
SELECT so_register_backend('up_s3', 's3://test-bucket/uploads-regress',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'access_key_id', 'test-access-key',
                     'secret_access_key', 'test-secret-key', 'max_size', 10,
                     'allowed_content_types', '["image/*", "Application/PDF", "text/plain"]'::jsonb));
\set root 'file://' :tmpdir '/uploads'
SELECT so_register_backend('up_local', :'root', '{"max_size": 4, "allowed_content_types": ["text/*"]}');
SELECT so_register_backend('up_any', :'root' || '-any');
SELECT key, options->'max_size' AS max_size, options->'allowed_content_types' AS types
  FROM so_backend_info WHERE key LIKE 'up%' ORDER BY 1;

-- Options are checked at registration.
SELECT so_alter_backend('up_any', options => '{"max_size": -1}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"max_size": "1MB"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"allowed_content_types": []}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"allowed_content_types": "image/*"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"allowed_content_types": ["image"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"allowed_content_types": ["*/png"]}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('up_any', options => '{"allowed_content_types": ["text/plain; charset=utf-8"]}');
\echo :LAST_ERROR_SQLSTATE

-- so_put: size (54000) and type (22023, parameters and case ignored).
SELECT so_size(so_put('up_local', 'ok.txt', 'four', 'Text/Plain; charset=utf-8'));
SELECT so_put('up_local', 'big.txt', 'fives');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('up_local', 'x.bin', 'x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('up_local', 'x.txt', 'x', 'image/png');
\echo :LAST_ERROR_SQLSTATE
SELECT so_size(so_put('up_s3', 'ok.pdf', 'pdf'));
SELECT so_size(so_put('up_s3', 'ok.jpeg', 'jpeg'));

-- so_copy: the target's limits, against what is really stored.
SELECT so_put('up_any', 'long.txt', 'longer than four') AS long \gset
SELECT so_put('up_any', 'page.html', 'html') AS html \gset
SELECT so_put('up_any', 'blob.bin', 'bin') AS blob \gset
SELECT so_copy(:'long', 'up_local');
\echo :LAST_ERROR_SQLSTATE
SELECT so_size(so_copy(:'html', 'up_local'));
SELECT so_copy(:'blob', 'up_local');
\echo :LAST_ERROR_SQLSTATE
-- A value that lies about its size does not get past the limit.
SELECT so_copy(jsonb_set(:'long'::jsonb, '{size}', '1')::stored_object, 'up_local', 'lie.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_size(so_copy(:'long', 'up_s3', 'long.txt'));
\echo :LAST_ERROR_SQLSTATE

-- so_sign cannot bind a size or a type into an upload URL: so_sign_upload can.
SELECT so_sign('{"backend":"up_s3","filename":"a.png"}', for_upload => true);
\echo :LAST_ERROR_SQLSTATE
SELECT upload->>'method' AS method, upload->>'max_size' AS max_size, upload->'fields'->>'key' AS key,
       upload->'fields'->>'Content-Type' AS type, upload->>'url' LIKE 'http://127.0.0.1:%/test-bucket' AS url
  FROM so_sign_upload('up_s3', 'inbox/a.png', 'image/png') AS upload;
SELECT convert_from(decode(so_sign_upload('up_s3', 'inbox/a.png', 'image/png', max_size => 5)->'fields'->>'policy', 'base64'), 'UTF8')
       ~ '\["content-length-range", 0, 5\]' AS range_in_policy;
SELECT upload->>'method' AS method, upload->'headers' AS headers,
       upload->>'url' ~ 'X-Amz-SignedHeaders=content-length%3Bcontent-type%3Bhost%3Bif-none-match&' AS signed
  FROM so_sign_upload('up_s3', 'inbox/b.pdf', 'application/pdf', size => 7, method => 'put') AS upload;
SELECT so_sign_upload('up_s3', 'inbox/a.txt', 'text/html');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', size => 11);
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', max_size => 11);
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', method => 'PUT');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', method => 'PATCH');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', size => -1);
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'not a type');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', expires_in => '8 days');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png', expires_in => '-1 second');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', '.so-x', 'image/png');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_s3', 'inbox/a.png', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign_upload('up_local', 'a.txt', 'text/plain');
\echo :LAST_ERROR_SQLSTATE
-- Local uploads go through nginx (tests/system/test_nginx_secure_link.py).
SELECT so_sign_upload('up_local', 'a.txt', 'text/plain', size => 1, method => 'PUT');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('up_ssec', 's3://test-bucket/ssec',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'access_key_id', 'test-access-key',
                     'secret_access_key', 'test-secret-key',
                     'sse_customer_key', encode(decode(repeat('ab', 32), 'hex'), 'base64')));
SELECT so_sign_upload('up_ssec', 'a.png', 'image/png');
\echo :LAST_ERROR_SQLSTATE
-- Signing an upload needs the write privilege.
CREATE ROLE regress_so_uploader;
SELECT so_grant('up_s3', 'read', 'regress_so_uploader');
SET ROLE regress_so_uploader;
SELECT so_sign_upload('up_s3', 'inbox/a.png', 'image/png');
\echo :LAST_ERROR_SQLSTATE
SELECT so_adopt('up_s3', 'ok.pdf');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- so_adopt: an object written by other means becomes a value, checked.
SELECT so_size(so_adopt('up_local', 'ok.txt', expected_size => 4,
               expected_checksum => '04EFAF080F5A3E74E1C29D1CA6A48569382CBBCD324E8D59D2B83EF21C039F00'));
SELECT so_adopt('up_local', 'missing.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_adopt('up_local', 'ok.txt', expected_checksum => 'abc');
\echo :LAST_ERROR_SQLSTATE
-- A failing object is refused and removed.
SELECT so_size(so_put('up_local', 'short.txt', 'four'));
SELECT so_adopt('up_local', 'short.txt', expected_size => 5);
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend":"up_local","filename":"short.txt"}');
SELECT so_size(so_put('up_local', 'ok2.txt', 'four'));
SELECT so_adopt('up_local', 'ok2.txt', expected_checksum => repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend":"up_local","filename":"ok2.txt"}');
-- Limits set after the fact apply to adoption.
SELECT so_size(so_put('up_any', 'eight.txt', 'eight by'));
SELECT so_alter_backend('up_any', options => '{"max_size": 4}');
SELECT so_adopt('up_any', 'eight.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend":"up_any","filename":"eight.txt"}');
-- A file a managed row already references is not adopted twice.
CREATE TABLE up_docs (id int, f stored_object);
SELECT so_manage_column('up_docs', 'f');
INSERT INTO up_docs VALUES (1, so_put('up_local', 'row.txt', 'row'));
SELECT so_adopt('up_local', 'row.txt');
\echo :LAST_ERROR_SQLSTATE
-- An aborted adoption removes the object, as an aborted put does.
SELECT so_size(so_put('up_local', 'abort.txt', 'gone'));
BEGIN;
SELECT so_size(so_adopt('up_local', 'abort.txt'));
ROLLBACK;
SELECT so_exists('{"backend":"up_local","filename":"abort.txt"}');

-- Puts in pieces and from server files: what is refused (the 3 GiB runs
-- are in tests/system/test_large_objects.py).
BEGIN;
SELECT so_upload_begin('up_local', 'pieces.txt') AS u \gset
SELECT so_upload_append(:u, 'four');
SELECT so_upload_append(:u, 'more');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
SELECT so_upload_append(:u, 'gone');
\echo :LAST_ERROR_SQLSTATE
SELECT so_upload_finish(12345);
\echo :LAST_ERROR_SQLSTATE
SELECT so_upload_begin('up_local', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT so_upload_begin('up_local', 'page.html', 'image/png');
\echo :LAST_ERROR_SQLSTATE
SELECT so_upload_begin('up_local', '../escape.txt');
\echo :LAST_ERROR_SQLSTATE
SELECT so_upload_begin('up_local', 'x.txt', attributes => '{"cache_control": "no-cache"}');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT so_upload_begin('up_local', 'in-pieces.txt') AS u \gset
SELECT so_upload_append(:u, 'ab');
SELECT so_upload_append(:u, 'cd');
SELECT so_size(so_upload_finish(:u));
COMMIT;
SELECT convert_from(so_get('{"backend":"up_local","filename":"in-pieces.txt"}'), 'UTF8');
SELECT so_put_file('up_local', 'f.txt', 'relative/file.txt');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT so_upload_begin('up_local', 'prepared.txt') IS NOT NULL AS begun;
PREPARE TRANSACTION 'regress_so_upload';
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_so_uploader;
SELECT so_upload_begin('up_s3', 'a.png');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put_file('up_s3', 'a.png', '/etc/hostname');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

DROP TABLE up_docs;
SELECT so_process_pending() IS NOT NULL AS processed;
SELECT so_revoke('up_s3', 'read', 'regress_so_uploader');
DROP ROLE regress_so_uploader;
SELECT so_unregister_backend(k) FROM unnest(ARRAY['up_s3', 'up_local', 'up_any', 'up_ssec']) AS k;
