-- Object attributes: headers, storage class and tags a store keeps on an
-- object beside its bytes, set per backend as defaults and per put; and
-- server-side encryption options. (What S3 does with them is tested with
-- boto3 in tests/system/test_s3_object_features.py.)
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\getenv endpoint S3_ENDPOINT
SELECT so_register_backend('attr_s3', 's3://test-bucket/attributes',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'access_key_id', 'test-access-key',
                     'secret_access_key', 'test-secret-key',
                     'attributes', '{"cache_control": "max-age=3600", "tags": {"app": "regress"}}'::jsonb));

-- Defaults apply; the call's attributes win name by name, a tag set whole.
SELECT so_attributes(so_put('attr_s3', 'a.txt', 'a'));
SELECT so_attributes(so_put('attr_s3', 'b.txt', 'b', attributes => '{"content_language": "de-CH",
  "content_disposition": "inline", "content_encoding": "identity", "storage_class": "STANDARD_IA",
  "tags": {"team": "docs", "year": "2026"}}'));
-- STANDARD is what S3 reports by leaving the class out: so do values.
SELECT so_attributes(so_put('attr_s3', 'c.txt', 'c', attributes => '{"storage_class": "STANDARD", "tags": {}}'));

-- In the value's text only when there are some; values without read as before.
SELECT regexp_replace(so_put('attr_s3', 'd.txt', 'd', attributes => '{"cache_control": "no-store", "tags": {"k": "v"}}')::text,
                      '"last_modified":[0-9.]+', '"last_modified":…');
SELECT '{"backend":"x","filename":"f"}'::stored_object::text;
SELECT so_attributes('{"backend":"x","filename":"f"}');
SELECT '{"backend":"x","filename":"f","attributes":{"storage_class":"GLACIER"}}'::stored_object::text;
SELECT '{"backend":"x","filename":"f","attributes":null}'::stored_object::text;
SELECT '{"backend":"x","filename":"f","attributes":"GLACIER"}'::stored_object;
\echo :LAST_ERROR_SQLSTATE
-- Stored on disk (packed format 2) and read back; identity ignores them.
CREATE TABLE attr_files (f stored_object);
INSERT INTO attr_files VALUES ('{"backend":"x","filename":"f","attributes":{"tags":{"a":"b"}}}'),
                              ('{"backend":"x","filename":"g"}');
SELECT f::text, so_attributes(f) FROM attr_files ORDER BY f;
SELECT count(*) FROM attr_files
 WHERE f = '{"backend":"x","filename":"f","attributes":{"tags":{"other":"tags"}}}';
DROP TABLE attr_files;

-- What may not be an attribute.
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"colour": "blue"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '["cache_control"]');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"cache_control": "a\nb"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"cache_control": ""}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"cache_control": 60}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"storage_class": "cold"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"storage_class": "FROZEN"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"sse": "AES256"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e',
              attributes => jsonb_build_object('tags', (SELECT jsonb_object_agg('k' || i, 'v') FROM generate_series(1, 11) i)));
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => jsonb_build_object('tags', jsonb_build_object(repeat('k', 129), 'v')));
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => jsonb_build_object('tags', jsonb_build_object('k', repeat('v', 257))));
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"tags": {"a*b": "v"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"tags": {"aws:x": "v"}}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_put('attr_s3', 'e.txt', 'e', attributes => '{"tags": {"k": 1}}');
\echo :LAST_ERROR_SQLSTATE
-- Letters of any script are fine in tags.
SELECT so_attributes(so_put('attr_s3', 'e.txt', 'e', attributes => '{"tags": {"größe": "groß ü/+=.:@_-"}}'));

-- A local backend keeps no attributes: it says so.
\set root 'file://' :tmpdir '/attributes'
SELECT so_register_backend('attr_local', :'root');
SELECT so_put('attr_local', 'x.txt', 'x', attributes => '{"cache_control": "no-cache"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_attributes(so_put('attr_local', 'x.txt', 'x', attributes => '{}'));
SELECT so_alter_backend('attr_local', options => '{"attributes": {"cache_control": "no-cache"}}');
\echo :LAST_ERROR_SQLSTATE

-- Backend options: defaults are checked at registration, encryption too.
SELECT so_alter_backend('attr_s3', options => '{"attributes": {"tags": {"aws:x": "y"}}}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('attr_s3', options => '{"attributes": "max-age=1"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('attr_s3', options => '{"sse": "aes256"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('attr_s3', options => '{"sse_kms_key_id": "alias/x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('attr_s3', options => '{"sse_customer_key": "c2hvcnQ="}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('attr_s3', options => jsonb_build_object('sse', 'AES256',
                        'sse_customer_key', encode(decode(repeat('ab', 32), 'hex'), 'base64')));
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('attr_ssec', 's3://test-bucket',
  jsonb_build_object('endpoint', 'http://files.example.com', 'allow_http', true, 'access_key_id', 'a',
                     'secret_access_key', 'b', 'sse_customer_key', encode(decode(repeat('ab', 32), 'hex'), 'base64')));
\echo :LAST_ERROR_SQLSTATE
-- The customer key is a secret: never shown.
SELECT so_register_backend('attr_ssec', 's3://test-bucket',
  jsonb_build_object('endpoint', 'https://files.example.com', 'access_key_id', 'a',
                     'secret_access_key', 'b', 'sse_customer_key', encode(decode(repeat('ab', 32), 'hex'), 'base64')));
SELECT options, secrets_set FROM so_backend_info WHERE key = 'attr_ssec';
SELECT so_alter_backend('attr_s3', options => '{"sse": "aws:kms", "sse_kms_key_id": "alias/regress"}');
SELECT options->'sse', options->'sse_kms_key_id' FROM so_backend_info WHERE key = 'attr_s3';

SELECT so_unregister_backend(k) FROM unnest(ARRAY['attr_s3', 'attr_local', 'attr_ssec']) AS k;
