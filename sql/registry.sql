-- The backend registry: registering, listing without secrets, changing,
-- removing, and who may do what.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\set root 'file://' :tmpdir '/registry-files'

SELECT so_register_backend('local', :'root', '{"base_url": "https://files.example.com/media/"}');
-- The form from advanced-alchemy's docs: relative to the data directory.
SELECT so_register_backend('docs', 'osfs://./storage/local');
SELECT so_register_backend('media', 's3://media-bucket/uploads',
  '{"region": "eu-west-1", "access_key_id": "AKIAEXAMPLE", "secret_access_key": "s3cr3t-k3y-never-shown",
    "session_token": "t0k3n-never-shown"}');

-- The listing shows no secret values, only which secrets are set. A
-- signing secret was generated for the file backends.
SELECT key, scheme, options, secrets_set FROM so_backend_info ORDER BY key;
SELECT count(*) AS leaked FROM so_backend_info WHERE options::text ~ 'never-shown';
SELECT length(options->>'signing_secret') AS generated_secret_length FROM so_backends WHERE key = 'local';

-- Changing a backend: options merge, a JSON null removes one.
SELECT so_alter_backend('media', options => '{"region": "us-west-2", "session_token": null}');
SELECT options, secrets_set FROM so_backend_info WHERE key = 'media';
SELECT so_alter_backend('local', url => 'osfs://./other');
SELECT url FROM so_backend_info WHERE key = 'local';

-- Errors, each with its SQLSTATE; none echoes an option value.
SELECT so_register_backend('local', 'file:///tmp/x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'ftp://host/dir');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'no-scheme');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file://relative/dir');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://Not_A_Bucket');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://AKIA:s3cr3t@bucket/x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('bad key', 's3://bucket');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"colour": "blue"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"secret_access_key": 12345}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"secret_access_key": "s3cr3t-only"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"endpoint": "http://127.0.0.1:9000"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"part_size": 1}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '["not", "an", "object"]');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', NULL, '{"secret_access_key": "s3cr3t-never-shown"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file:///tmp/x', '{"base_url": "ftp://nope"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('nope', 's3://bucket');
\echo :LAST_ERROR_SQLSTATE
SELECT so_unregister_backend('nope');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('media', options => '{"max_concurrency": "many"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file:///tmp/x', '{"base_url": "http://"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file:///tmp/x', '{"base_url": "https://:443/files"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file:///tmp/x', '{"max_expires_in": 0}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"credentials": "file:relative/path"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"profile": "dev"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 's3://bucket', '{"credentials": "default", "access_key_id": "AK", "secret_access_key": "S"}');
\echo :LAST_ERROR_SQLSTATE

-- Azure backends: az://container/prefix (or azure://) with the account as
-- an option, or abfs[s]://container@account.dfs.core.windows.net/prefix.
SELECT so_register_backend('az_media', 'az://media/uploads',
  '{"account": "mediaaccount", "account_key": "c2VjcmV0LWtleS1uZXZlci1zaG93bi0xMjM0NQ=="}');
SELECT so_register_backend('az_lake', 'abfss://lake@lakeaccount.dfs.core.windows.net/raw',
  '{"sas_token": "?sv=2021-08-06&ss=b&srt=co&sp=rwdlac&se=2030-01-01T00:00:00Z&sig=c2FzLW5ldmVyLXNob3du"}');
SELECT key, scheme, options, secrets_set FROM so_backend_info WHERE key LIKE 'az\_%' ORDER BY key;
SELECT count(*) AS leaked FROM so_backend_info WHERE options::text ~ 'c2VjcmV0|c2FzLW';
SELECT so_unregister_backend('az_media');
SELECT so_unregister_backend('az_lake');
SELECT so_register_backend('x', 'az://media');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://Media_Files', '{"account": "acct", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw=="}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "Not-An-Account", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw=="}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "acct", "account_key": "not base64: s3cr3t!"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "acct", "sas_token": "s3cr3t-but-no-signature"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "acct", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw==",
  "sas_token": "sv=2021-08-06&sig=abc"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "acct", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw==",
  "endpoint": "http://127.0.0.1:10000/acct"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://acct:s3cr3t@media', '{"account": "acct", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw=="}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'abfs://media@acct.example.com/x');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'az://media', '{"account": "acct", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw==", "region": "x"}');
\echo :LAST_ERROR_SQLSTATE

-- GCS backends: gs://bucket/prefix with an HMAC key, or tokens of the
-- server's own; no S3 encryption options, no AWS credential providers.
SELECT so_register_backend('x', 'gs://Bad.Bucket');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'gs://bucket', '{"credentials": "instance"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'gs://bucket', '{"credentials": "service_account"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'gs://bucket', '{"credentials": "metadata", "access_key_id": "A", "secret_access_key": "S"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'gs://bucket', '{"sse_customer_key": "c2VjcmV0"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'gs://bucket', '{"service_account_file": "relative.json"}');
\echo :LAST_ERROR_SQLSTATE
-- The data directory is no backend's directory: its users could rewrite
-- postgresql.auto.conf. A directory of its own inside it is fine.
SELECT so_register_backend('x', 'osfs://.');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'osfs://./base/1');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'osfs://./pg_wal');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('x', 'file:///');
\echo :LAST_ERROR_SQLSTATE
-- Messages never echo what is not a valid key: it could forge a log line.
SELECT so_unregister_backend(E'a\nFAKE LOG LINE');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend(repeat('k', 2000));
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend(E'bad\nkey', 's3://bucket');
\echo :LAST_ERROR_SQLSTATE
-- Plain DML is validated the same way.
INSERT INTO so_backends (key, url, options) VALUES ('y', 's3://bucket', '{"bogus": true}');
\echo :LAST_ERROR_SQLSTATE

-- Storage administrators are per database: the database owner, with the
-- grant option, and the roles so_grant_admin names (holders of UPDATE on
-- so_backends). An ordinary role sees the list, not the secrets, and
-- cannot change the registry.
CREATE ROLE regress_so_user;
CREATE ROLE regress_so_admin;
SELECT so_grant_admin('regress_so_admin');
SET ROLE regress_so_user;
SELECT key, secrets_set FROM so_backend_info ORDER BY key;
SELECT options FROM so_backends;
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('mine', 's3://my-bucket');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('media', options => '{"region": "x"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_unregister_backend('media');
\echo :LAST_ERROR_SQLSTATE
UPDATE so_backends SET url = 's3://other-bucket';
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- An administrator manages S3 backends; it owns what it registers. A file
-- backend gives access to server files, the server's own credentials and
-- internal addresses are the server's: superusers only. So is changing a
-- backend a superuser owns.
SET ROLE regress_so_admin;
SELECT so_register_backend('team', 's3://team-bucket', '{"access_key_id": "AK", "secret_access_key": "team-secret"}');
SELECT so_alter_backend('team', options => '{"region": "eu-central-1"}');
SELECT key, owner, privileges FROM so_backend_info WHERE key = 'team';
SELECT so_register_backend('mine', :'root');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('local', options => '{"base_url": "https://evil.example.com"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_unregister_backend('local');
\echo :LAST_ERROR_SQLSTATE
UPDATE so_backends SET url = 'file:///etc' WHERE key = 'team';
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('media', options => '{"region": "us-east-2"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('env', 's3://env-bucket', '{"credentials": "env"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('metadata', 's3://meta-bucket',
  '{"endpoint": "http://169.254.169.254", "allow_http": true, "access_key_id": "AK", "secret_access_key": "S"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('loop', 's3://loop-bucket',
  '{"endpoint": "http://127.0.0.1:9000", "allow_http": true, "access_key_id": "AK", "secret_access_key": "S"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('team', options => '{"endpoint": "http://[::ffff:10.0.0.1]", "allow_http": true}');
\echo :LAST_ERROR_SQLSTATE
-- Every provider of the server's own credentials is the server's.
SELECT so_register_backend('chain', 's3://chain-bucket', '{"credentials": "default"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('imds', 's3://imds-bucket', '{"credentials": "instance"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('pod', 's3://pod-bucket', '{"credentials": "web_identity"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('task', 's3://task-bucket', '{"credentials": "container"}');
\echo :LAST_ERROR_SQLSTATE
-- An Azure backend of an administrator: an endpoint at an internal address is refused.
SELECT so_register_backend('team_az', 'az://team-container',
  '{"account": "teamaccount", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw=="}');
SELECT so_register_backend('team_az_internal', 'az://team-container',
  '{"account": "teamaccount", "account_key": "c2VjcmV0LWtleS0xNi1ieXRlcw==", "endpoint": "http://10.1.2.3/acct", "allow_http": true}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_unregister_backend('team_az');
-- GCS: an HMAC key is an administrator's; the server's own tokens, a key
-- file on the server and a CA file are not.
SELECT so_register_backend('team_gs', 'gs://team_bucket/x',
  '{"access_key_id": "GOOG1EXAMPLE", "secret_access_key": "gcs-secret"}');
SELECT so_register_backend('gs_meta', 'gs://team_bucket/x', '{"credentials": "metadata"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('gs_key', 'gs://team_bucket/x',
  '{"access_key_id": "GOOG1EXAMPLE", "secret_access_key": "gcs-secret", "service_account_file": "/etc/passwd"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_register_backend('gs_ca', 'gs://team_bucket/x',
  '{"access_key_id": "GOOG1EXAMPLE", "secret_access_key": "gcs-secret", "ca_file": "/etc/ssl/certs/ca-certificates.crt"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_unregister_backend('team_gs');
SELECT so_unregister_backend('team');
RESET ROLE;
-- Nobody else became an administrator.
SELECT has_table_privilege('regress_so_user', 'so_backends', 'UPDATE') AS user_is_admin,
       has_table_privilege('regress_so_admin', 'so_backends', 'UPDATE') AS admin_is_admin;
SELECT so_revoke_admin('regress_so_admin');
SELECT has_table_privilege('regress_so_admin', 'so_backends', 'UPDATE') AS still_admin;

-- Backend privileges: granted and revoked by the owner (or an
-- administrator), shown per role; errors name what is wrong.
SELECT so_grant('media', 'read', 'regress_so_user');
SELECT so_grant('media', 'write, delete', 'PUBLIC');
SELECT privileges FROM so_backend_info WHERE key = 'media';
SELECT acl FROM so_backends WHERE key = 'media';
SELECT so_revoke('media', 'all', 'PUBLIC');
SELECT privileges FROM so_backend_info WHERE key = 'media';
SELECT so_grant('media', 'execute', 'regress_so_user');
\echo :LAST_ERROR_SQLSTATE
SELECT so_grant('media', 'read', 'regress_no_such_role');
\echo :LAST_ERROR_SQLSTATE
SELECT so_grant('nope', 'read', 'regress_so_user');
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_so_user;
SELECT so_grant('media', 'read', 'regress_so_user');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
UPDATE so_backends SET acl = '{regress_so_user=a/postgres}' WHERE key = 'media';
\echo :LAST_ERROR_SQLSTATE

SELECT so_unregister_backend('docs');
SELECT key FROM so_backend_info ORDER BY key;
SELECT so_revoke('media', 'all', 'regress_so_user');
DROP ROLE regress_so_user, regress_so_admin;
