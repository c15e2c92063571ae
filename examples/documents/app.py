#!/usr/bin/python3
"""The documents app of advanced-alchemy's file-storage guide, over the
stored_object extension: a table with a file column, small uploads through
this server (so_put), large ones from the browser straight to the store
(so_sign_upload, then so_adopt), signed download links (so_sign) and
deletes whose files follow the row (so_manage_column).

Python's standard library and Debian's python3-psycopg2 only. Configured by
the environment:

    PGHOST, PGPORT, PGUSER, PGDATABASE, ...  the database (libpq's variables)
    DOCUMENTS_BACKEND   the stored_object backend key (default "documents")
    DOCUMENTS_HOST      the address to listen on (default 127.0.0.1)
    DOCUMENTS_PORT      the port to listen on (default 8000)
"""

import email.parser
import email.policy
import json
import os
import re
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.pool

BACKEND = os.environ.get("DOCUMENTS_BACKEND", "documents")
HOST = os.environ.get("DOCUMENTS_HOST", "127.0.0.1")
PORT = int(os.environ.get("DOCUMENTS_PORT", "8000"))
MAX_FORM = 16 * 1024 * 1024  # the largest form this server reads; bigger files go straight to the store
INDEX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id serial PRIMARY KEY,
    name text NOT NULL,
    file stored_object
);
CREATE INDEX IF NOT EXISTS documents_file_idx ON documents (file);
SELECT so_manage_column('documents', 'file');  -- deleting a row deletes its file after commit
"""

# Each row with a signed link. S3 links name the download (Content-Disposition);
# local nginx_secure_link links cannot, so they are plain.
LIST = """
SELECT d.id, d.name, so_size(d.file), so_content_type(d.file), so_filename(d.file),
       CASE WHEN b.scheme = 's3'
            THEN so_sign(d.file, '1 hour', download_as => regexp_replace(so_filename(d.file), '^.*/', ''))
            ELSE so_sign(d.file, '1 hour') END
FROM documents d LEFT JOIN so_backend_info b ON b.key = so_backend(d.file)
ORDER BY d.id
"""

pool = None
scheme = None  # "s3" or "file": S3 takes POST forms, local backends (nginx) PUTs


class AppError(Exception):
    def __init__(self, status, message, sqlstate=None):
        super().__init__(message)
        self.status, self.message, self.sqlstate = status, message, sqlstate


def sql(query, args=None):
    """Runs one statement in its own transaction; rows, or None."""
    conn = pool.getconn()
    try:
        with conn:  # commit, or roll back on an error
            with conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else None
    finally:
        pool.putconn(conn)


def object_key(filename):
    """A fresh key that ends with the file's own name (its extension is what a
    local backend checks the type by, and S3 downloads are named after it)."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).lstrip(".")[:150] or "file"
    return "docs/%s/%s" % (uuid.uuid4().hex, name)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    # ---- plumbing --------------------------------------------------------

    def send(self, status, body, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_FORM:
            self.close_connection = True
            raise AppError(413, "this form takes files up to %d bytes; use the direct upload" % MAX_FORM)
        return self.rfile.read(length)

    def json_body(self):
        try:
            return json.loads(self.body() or b"{}")
        except ValueError:
            raise AppError(400, "expected a JSON body")

    def dispatch(self, routes):
        path = self.path.split("?", 1)[0]
        for pattern, fn in routes:
            m = re.fullmatch(pattern, path)
            if m:
                try:
                    fn(*m.groups())
                except AppError as e:
                    self.send(e.status, {"error": e.message, "sqlstate": e.sqlstate})
                except psycopg2.Error as e:
                    # 54000: larger than the backend's max_size; 22023: a type it does not
                    # allow (or another bad value); 42501: no privilege.
                    status = {"54000": 413, "22023": 422, "42501": 403, "58P01": 404}.get(e.pgcode, 500)
                    msg = (e.diag.message_primary or str(e)).strip()
                    self.send(status, {"error": msg, "sqlstate": e.pgcode})
                return
        self.send(404, {"error": "not found"})

    def do_GET(self):
        self.dispatch([(r"/", self.index), (r"/api/documents", self.list_documents),
                       (r"/api/config", self.config)])

    def do_POST(self):
        self.dispatch([(r"/api/documents", self.create_document),
                       (r"/api/uploads", self.sign_upload),
                       (r"/api/uploads/adopt", self.adopt_upload)])

    def do_DELETE(self):
        self.dispatch([(r"/api/documents/(\d+)", self.delete_document)])

    # ---- endpoints -------------------------------------------------------

    def index(self):
        with open(INDEX, "rb") as f:
            self.send(200, f.read(), "text/html; charset=utf-8")

    def config(self):
        self.send(200, {"backend": BACKEND, "scheme": scheme})

    def list_documents(self):
        rows = sql(LIST)
        self.send(200, [{"id": r[0], "name": r[1], "size": r[2], "content_type": r[3],
                         "filename": r[4], "url": r[5]} for r in rows])

    def create_document(self):
        """A small upload: a multipart form (name, file) through this server."""
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/form-data"):
            raise AppError(400, "expected multipart/form-data")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body())
        fields, upload = {}, None
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename() is not None:
                upload = (part.get_filename(), part.get_content_type(), part.get_payload(decode=True) or b"")
            else:
                fields[name] = (part.get_payload(decode=True) or b"").decode()
        if upload is None or not upload[0]:
            raise AppError(400, "choose a file")
        filename, content_type, content = upload
        name = fields.get("name", "").strip() or filename
        doc_id = sql("INSERT INTO documents (name, file) VALUES (%s, so_put(%s, %s, %s, %s)) RETURNING id",
                     (name, BACKEND, object_key(filename), psycopg2.Binary(content), content_type))[0][0]
        self.send(201, {"id": doc_id})

    def sign_upload(self):
        """A large upload: a signed form (S3) or PUT (local, behind nginx) the
        browser sends straight to the store."""
        req = self.json_body()
        size = req.get("size")
        if not isinstance(size, int) or size < 0:
            raise AppError(400, "size must be a byte count")
        content_type = req.get("content_type") or "application/octet-stream"
        ticket = sql("SELECT so_sign_upload(%s, %s, %s, size => %s, expires_in => '15 minutes', method => %s)",
                     (BACKEND, object_key(req.get("filename")), content_type, size,
                      "POST" if scheme == "s3" else "PUT"))[0][0]
        self.send(200, ticket)

    def adopt_upload(self):
        """After the browser's upload: check what arrived and insert the row."""
        req = self.json_body()
        filename, size = req.get("filename"), req.get("size")
        if not isinstance(filename, str) or not filename.startswith("docs/"):
            raise AppError(400, "not an upload of this app")
        name = (req.get("name") or "").strip() or filename.rsplit("/", 1)[-1]
        doc_id = sql("INSERT INTO documents (name, file) VALUES (%s, so_adopt(%s, %s, %s)) RETURNING id",
                     (name, BACKEND, filename, size))[0][0]
        self.send(201, {"id": doc_id})

    def delete_document(self, doc_id):
        rows = sql("DELETE FROM documents WHERE id = %s RETURNING id", (int(doc_id),))
        if not rows:
            raise AppError(404, "no such document")
        self.send(200, {"deleted": int(doc_id)})


def main():
    global pool, scheme
    pool = psycopg2.pool.ThreadedConnectionPool(1, 8, "")  # libpq's PG* variables
    rows = sql("SELECT scheme FROM so_backend_info WHERE key = %s", (BACKEND,))
    if not rows:
        sys.exit("backend %r is not registered (so_register_backend)" % BACKEND)
    scheme = rows[0][0]
    sql(SCHEMA)
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    server.daemon_threads = True
    print("documents app on http://%s:%d/ (backend %s, %s)" % (HOST, server.server_port, BACKEND, scheme),
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        pool.closeall()


if __name__ == "__main__":
    main()
