-- stored_object 0.3.0 -> 0.4.0: Google Cloud Storage (gs://) and Azure Blob
-- Storage (az://, azure://, abfs[s]://) backends, and credentials found the
-- way the cloud SDKs find them. All of it is in the library: the SQL objects
-- stay 0.3.0's, and only so_register_backend's description names the new
-- URL forms.

\echo Use "ALTER EXTENSION stored_object UPDATE TO '0.4.0'" to load this file. \quit

COMMENT ON FUNCTION so_register_backend(text, text, jsonb) IS
    'Registers a storage backend: file:///dir, osfs://dir, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix, with options; for storage administrators (file backends, server credentials and internal endpoints: superusers)';
