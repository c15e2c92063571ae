-- so_list: a backend's objects as stored_object values, on local storage
-- and on S3, without the extension's own files, for readers of the backend.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\getenv endpoint S3_ENDPOINT
\set root 'file://' :tmpdir '/listing'
SELECT so_register_backend('ls_local', :'root');
SELECT so_register_backend('ls_s3', 's3://test-bucket/listing',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'test-secret-key'));

SELECT count(so_put(b, k, convert_to(k, 'UTF8')))
  FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b,
       unnest(ARRAY['docs/a.txt', 'docs/b.pdf', 'docs/2024/c.txt', 'docs/2024/q1/d.txt', 'top.txt',
                    'ünï/😀.txt']) AS k;

-- Everything, then under a prefix, then one level only; with what a value
-- holds (size, content type guessed from the name, an etag).
SELECT b, so_filename(o), so_size(o), so_content_type(o), so_etag(o) IS NOT NULL AS etag
  FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b) AS o ORDER BY 1, 2;
SELECT b, so_filename(o) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b, 'docs/2024/') AS o ORDER BY 1, 2;
SELECT b, so_filename(o) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b, 'docs/', recursive => false) AS o
 ORDER BY 1, 2;
SELECT b, so_filename(o) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b, 'docs', false) AS o ORDER BY 1, 2;

-- A listed value reads back, and is the same object the put returned.
SELECT convert_from(so_get(o), 'UTF8') AS content FROM so_list('ls_s3', 'ünï/') AS o;
SELECT o = '{"backend":"ls_local","filename":"top.txt"}' AS same FROM so_list('ls_local', 'top') AS o;

-- Staged overwrites and backups of a transaction in flight are not listed.
BEGIN;
SELECT so_filename(so_put(b, 'docs/a.txt', 'new', overwrite => true)) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b;
SELECT b, count(*) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b) AS o GROUP BY 1 ORDER BY 1;
COMMIT;
SELECT b, count(*) FROM unnest(ARRAY['ls_local', 'ls_s3']) AS b, so_list(b) AS o GROUP BY 1 ORDER BY 1;

-- Readers of the backend only; an unknown backend.
CREATE ROLE regress_so_lister;
SET ROLE regress_so_lister;
SELECT count(*) FROM so_list('ls_local');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT so_grant('ls_local', 'read', 'regress_so_lister');
SET ROLE regress_so_lister;
SELECT count(*) FROM so_list('ls_local');
RESET ROLE;
SELECT count(*) FROM so_list('nowhere');
\echo :LAST_ERROR_SQLSTATE
SELECT so_revoke('ls_local', 'read', 'regress_so_lister');
DROP ROLE regress_so_lister;

SELECT so_wait_for_worker('1 minute') AS settled;
SELECT count(*) FROM so_gc('ls_s3', '0 seconds', dry_run => false);
SELECT so_unregister_backend('ls_local');
SELECT so_unregister_backend('ls_s3');
