#!/usr/bin/python3
"""System test: URLs signed by so_sign for a local backend, checked by a real nginx.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_nginx_secure_link.py

with PGHOST/PGPORT/PGUSER naming a running cluster (the stored_object
extension installed) and SO_TEST_TMPDIR a directory the postgres user owns.

It creates its own database and a backend root under SO_TEST_TMPDIR, starts
Debian's /usr/sbin/nginx on a free 127.0.0.1 port with the secure_link module
publishing that root under /files/, and shows with plain HTTP requests that
what so_put wrote is served for a URL so_sign made, and refused (403) when the
URL is tampered with, belongs to another key, or has expired. A second local
backend with the default hmac scheme is checked with so_verify_url. Everything
it started or created is removed again, whatever happens.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import grp
import hashlib
import http.client
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import urllib.parse

import psycopg2

import nginxsupport
import runner
from nginxsupport import free_port

CURL = "/usr/bin/curl"

# Contents stored by the tests, by key: binary bytes (every byte value, NULs
# included), a key with a space and non-ASCII characters, and a nested key.
BINARY = bytes(range(256)) * 3 + b"\x00\xff\r\n\x1a" + os.urandom(1000)
KEYS = {
    "binary.bin": BINARY,
    "dir with space/naïve ✓ ü.bin": "naïve ✓ ü\n".encode() + b"\x00\x01\xfe",
    "a/b/c.bin": b"nested\x00\x80\x81" * 100,
    "other.bin": b"another object",
}


class Fixture:
    """The database, the backend roots and the nginx of one run."""

    def __init__(self):
        self.secret = "nginx-" + secrets.token_hex(20)  # letters and digits only: safe in nginx.conf
        self.dbname = "so_nginx_test_%d" % os.getpid()
        self.nginx = None
        self.nginx_dir = None
        self.data_dir = None
        self.admin = None
        self.conn = None
        self.port = None
        self.created_db = False
        # nginx's workers run as www-data in a group of their own that the
        # backend's directory belongs to (group_access): they share only it.
        self.group = "so-nginx-%d" % os.getpid() if os.geteuid() == 0 else None
        self.max_size = 4096  # the backend's max_size, nginx's client_max_body_size for uploads

    # ---- setup -----------------------------------------------------------

    def start(self):
        self.admin = psycopg2.connect(dbname="postgres")
        self.admin.autocommit = True
        with self.admin.cursor() as cur:
            cur.execute("CREATE DATABASE %s" % self.dbname)
        self.created_db = True
        self.conn = psycopg2.connect(dbname=self.dbname)
        self.conn.autocommit = True
        self.sql("CREATE EXTENSION stored_object")

        base = os.environ.get("SO_TEST_TMPDIR") or tempfile.gettempdir()
        self.data_dir = tempfile.mkdtemp(prefix="nginx-secure-link-", dir=base)
        self.root = os.path.join(self.data_dir, "root")
        self.hmac_root = os.path.join(self.data_dir, "hmac-root")
        # The server (user postgres) writes here; nginx's workers (www-data,
        # in the backend directory's group) read, and write uploads.
        os.chmod(self.data_dir, 0o755)
        for d in (self.root, self.hmac_root):
            os.mkdir(d, 0o700)
        if os.geteuid() == 0:
            subprocess.run(["groupadd", self.group], check=True)
            pg = pwd.getpwnam("postgres")
            group = grp.getgrnam(self.group).gr_gid
            for d in (self.data_dir, self.hmac_root):
                os.chown(d, pg.pw_uid, pg.pw_gid)
            os.chown(self.root, pg.pw_uid, group)
            os.chmod(self.root, 0o2750)

        self.start_nginx()
        self.base_url = "http://127.0.0.1:%d/files" % self.port
        self.sql("SELECT so_register_backend('web', %s, %s)",
                 ("file://" + self.root,
                  '{"base_url": "%s", "sign_scheme": "nginx_secure_link", "signing_secret": "%s", '
                  '"group_access": true, "max_size": %d}' % (self.base_url, self.secret, self.max_size)))
        # Default scheme (hmac) and a secret the extension generates.
        self.hmac_base_url = "http://127.0.0.1:%d/hmac" % self.port
        self.sql("SELECT so_register_backend('mac', %s, %s)",
                 ("file://" + self.hmac_root, '{"base_url": "%s"}' % self.hmac_base_url))
        self.hmac_secret = self.value(
            "SELECT options->>'signing_secret' FROM so_backends WHERE key = 'mac'")

    def start_nginx(self):
        self.nginx_dir = tempfile.mkdtemp(prefix="so-nginx-")
        os.chmod(self.nginx_dir, 0o755)
        locations = nginxsupport.file_locations(self.root, self.secret, self.max_size)
        last_error = None
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            try:
                self.nginx = nginxsupport.start(self.nginx_dir, self.port, locations, self.group)
                return
            except RuntimeError as e:
                last_error = str(e)
                for log in ("stderr.log", "error.log"):
                    try:
                        with open(os.path.join(self.nginx_dir, log), "rb") as f:
                            last_error += "\n" + f.read().decode(errors="replace")
                    except OSError:
                        pass
        raise RuntimeError("nginx did not start:\n" + (last_error or ""))

    # ---- teardown --------------------------------------------------------

    def stop_nginx(self):
        nginxsupport.stop_process(self.nginx)
        self.nginx = None

    def stop(self):
        for step in (self.stop_nginx, self.drop_database, self.remove_dirs, self.remove_group):
            try:
                step()
            except Exception:
                traceback.print_exc()

    def drop_database(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.admin is not None:
            if self.created_db:
                with self.admin.cursor() as cur:
                    cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)
            self.admin.close()
            self.admin = None

    def remove_group(self):
        if self.group:
            subprocess.run(["groupdel", self.group], check=False)

    def remove_dirs(self):
        for d in (self.nginx_dir, self.data_dir):
            if d:
                shutil.rmtree(d, ignore_errors=True)

    # ---- helpers ---------------------------------------------------------

    def sql(self, query, args=None):
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def value(self, query, args=None):
        return self.sql(query, args)[0][0]


FX = None  # the Fixture, set by main()


def http_get(url, method="GET", body=None, headers=None):
    """A plain HTTP request (GET unless told), sending the URL's path and
    query exactly as given."""
    parts = urllib.parse.urlsplit(url)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1", url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(method, parts.path + ("?" + parts.query if parts.query else ""), body, headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def split_url(url):
    """(path, {param: value}) of a signed URL, the query kept undecoded."""
    path, _, query = url.partition("?")
    return path, dict(p.split("=", 1) for p in query.split("&"))


def with_params(path, params):
    return path + "?" + "&".join("%s=%s" % kv for kv in params.items())


B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def flip_char(s, i):
    """s with character i replaced by another base64url character that
    changes the decoded bytes: the top bit of its six is flipped (the last
    character of an unpadded MD5 carries only two bits; a decoder like
    nginx's ignores the rest, so a change in those would not be tampering)."""
    return s[:i] + B64URL[B64URL.index(s[i]) ^ 32] + s[i + 1:]


def error_texts(e):
    d = e.diag
    return [str(e), e.pgerror or "", d.message_primary or "", d.message_detail or "",
            d.message_hint or "", d.context or "", d.internal_query or ""]


class SecretFree:
    """Assertions on errors: their SQLSTATE, and that no secret leaks into them."""

    def assertSqlError(self, sqlstate, query, args=None):
        with self.assertRaises(psycopg2.Error) as cm:
            FX.sql(query, args)
        e = cm.exception
        self.assertEqual(e.pgcode, sqlstate, e.pgerror)
        self.assertSecretFree(e)
        return e

    def assertSecretFree(self, e):
        for text in error_texts(e):
            for secret in (FX.secret, FX.hmac_secret):
                self.assertNotIn(secret, text)


class NginxSecureLinkTest(SecretFree, unittest.TestCase):
    """so_put writes, so_sign signs, nginx's secure_link module checks."""

    @classmethod
    def setUpClass(cls):
        cls.objects = {}
        cls.urls = {}
        for key, content in KEYS.items():
            row = FX.sql("SELECT o::text, so_sign(o) FROM so_put('web', %s, %s) AS o",
                         (key, psycopg2.Binary(content)))[0]
            cls.objects[key], cls.urls[key] = row
        # One statement: every URL gets the same expires, so only the md5s differ.
        cls.same_statement = dict(FX.sql(
            "SELECT so_filename(o), so_sign(o) FROM unnest(%s::stored_object[]) AS o",
            (list(cls.objects.values()),)))
        # Expires two seconds after this statement started: at least a second
        # to fetch it fresh, even on a busy machine.
        cls.short_url = FX.value("SELECT so_sign(%s::stored_object, '2 seconds')", (cls.objects["other.bin"],))
        cls.short_expires = int(split_url(cls.short_url)[1]["expires"])
        cls.short_status_fresh = http_get(cls.short_url)[0]

    def test_url_shape(self):
        url = self.urls["dir with space/naïve ✓ ü.bin"]
        self.assertTrue(url.startswith(FX.base_url + "/dir%20with%20space/na%C3%AFve%20%E2%9C%93%20%C3%BC.bin?md5="), url)
        path, params = split_url(url)
        self.assertEqual(sorted(params), ["expires", "md5"])
        # Expires about an hour (so_sign's default) from now.
        self.assertAlmostEqual(int(params["expires"]), time.time() + 3600, delta=120)

    def test_get_binary_content(self):
        status, body = http_get(self.urls["binary.bin"])
        self.assertEqual(status, 200)
        self.assertEqual(body, BINARY)

    def test_get_key_with_space_and_unicode(self):
        key = "dir with space/naïve ✓ ü.bin"
        status, body = http_get(self.urls[key])
        self.assertEqual(status, 200)
        self.assertEqual(body, KEYS[key])

    def test_get_nested_key(self):
        status, body = http_get(self.urls["a/b/c.bin"])
        self.assertEqual(status, 200)
        self.assertEqual(body, KEYS["a/b/c.bin"])

    def test_every_key_with_curl(self):
        if not os.path.exists(CURL):
            self.skipTest("no " + CURL)
        for key, url in self.same_statement.items():
            with self.subTest(key=key):
                out = subprocess.run([CURL, "-sS", "--globoff", "-o", "-", "-w", "\n%{http_code}", url],
                                     stdout=subprocess.PIPE, check=True, timeout=30).stdout
                body, _, code = out.rpartition(b"\n")
                self.assertEqual(code, b"200")
                self.assertEqual(body, KEYS[key])

    def test_stored_metadata_matches_served_bytes(self):
        status, body = http_get(self.urls["binary.bin"])
        self.assertEqual(status, 200)
        etag, checksum, size = FX.sql("SELECT so_etag(o), so_checksum(o), so_size(o) FROM (SELECT %s::stored_object AS o) s",
                                      (self.objects["binary.bin"],))[0]
        self.assertEqual(size, len(body))
        self.assertEqual(etag, hashlib.md5(body).hexdigest())
        self.assertEqual(checksum, hashlib.sha256(body).hexdigest())

    def test_signed_url_of_missing_file_not_found(self):
        # A valid signature for a file nobody wrote: nginx's 404, not the 403
        # of secure_link, so the 403s above come from the signature check.
        url = FX.value("""SELECT so_sign('{"backend": "web", "filename": "never/written.bin"}'::stored_object)""")
        self.assertEqual(http_get(url)[0], 404)

    def test_unsigned_url_forbidden(self):
        self.assertEqual(http_get(FX.base_url + "/a/b/c.bin")[0], 403)
        path, params = split_url(self.urls["a/b/c.bin"])
        self.assertEqual(http_get(with_params(path, {"expires": params["expires"]}))[0], 403)
        self.assertEqual(http_get(with_params(path, {"md5": params["md5"]}))[0], 403)

    def test_tampered_md5_forbidden(self):
        path, params = split_url(self.urls["binary.bin"])
        for i in (0, len(params["md5"]) // 2, len(params["md5"]) - 1):
            with self.subTest(position=i):
                bad = dict(params, md5=flip_char(params["md5"], i))
                self.assertEqual(http_get(with_params(path, bad))[0], 403)
        self.assertEqual(http_get(with_params(path, dict(params, md5=params["md5"][:-1])))[0], 403)

    def test_changed_expires_forbidden(self):
        path, params = split_url(self.urls["binary.bin"])
        for delta in (1, -1, 86400 * 365):
            with self.subTest(delta=delta):
                bad = dict(params, expires=str(int(params["expires"]) + delta))
                self.assertEqual(http_get(with_params(path, bad))[0], 403)

    def test_md5_of_another_key_forbidden(self):
        # Same statement, same expires: only the key differs.
        path_a, params_a = split_url(self.same_statement["a/b/c.bin"])
        path_b, params_b = split_url(self.same_statement["other.bin"])
        self.assertEqual(params_a["expires"], params_b["expires"])
        self.assertEqual(http_get(with_params(path_a, params_a))[0], 200)
        self.assertEqual(http_get(with_params(path_a, params_b))[0], 403)
        self.assertEqual(http_get(with_params(path_b, params_a))[0], 403)

    def test_other_path_forbidden(self):
        # The signature covers the whole path, directories included.
        path, params = split_url(self.urls["a/b/c.bin"])
        self.assertEqual(http_get(with_params(FX.base_url + "/c.bin", params))[0], 403)
        self.assertEqual(http_get(with_params(FX.base_url + "/a/c.bin", params))[0], 403)

    def test_expired_url_forbidden(self):
        self.assertEqual(self.short_status_fresh, 200, "a fresh two-second URL is served")
        # nginx refuses once expires < now.
        time.sleep(max(0.0, self.short_expires + 1.5 - time.time()))
        status, body = http_get(self.short_url)
        self.assertEqual(status, 403)
        self.assertNotIn(KEYS["other.bin"], body)
        self.assertFalse(FX.value("SELECT so_verify_url(%s)", (self.short_url,)))

    def test_upload_url_not_supported(self):
        # so_sign cannot bind the backend's max_size: so_sign_upload signs uploads here.
        e = self.assertSqlError("0A000", "SELECT so_sign(%s::stored_object, for_upload => true)",
                                (self.objects["other.bin"],))
        self.assertIn("so_sign_upload", e.diag.message_hint)

    def test_download_as_not_supported(self):
        self.assertSqlError("0A000", "SELECT so_sign(%s::stored_object, download_as => 'x.bin')",
                            (self.objects["other.bin"],))

    def test_so_verify_url_agrees_with_nginx(self):
        url = self.urls["binary.bin"]
        self.assertTrue(FX.value("SELECT so_verify_url(%s)", (url,)))
        path, params = split_url(url)
        self.assertFalse(FX.value("SELECT so_verify_url(%s)", (with_params(path, dict(params, md5=flip_char(params["md5"], 3))),)))

    def test_so_verify_url_put_refused_for_download_only_scheme(self):
        # The scheme signs downloads only (so_sign refuses for_upload), so no
        # URL of it can be a valid upload URL.
        self.assertFalse(FX.value("SELECT so_verify_url(%s, 'PUT')", (self.urls["binary.bin"],)))


class UploadTest(SecretFree, unittest.TestCase):
    """so_sign_upload signs a PUT nginx takes into the upload area;
    so_adopt moves it to its key. nginx (www-data) and the server share
    only the backend directory's group."""

    def sign(self, key, size, content_type="application/octet-stream", expires="1 hour"):
        return json.loads(FX.value("SELECT so_sign_upload('web', %s, %s, size => %s, expires_in => %s, "
                                   "method => 'PUT')::text", (key, content_type, size, expires)))

    def test_upload_then_adopt_then_download(self):
        content = os.urandom(3000)
        upload = self.sign("inbox/report ü.bin", len(content))
        name = hashlib.sha256("inbox/report ü.bin".encode()).hexdigest()
        self.assertTrue(upload["url"].startswith(FX.base_url + "/.so-uploads/" + name + "?md5="), upload["url"])
        status, _ = http_get(upload["url"], "PUT", content, upload["headers"])
        self.assertIn(status, (201, 204))
        arrived = os.path.join(FX.root, ".so-uploads", name)
        if FX.group:
            st = os.stat(arrived)
            self.assertEqual((pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name),
                             ("www-data", FX.group))
        value = json.loads(FX.value("SELECT so_adopt('web', 'inbox/report ü.bin', expected_size => %s, "
                                    "expected_checksum => %s)::text",
                                    (len(content), hashlib.sha256(content).hexdigest())))
        self.assertFalse(os.path.exists(arrived))
        self.assertEqual(value["checksum"], hashlib.sha256(content).hexdigest())
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (json.dumps(value),))), content)
        # nginx serves the adopted file through the group.
        status, body = http_get(FX.value("SELECT so_sign(%s::stored_object)", (json.dumps(value),)))
        self.assertEqual((status, body), (200, content))

    def test_an_upload_never_adopted_is_an_orphan(self):
        upload = self.sign("inbox/forgotten.bin", 3)
        self.assertIn(http_get(upload["url"], "PUT", b"abc")[0], (201, 204))
        name = ".so-uploads/" + hashlib.sha256(b"inbox/forgotten.bin").hexdigest()
        orphans = [r[0] for r in FX.sql("SELECT so_filename(o) FROM so_orphans('web', '.so-uploads/', '0 seconds') o")]
        self.assertIn(name, orphans)
        young = [r[0] for r in FX.sql("SELECT so_filename(o) FROM so_orphans('web', '.so-uploads/', '1 hour') o")]
        self.assertNotIn(name, young)

    def test_server_writes_group_readable(self):
        FX.value("SELECT so_put('web', 'modes/a.bin', 'x'::bytea)")
        if FX.group:
            self.assertEqual(os.stat(os.path.join(FX.root, "modes")).st_mode & 0o7777, 0o2750)  # setgid inherited
            self.assertEqual(os.stat(os.path.join(FX.root, "modes", "a.bin")).st_mode & 0o777, 0o640)
            self.assertEqual(grp.getgrgid(os.stat(os.path.join(FX.root, "modes", "a.bin")).st_gid).gr_name,
                             FX.group)
            self.assertEqual(os.stat(os.path.join(FX.root, ".so-uploads")).st_mode & 0o7777, 0o2770)

    def test_refusals(self):
        upload = self.sign("inbox/refused.bin", 10)
        url = upload["url"]
        # An upload URL never downloads, a download URL never uploads.
        self.assertEqual(http_get(url)[0], 403)
        download = FX.value("SELECT so_sign(so_put('web', 'inbox/existing.bin', 'x'::bytea))")
        self.assertEqual(http_get(download, "PUT", b"overwritten")[0], 403)
        self.assertEqual(http_get(download)[1], b"x")
        # Tampered, another key's, expired.
        path, params = split_url(url)
        self.assertEqual(http_get(with_params(path, dict(params, md5=flip_char(params["md5"], 2))), "PUT", b"x")[0],
                         403)
        other = split_url(self.sign("inbox/other.bin", 10)["url"])[0]
        self.assertEqual(http_get(with_params(other, params), "PUT", b"x")[0], 403)
        short = self.sign("inbox/late.bin", 1, expires="1 second")
        expires = int(split_url(short["url"])[1]["expires"])
        while time.time() <= expires + 1:  # nginx compares whole seconds
            time.sleep(0.05)
        self.assertEqual(http_get(short["url"], "PUT", b"x")[0], 403)
        # Larger than the backend's max_size: nginx's client_max_body_size.
        self.assertEqual(http_get(url, "PUT", os.urandom(FX.max_size + 1))[0], 413)
        self.assertFalse(os.path.exists(os.path.join(FX.root, ".so-uploads",
                                                     hashlib.sha256(b"inbox/refused.bin").hexdigest())))
        # What nginx cannot check, adoption does: the size expected, the key taken.
        upload = self.sign("inbox/short.bin", 10)
        self.assertIn(http_get(upload["url"], "PUT", b"12345")[0], (201, 204))
        self.assertSqlError("22023", "SELECT so_adopt('web', 'inbox/short.bin', expected_size => 10)")
        self.assertFalse(FX.value("SELECT so_exists('{\"backend\":\"web\",\"filename\":\"inbox/short.bin\"}')"))
        upload = self.sign("inbox/existing.bin", 1)
        self.assertIn(http_get(upload["url"], "PUT", b"y")[0], (201, 204))
        self.assertSqlError("58P02", "SELECT so_adopt('web', 'inbox/existing.bin')")
        # The database's refusals.
        self.assertSqlError("0A000", "SELECT so_sign_upload('web', 'x.bin', 'application/octet-stream')")
        self.assertSqlError("0A000", "SELECT so_sign_upload('mac', 'x.bin', 'application/octet-stream', size => 1, "
                                     "method => 'PUT')")
        self.assertSqlError("54000", "SELECT so_sign_upload('web', 'x.bin', 'application/octet-stream', size => %s, "
                                     "method => 'PUT')", (FX.max_size + 1,))


class HmacSchemeTest(SecretFree, unittest.TestCase):
    """The default scheme, checked by so_verify_url."""

    @classmethod
    def setUpClass(cls):
        cls.obj_a = FX.value("SELECT so_put('mac', 'x/a ü.bin', %s)::text", (psycopg2.Binary(b"a\x00"),))
        cls.obj_b = FX.value("SELECT so_put('mac', 'x/b.bin', %s)::text", (psycopg2.Binary(b"b\x00"),))
        cls.get_a, cls.get_b, cls.put_a = FX.sql(
            "SELECT so_sign(a), so_sign(b), so_sign(a, for_upload => true) "
            "FROM (SELECT %s::stored_object AS a, %s::stored_object AS b) s", (cls.obj_a, cls.obj_b))[0]
        cls.short_url = FX.value("SELECT so_sign(%s::stored_object, '2 seconds')", (cls.obj_a,))
        cls.short_expires = int(split_url(cls.short_url)[1]["expires"])
        cls.short_fresh = FX.value("SELECT so_verify_url(%s)", (cls.short_url,))

    def verify(self, url, method=None):
        if method is None:
            return FX.value("SELECT so_verify_url(%s)", (url,))
        return FX.value("SELECT so_verify_url(%s, %s)", (url, method))

    def test_url_shape(self):
        self.assertTrue(self.get_a.startswith(FX.hmac_base_url + "/x/a%20%C3%BC.bin?expires="), self.get_a)
        self.assertEqual(sorted(split_url(self.get_a)[1]), ["expires", "signature"])

    def test_generated_secret_hidden(self):
        self.assertGreaterEqual(len(FX.hmac_secret), 16)
        row = FX.sql("SELECT options::text, secrets_set FROM so_backend_info WHERE key = 'mac'")[0]
        self.assertNotIn(FX.hmac_secret, row[0])
        self.assertEqual(row[1], ["signing_secret"])

    def test_fresh_url_valid(self):
        self.assertTrue(self.verify(self.get_a))
        self.assertTrue(self.verify(self.get_b))
        self.assertTrue(self.verify(self.get_a, "GET"))

    def test_tampered_signature_invalid(self):
        path, params = split_url(self.get_a)
        for i in (0, len(params["signature"]) - 1):
            with self.subTest(position=i):
                self.assertFalse(self.verify(with_params(path, dict(params, signature=flip_char(params["signature"], i)))))
        self.assertFalse(self.verify(with_params(path, dict(params, signature=""))))
        self.assertFalse(self.verify(path))

    def test_changed_expires_invalid(self):
        path, params = split_url(self.get_a)
        for delta in (1, -1, 86400):
            with self.subTest(delta=delta):
                self.assertFalse(self.verify(with_params(path, dict(params, expires=str(int(params["expires"]) + delta)))))

    def test_url_for_another_key_invalid(self):
        path_a, params_a = split_url(self.get_a)
        path_b, params_b = split_url(self.get_b)
        self.assertEqual(params_a["expires"], params_b["expires"])
        self.assertFalse(self.verify(with_params(path_a, params_b)))
        self.assertFalse(self.verify(with_params(path_b, params_a)))

    def test_other_backend_url_invalid(self):
        # A path under the nginx backend's base_url with this backend's signature.
        _, params = split_url(self.get_a)
        self.assertFalse(self.verify(with_params(FX.base_url + "/x/a%20%C3%BC.bin", params)))

    def test_expired_url_invalid(self):
        self.assertTrue(self.short_fresh, "a fresh two-second URL is valid")
        time.sleep(max(0.0, self.short_expires + 1.5 - time.time()))
        self.assertFalse(self.verify(self.short_url))

    def test_get_url_not_valid_for_put(self):
        self.assertFalse(self.verify(self.get_a, "PUT"))

    def test_upload_url_valid_for_put_only(self):
        self.assertTrue(self.verify(self.put_a, "PUT"))
        self.assertTrue(self.verify(self.put_a, "put"))
        self.assertFalse(self.verify(self.put_a))

    def test_bad_method_rejected(self):
        self.assertSqlError("22023", "SELECT so_verify_url(%s, 'DELETE')", (self.get_a,))


class SecretsNotInErrorsTest(SecretFree, unittest.TestCase):
    """Errors around backends that hold a signing secret never show it."""

    def test_register_errors(self):
        opts = '{"base_url": "%s", "sign_scheme": "nginx_secure_link", "signing_secret": "%s"' % (FX.base_url, FX.secret)
        cases = [
            ("42710", "SELECT so_register_backend('web', 'file:///tmp/x', %s)", (opts + "}",)),
            ("23502", "SELECT so_register_backend('w2', NULL, %s)", (opts + "}",)),
            ("22023", "SELECT so_register_backend('w2', 'file:///tmp/x', %s)", (opts + ', "bogus": "%s"}' % FX.secret,)),
            ("22023", "SELECT so_register_backend('w2', 'file:///tmp/x', %s)",
             ('{"sign_scheme": "%s", "signing_secret": "%s"}' % (FX.secret, FX.secret),)),
            ("22023", "SELECT so_register_backend('w2', 'file:///tmp/x', %s)",
             ('{"base_url": "ftp://%s", "signing_secret": "%s"}' % (FX.secret, FX.secret),)),
            ("22023", "SELECT so_alter_backend('web', options => %s)", ('{"sign_scheme": "bad"}',)),
            ("22023", "SELECT so_alter_backend('web', options => %s)", ('{"signing_secret": 12345678901234567}',)),
        ]
        for sqlstate, query, args in cases:
            with self.subTest(query=query, sqlstate=sqlstate):
                self.assertSqlError(sqlstate, query, args)

    def test_object_errors(self):
        obj = FX.value("SELECT so_put('web', 'err/dup.bin', 'x'::bytea)::text")
        cases = [
            ("58P02", "SELECT so_put('web', 'err/dup.bin', 'y'::bytea)", None),  # create-only
            ("22023", "SELECT so_put('web', '../escape', 'y'::bytea)", None),
            ("22023", "SELECT so_sign(%s::stored_object, '-1 second')", (obj,)),
            ("0A000", "SELECT so_sign(%s::stored_object, for_upload => true)", (obj,)),
            ("0A000", "SELECT so_sign(%s::stored_object, download_as => 'x')", (obj,)),
        ]
        for sqlstate, query, args in cases:
            with self.subTest(query=query):
                self.assertSqlError(sqlstate, query, args)

    def test_backend_info_hides_secret(self):
        text = FX.value("SELECT json_agg(i)::text FROM so_backend_info i")
        self.assertNotIn(FX.secret, text)
        self.assertNotIn(FX.hmac_secret, text)


def main():
    global FX
    FX = Fixture()

    def leftovers():
        return [FX.nginx_dir] if FX.nginx_dir and os.path.exists(FX.nginx_dir) else []
    return runner.run("nginx_secure_link", FX, (NginxSecureLinkTest, UploadTest, HmacSchemeTest,
                                                SecretsNotInErrorsTest),
                      leftovers)


if __name__ == "__main__":
    sys.exit(main())
