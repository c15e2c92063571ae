-- The main job of stored_object, end to end, on the local file system
-- backend. Run by scripts/demo.sh; :files_root is set by it.
\set ON_ERROR_STOP on
\pset footer off
\echo '== the extension and a local backend'
CREATE EXTENSION stored_object;
SELECT so_register_backend('local', 'file://' || :'files_root',
                           '{"base_url": "http://127.0.0.1:8080/files"}');
SELECT key, scheme, url, options, secrets_set FROM so_backend_info;

\echo '== a table with a file column'
CREATE TABLE documents (
    id bigserial PRIMARY KEY,
    title text NOT NULL,
    file stored_object
);

\echo '== put: the bytes are stored and the row keeps their metadata'
INSERT INTO documents (title, file)
VALUES ('Quarterly report', so_put('local', 'reports/q1.txt', convert_to('Revenue: up.', 'UTF8'),
                                   metadata => '{"owner": "ann"}')),
       ('Logo', so_put('local', 'images/logo.png', decode('89504e470d0a1a0a', 'hex')));
SELECT id, title, so_filename(file), so_content_type(file), so_size(file), so_etag(file) FROM documents;
SELECT file FROM documents WHERE id = 1;

\echo '== get: read the bytes back'
SELECT title, convert_from(so_get(file), 'UTF8') AS content FROM documents WHERE id = 1;

\echo '== sign: a time-limited URL a web server in front of the directory can check'
SELECT title, so_sign(file, '15 minutes') AS url FROM documents ORDER BY id;
SELECT so_verify_url(so_sign(file)) AS valid, so_verify_url(so_sign(file) || 'x') AS tampered
FROM documents WHERE id = 1;

\echo '== a failed transaction leaves no file behind'
BEGIN;
INSERT INTO documents (title, file) VALUES ('Draft', so_put('local', 'drafts/never.txt', 'draft'));
SELECT so_exists(file) AS exists_inside_the_transaction FROM documents WHERE title = 'Draft';
ROLLBACK;
SELECT so_exists('{"backend": "local", "filename": "drafts/never.txt"}') AS exists_after_rollback;

\echo '== delete: the file goes when the row''s transaction commits'
BEGIN;
SELECT so_delete(file) FROM documents WHERE id = 2;
DELETE FROM documents WHERE id = 2;
SELECT so_exists('{"backend": "local", "filename": "images/logo.png"}') AS exists_before_commit;
COMMIT;
SELECT so_exists('{"backend": "local", "filename": "images/logo.png"}') AS exists_after_commit;
SELECT id, title, so_filename(file) FROM documents;
