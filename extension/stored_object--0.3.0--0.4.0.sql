-- stored_object 0.3.0 -> 0.4.0: Google Cloud Storage (gs://) and Azure Blob
-- Storage (az://, azure://, abfs[s]://) backends, and credentials found the
-- way the cloud SDKs find them. All of it is in the library: the SQL objects
-- stay 0.3.0's; only the descriptions of so_register_backend, so_copy,
-- so_sign_upload and so_upload_append change, to name the new stores.

\echo Use "ALTER EXTENSION stored_object UPDATE TO '0.4.0'" to load this file. \quit

COMMENT ON FUNCTION so_register_backend(text, text, jsonb) IS
    'Registers a storage backend: file:///dir, osfs://dir, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix, with options; for storage administrators (file backends, server credentials and internal endpoints: superusers)';

COMMENT ON FUNCTION so_copy(stored_object, text, text) IS
    'Copies an object to another backend (server-side within the same S3 or GCS store or Azure account); removed again if the transaction aborts';

COMMENT ON FUNCTION so_sign_upload(text, text, text, bigint, bigint, interval, text) IS
    'A signed upload of filename a client sends straight to the store (S3: a POST form with a policy, or a PUT with signed Content-Type and Content-Length; GCS: a PUT with signed type and length range; Azure: a PUT with a create-only SAS, size and type checked by so_adopt; local: a PUT nginx takes into the upload area), the backend''s max_size and allowed_content_types and the caller''s size limits inside what is signed where the store can; needs the write privilege';

COMMENT ON FUNCTION so_upload_append(bigint, bytea) IS
    'Appends a piece to an upload; returns the bytes so far; memory stays at one piece (S3 and GCS: one part; Azure: one block)';
