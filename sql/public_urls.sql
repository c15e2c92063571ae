-- so_url: one function for links. A backend with public_base_url (a CDN,
-- a public bucket) gives plain URLs; any other gives signed ones (so_sign).
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\getenv endpoint S3_ENDPOINT
\set root 'file://' :tmpdir '/public'
SELECT so_register_backend('pub_local', :'root',
  '{"public_base_url": "https://cdn.example.com/assets/", "base_url": "https://files.example.com/p"}');
SELECT so_register_backend('pub_s3', 's3://test-bucket/public',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true, 'access_key_id', 'test-access-key',
                     'secret_access_key', 'test-secret-key',
                     'public_base_url', 'https://test-bucket.s3.example.com/public'));
SELECT so_register_backend('priv_local', :'root' || '-private', '{"base_url": "https://files.example.com/q"}');
SELECT key, options->>'public_base_url' AS public_base_url FROM so_backend_info WHERE key LIKE 'p%' ORDER BY 1;

-- Public: the key, encoded, after the base URL; no signature, no expiry.
SELECT so_url(so_put('pub_local', 'img/cat photo ü.jpg', 'x'));
SELECT so_url(so_put('pub_s3', 'img/a+b&c.png', 'x'));
-- Private: exactly the signed URL so_sign gives in the same statement.
SELECT so_url(o, '10 minutes') = so_sign(o, '10 minutes') AS signed,
       so_url(o) LIKE 'https://files.example.com/q/doc.txt?expires=%&signature=%' AS shape
  FROM so_put('priv_local', 'doc.txt', 'x') AS o;
SELECT so_url(NULL::stored_object) IS NULL AS null_for_null;

-- A public URL is still only for those who may read the object.
CREATE ROLE regress_so_visitor;
SET ROLE regress_so_visitor;
SELECT so_url('{"backend":"pub_local","filename":"img/cat photo ü.jpg"}');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT so_grant('pub_local', 'read', 'regress_so_visitor');
SET ROLE regress_so_visitor;
SELECT so_url('{"backend":"pub_local","filename":"img/cat photo ü.jpg"}');
RESET ROLE;
SELECT so_revoke('pub_local', 'read', 'regress_so_visitor');
DROP ROLE regress_so_visitor;

-- Only http(s) URLs with a host.
SELECT so_alter_backend('pub_local', options => '{"public_base_url": "ftp://cdn.example.com"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('pub_local', options => '{"public_base_url": "https://"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('pub_local', options => '{"public_base_url": null}');
SELECT so_url('{"backend":"pub_local","filename":"img/cat photo ü.jpg"}') LIKE '%signature=%' AS signed_again;

SELECT count(*) FROM so_gc('pub_s3', '0 seconds', dry_run => false);
SELECT so_unregister_backend(k) FROM unnest(ARRAY['pub_local', 'pub_s3', 'priv_local']) AS k;
