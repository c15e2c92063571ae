#!/usr/bin/python3
"""System test: what the S3 backend writes, reads and signs, checked with
independent clients.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_s3_clients.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed)
and the S3 fixture's variables exported (S3_ENDPOINT, S3_ACCESS_KEY_ID, ...;
see tests/system/s3support.py).

- What so_put writes (keys with spaces, + = & % ~, //, non-ASCII and 4-byte
  UTF-8; a custom content type; metadata with a nested value) reads back
  byte-identical, with the same Content-Type and metadata, through boto3 and
  Debian's /usr/bin/aws; nested metadata values arrive JSON-encoded.
- What boto3 and aws write, so_get reads and so_stat adopts.
- URLs from so_sign work with plain /usr/bin/curl for GET and PUT, and are
  refused (403) once tampered with or expired; download_as/download_type
  come back as Content-Disposition/Content-Type.
- A backend with temporary credentials (session token) works, and its URLs
  carry X-Amz-Security-Token.
- Signed URLs are byte-identical to botocore's pure-Python presigner for the
  same inputs and time.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
import unittest
import urllib.parse
from unittest import mock

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402  (sets BOTO_DISABLE_CRT before boto3 loads)
from s3support import curl  # noqa: E402
from s3support import BUCKET, TEMP_ACCESS_KEY, TEMP_SECRET_KEY, TEMP_SESSION_TOKEN  # noqa: E402

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
import psycopg2  # noqa: E402
from botocore.config import Config  # noqa: E402

FX = s3support.Fixture("clients")

# Metadata with a nested value, non-ASCII inside it, a number and a plain string.
NESTED = {"a": [1, 2, {"b": "ü", "c": None}], "t": True, "emoji": "😀"}
META = {"owner": "ann", "label": "plain text", "count": 3, "nested": NESTED}

# key -> (content, content type given to so_put or None to let it guess)
OBJECTS = {
    "plain.bin": (bytes(range(256)) * 4 + os.urandom(500), None),
    "dir with space/file name.txt": (b"spaces in the key\n", None),
    "sym+bol=eq&amp%25 pct~tilde.json": (b'{"x": "+=&%~"}', "application/vnd.so-test+json; charset=utf-8"),
    "double//slash/x.bin": (b"\x00double slash\xff" * 10, "application/x-custom"),
    "unicode/naïve ü ✓.txt": ("naïve ü ✓\n".encode(), None),
    "emoji/😀 four-byte 𝄞.bin": (os.urandom(2000), "image/x-emoji"),
}
SPECIAL = ["sym+bol=eq&amp%25 pct~tilde.json", "double//slash/x.bin", "emoji/😀 four-byte 𝄞.bin"]


# ---- helpers -----------------------------------------------------------------


def split_url(url):
    """(path, [(name, raw value)]) of a URL, the query kept undecoded."""
    path, _, query = url.partition("?")
    return path, [tuple(p.split("=", 1)) for p in query.split("&")] if query else []


def join_url(path, params):
    return path + "?" + "&".join("%s=%s" % kv for kv in params)


def replace_param(url, name, value):
    path, params = split_url(url)
    return join_url(path, [(n, value if n == name else v) for n, v in params])


def param(url, name):
    return dict(split_url(url)[1])[name]


def flip_hex(s):
    return s[:-1] + ("0" if s[-1] != "0" else "1")


def amz_date_epoch(url):
    d = datetime.datetime.strptime(param(url, "X-Amz-Date"), "%Y%m%dT%H%M%SZ")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp())


def s3_error_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


class ClientsBase(s3support.SqlAssertions, unittest.TestCase):
    FX = FX
    kp = None  # full key prefix of backend 'cli'
    tok_kp = None  # of backend 'tok' (session token)

    @classmethod
    def setUpClass(cls):
        if ClientsBase.kp is None:
            ClientsBase.kp = FX.register("cli", "cli")
            ClientsBase.tok_kp = FX.register("tok", "tok", access_key_id=TEMP_ACCESS_KEY,
                                             secret_access_key=TEMP_SECRET_KEY,
                                             session_token=TEMP_SESSION_TOKEN)
            ClientsBase.objects = {}
            for key, (content, ctype) in OBJECTS.items():
                ClientsBase.objects[key] = FX.value(
                    "SELECT so_put('cli', %s, %s, content_type => %s, metadata => %s)::text",
                    (key, psycopg2.Binary(content), ctype, json.dumps(META)))

    def sign(self, obj, **kw):
        args = ", ".join("%s => %%(%s)s" % (k, k) for k in kw)
        params = dict(kw, obj=obj)
        return FX.value("SELECT so_sign(%(obj)s::stored_object" + (", " + args if args else "") + ")", params)


# ---- what so_put writes --------------------------------------------------------


class ExtensionWritesTest(ClientsBase):
    """so_put writes; boto3, aws and so_stat read."""

    def assertMetadataAsSeenByOthers(self, metadata):
        # Plain ASCII strings as they are; anything else JSON-encoded as a string.
        self.assertEqual(set(metadata), set(META))
        self.assertEqual(metadata["owner"], "ann")
        self.assertEqual(metadata["label"], "plain text")
        self.assertEqual(json.loads(metadata["count"]), 3)
        self.assertIsInstance(metadata["nested"], str)
        self.assertEqual(json.loads(metadata["nested"]), NESTED)
        for v in metadata.values():
            v.encode("ascii")  # S3 metadata travels as ASCII (\u escapes)

    def test_so_put_result(self):
        for key, (content, ctype) in OBJECTS.items():
            with self.subTest(key=key):
                obj = json.loads(self.objects[key])
                self.assertEqual(obj["filename"], key)
                self.assertEqual(obj["size"], len(content))
                self.assertEqual(obj["etag"], hashlib.md5(content).hexdigest())
                self.assertEqual(obj["checksum"], hashlib.sha256(content).hexdigest())
                self.assertEqual(obj["metadata"], META)
                if ctype:
                    self.assertEqual(obj["content_type"], ctype)
        self.assertEqual(json.loads(self.objects["unicode/naïve ü ✓.txt"])["content_type"], "text/plain")

    def test_boto3_reads_back(self):
        for key, (content, ctype) in OBJECTS.items():
            with self.subTest(key=key):
                obj = json.loads(self.objects[key])
                r = FX.s3.get_object(Bucket=BUCKET, Key=self.kp + key)
                self.assertEqual(r["Body"].read(), content)
                self.assertEqual(r["ContentType"], obj["content_type"])
                self.assertEqual(r["ContentLength"], len(content))
                self.assertEqual(r["ETag"].strip('"'), obj["etag"])
                self.assertMetadataAsSeenByOthers(r["Metadata"])

    def test_listing_has_the_exact_keys(self):
        # Keys arrive byte for byte: no normalisation of //, %, + or Unicode.
        listed = sorted(FX.list_keys("cli/"))
        expected = sorted(self.kp + k for k in OBJECTS)
        self.assertTrue(set(expected) <= set(listed), (expected, listed))

    def test_aws_cli_reads_back(self):
        tmp = tempfile.mkdtemp(prefix="so-aws-")
        try:
            for key in SPECIAL:
                with self.subTest(key=key):
                    content = OBJECTS[key][0]
                    obj = json.loads(self.objects[key])
                    target = os.path.join(tmp, "out")
                    out = FX.aws("s3api", "get-object", "--bucket", BUCKET, "--key", self.kp + key, target)
                    with open(target, "rb") as f:
                        self.assertEqual(f.read(), content)
                    self.assertEqual(out["ContentType"], obj["content_type"])
                    self.assertEqual(out["ContentLength"], len(content))
                    self.assertEqual(out["ETag"].strip('"'), obj["etag"])
                    self.assertMetadataAsSeenByOthers(out["Metadata"])
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_so_stat_round_trips_what_so_put_wrote(self):
        for key, (content, ctype) in OBJECTS.items():
            with self.subTest(key=key):
                put = json.loads(self.objects[key])
                stat = json.loads(FX.value("SELECT so_stat('cli', %s)::text", (key,)))
                for field in ("backend", "filename", "content_type", "size", "etag", "metadata"):
                    self.assertEqual(stat[field], put[field], field)
                self.assertAlmostEqual(stat["last_modified"], put["last_modified"], delta=2)

    def test_so_get_reads_back(self):
        for key, (content, ctype) in OBJECTS.items():
            with self.subTest(key=key):
                obj = self.objects[key]
                self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,))), content)
                self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object, 3, 7)", (obj,))), content[3:10])


# ---- what others write ----------------------------------------------------------


class ForeignWritesTest(ClientsBase):
    """boto3 and aws write; so_get reads and so_stat adopts."""

    def adopt(self, key):
        return json.loads(FX.value("SELECT so_stat('cli', %s)::text", (key,)))

    def test_boto3_writes(self):
        cases = {
            "boto3/plain.bin": os.urandom(3333),
            "boto3/sym+bol=eq&%25~.txt": b"boto3 with + = & % ~",
            "boto3//double.bin": b"boto3 //",
            "boto3/ünï 😀 𝄞.bin": os.urandom(100),
        }
        metadata = {"owner": "bob", "shape": '{"w":1,"h":[2,3]}', "note": "hello world"}
        for key, content in cases.items():
            with self.subTest(key=key):
                FX.s3.put_object(Bucket=BUCKET, Key=self.kp + key, Body=content,
                                 ContentType="text/x-boto3", Metadata=metadata)
                stat = self.adopt(key)
                self.assertEqual(stat["backend"], "cli")
                self.assertEqual(stat["filename"], key)
                self.assertEqual(stat["content_type"], "text/x-boto3")
                self.assertEqual(stat["size"], len(content))
                self.assertEqual(stat["etag"], hashlib.md5(content).hexdigest())
                self.assertEqual(stat["metadata"], {"owner": "bob", "shape": {"w": 1, "h": [2, 3]},
                                                    "note": "hello world"})
                self.assertIsNotNone(stat["last_modified"])
                self.assertAlmostEqual(stat["last_modified"], time.time(), delta=120)
                self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('cli', %s))", (key,))), content)
                self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('cli', %s), 1, 5)", (key,))), content[1:6])
                self.assertTrue(FX.value("SELECT so_exists(so_stat('cli', %s))", (key,)))

    def test_aws_cli_writes(self):
        tmp = tempfile.mkdtemp(prefix="so-aws-")
        try:
            for key, content in (("aws/a b+c=d&e%f~g.bin", os.urandom(4096)),
                                 ("aws//ü 😀.txt", "aws ü 😀\n".encode())):
                with self.subTest(key=key):
                    src = os.path.join(tmp, "in")
                    with open(src, "wb") as f:
                        f.write(content)
                    FX.aws("s3api", "put-object", "--bucket", BUCKET, "--key", self.kp + key, "--body", src,
                           "--content-type", "application/x-from-aws",
                           "--metadata", json.dumps({"owner": "carol", "tags": '["x","y"]'}))
                    stat = self.adopt(key)
                    self.assertEqual(stat["content_type"], "application/x-from-aws")
                    self.assertEqual(stat["size"], len(content))
                    self.assertEqual(stat["etag"], hashlib.md5(content).hexdigest())
                    self.assertEqual(stat["metadata"], {"owner": "carol", "tags": ["x", "y"]})
                    self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('cli', %s))", (key,))), content)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def test_so_stat_of_missing_key(self):
        self.assertSqlError("58P01", "SELECT so_stat('cli', 'never/written.bin')")

    def test_created_by_others_blocks_create_only_put(self):
        FX.s3.put_object(Bucket=BUCKET, Key=self.kp + "boto3/taken.bin", Body=b"taken")
        self.assertSqlError("58P02", "SELECT so_put('cli', 'boto3/taken.bin', 'mine'::bytea)")
        self.assertEqual(FX.get_bytes(self.kp + "boto3/taken.bin"), b"taken")


# ---- signed URLs with curl ----------------------------------------------------------


class SignedUrlTest(ClientsBase):
    """URLs from so_sign, fetched with plain curl."""

    def test_url_shape(self):
        url = self.sign(self.objects["plain.bin"])
        path, params = split_url(url)
        self.assertEqual(path, "%s/%s/%splain.bin" % (FX.endpoint, BUCKET, self.kp))
        self.assertEqual([n for n, _ in params],
                         ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                          "X-Amz-SignedHeaders", "X-Amz-Signature"])
        self.assertEqual(param(url, "X-Amz-Expires"), "3600")
        self.assertEqual(param(url, "X-Amz-SignedHeaders"), "host")
        self.assertAlmostEqual(amz_date_epoch(url), time.time(), delta=120)
        for secret in FX.secrets:
            self.assertNotIn(secret, url)

    def test_get_every_key_with_curl(self):
        urls = dict(FX.sql("SELECT so_filename(o), so_sign(o, '10 minutes') FROM unnest(%s::stored_object[]) o",
                           (list(self.objects.values()),)))
        for key, (content, ctype) in OBJECTS.items():
            with self.subTest(key=key):
                status, headers, body = curl(urls[key])
                self.assertEqual(status, 200, body[:500])
                self.assertEqual(body, content)
                self.assertEqual(headers["content-type"], json.loads(self.objects[key])["content_type"])
                self.assertEqual(param(urls[key], "X-Amz-Expires"), "600")

    def test_put_with_curl_then_adopt(self):
        key = "upload/curl ü+=&%~ 😀.bin"
        content = os.urandom(70000)
        stub = json.dumps({"backend": "cli", "filename": key})
        url = self.sign(stub, for_upload=True)
        status, _, body = curl(url, "PUT", upload=content, headers=["Content-Type: application/x-uploaded"])
        self.assertEqual(status, 200, body[:500])
        stat = json.loads(FX.value("SELECT so_stat('cli', %s)::text", (key,)))
        self.assertEqual(stat["size"], len(content))
        self.assertEqual(stat["etag"], hashlib.md5(content).hexdigest())
        self.assertEqual(stat["content_type"], "application/x-uploaded")
        self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('cli', %s))", (key,))), content)
        self.assertEqual(FX.get_bytes(self.kp + key), content)

    def test_tampered_get_forbidden(self):
        url = self.sign(self.objects["plain.bin"])
        self.assertEqual(curl(url)[0], 200)
        path, params = split_url(url)
        other = self.kp + "dir%20with%20space/file%20name.txt"
        cases = {
            "signature": replace_param(url, "X-Amz-Signature", flip_hex(param(url, "X-Amz-Signature"))),
            "expires": replace_param(url, "X-Amz-Expires", "3601"),
            "date": replace_param(url, "X-Amz-Date", param(url, "X-Amz-Date")[:-3] + "59Z"
                                  if not param(url, "X-Amz-Date").endswith("59Z")
                                  else param(url, "X-Amz-Date")[:-3] + "58Z"),
            "other key": join_url("%s/%s/%s" % (FX.endpoint, BUCKET, other), params),
            "no signature": join_url(path, [p for p in params if p[0] != "X-Amz-Signature"]),
            "added override": url + "&response-content-type=text%2Fhtml",
        }
        for what, bad in cases.items():
            with self.subTest(what=what):
                status, _, body = curl(bad)
                # S3 answers a URL without its signature parameter 400
                # (AuthorizationQueryParametersError), every other one 403.
                self.assertEqual(status, 400 if what == "no signature" else 403, body[:300])
                self.assertNotIn(OBJECTS["plain.bin"][0], body)

    def test_method_is_signed(self):
        key = "upload/method.bin"
        stub = json.dumps({"backend": "cli", "filename": key})
        get_url = self.sign(self.objects["plain.bin"])
        put_url = self.sign(stub, for_upload=True)
        # A download URL cannot upload, an upload URL cannot download.
        self.assertEqual(curl(get_url.replace("plain.bin", "upload/method.bin"), "PUT", upload=b"x")[0], 403)
        self.assertEqual(curl(get_url, "PUT", upload=b"overwritten?")[0], 403)
        self.assertEqual(FX.get_bytes(self.kp + "plain.bin"), OBJECTS["plain.bin"][0])
        self.assertEqual(curl(put_url)[0], 403)
        self.assertIsNone(FX.head(self.kp + key))

    def test_tampered_put_forbidden(self):
        key = "upload/tampered.bin"
        stub = json.dumps({"backend": "cli", "filename": key})
        url = self.sign(stub, for_upload=True)
        for bad in (replace_param(url, "X-Amz-Signature", flip_hex(param(url, "X-Amz-Signature"))),
                    url.replace("upload/tampered.bin", "upload/elsewhere.bin")):
            with self.subTest(url=bad):
                self.assertEqual(curl(bad, "PUT", upload=b"sneaky")[0], 403)
        self.assertIsNone(FX.head(self.kp + key))
        self.assertIsNone(FX.head(self.kp + "upload/elsewhere.bin"))

    def test_expired_urls_forbidden(self):
        stub = json.dumps({"backend": "cli", "filename": "upload/late.bin"})
        get_url, put_url = FX.sql("SELECT so_sign(%s::stored_object, '2 seconds'), "
                                  "so_sign(%s::stored_object, '2 seconds', for_upload => true)",
                                  (self.objects["plain.bin"], stub))[0]
        self.assertEqual(param(get_url, "X-Amz-Expires"), "2")
        self.assertEqual(curl(get_url)[0], 200, "a fresh two-second URL works")
        expires_at = amz_date_epoch(get_url) + 2
        time.sleep(max(0.0, expires_at + 1.2 - time.time()))
        status, _, body = curl(get_url)
        self.assertEqual(status, 403)
        self.assertIn(b"expired", body)
        self.assertNotIn(OBJECTS["plain.bin"][0], body)
        self.assertEqual(curl(put_url, "PUT", upload=b"too late")[0], 403)
        self.assertIsNone(FX.head(self.kp + "upload/late.bin"))

    def test_download_as_and_type(self):
        obj = self.objects["plain.bin"]
        name = 'rép ort "q" 😀.csv'
        url = self.sign(obj, download_as=name, download_type="text/csv")
        status, headers, body = curl(url)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(body, OBJECTS["plain.bin"][0])
        self.assertEqual(headers["content-type"], "text/csv")
        disposition = headers["content-disposition"]
        self.assertTrue(disposition.startswith("attachment;"), disposition)
        # RFC 6266: filename* carries the exact name, filename= an ASCII fallback.
        star = re.search(r"filename\*=UTF-8''([^;\s]+)", disposition)
        self.assertIsNotNone(star, disposition)
        self.assertEqual(urllib.parse.unquote(star.group(1)), name)
        plain = re.search(r'filename="((?:[^"\\]|\\.)*)"', disposition)
        self.assertIsNotNone(plain, disposition)
        plain.group(1).encode("ascii")

    def test_download_type_alone(self):
        obj = self.objects["plain.bin"]
        status, headers, _ = curl(self.sign(obj, download_type="application/x-forced"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/x-forced")
        self.assertNotIn("content-disposition", headers)

    def test_download_as_alone_keeps_content_type(self):
        obj = self.objects["sym+bol=eq&amp%25 pct~tilde.json"]
        status, headers, body = curl(self.sign(obj, download_as="data.json"))
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], OBJECTS["sym+bol=eq&amp%25 pct~tilde.json"][1])
        self.assertIn('filename="data.json"', headers["content-disposition"])

    def test_download_options_refused_for_upload(self):
        stub = json.dumps({"backend": "cli", "filename": "upload/x.bin"})
        self.assertSqlError("22023", "SELECT so_sign(%s::stored_object, for_upload => true, download_as => 'x')",
                            (stub,))


class SessionTokenTest(ClientsBase):
    """A backend with temporary credentials: every request and URL carries the token."""

    def test_put_get_stat(self):
        content = os.urandom(1000)
        obj = FX.value("SELECT so_put('tok', 'tok/ü+1.bin', %s, metadata => '{\"k\": {\"v\": 1}}')::text",
                       (psycopg2.Binary(content),))
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (obj,))), content)
        stat = json.loads(FX.value("SELECT so_stat('tok', 'tok/ü+1.bin')::text"))
        self.assertEqual(stat["etag"], hashlib.md5(content).hexdigest())
        self.assertEqual(stat["metadata"], {"k": {"v": 1}})
        # boto3 with the same temporary credentials, and with the permanent ones.
        temp = FX.boto3_client(TEMP_ACCESS_KEY, TEMP_SECRET_KEY, TEMP_SESSION_TOKEN)
        self.assertEqual(temp.get_object(Bucket=BUCKET, Key=self.tok_kp + "tok/ü+1.bin")["Body"].read(), content)
        self.assertEqual(FX.get_bytes(self.tok_kp + "tok/ü+1.bin"), content)

    def test_signed_urls_carry_token(self):
        content = b"token-signed"
        obj = FX.value("SELECT so_put('tok', 'tok/signed.bin', %s)::text", (psycopg2.Binary(content),))
        url = self.sign(obj)
        self.assertEqual(param(url, "X-Amz-Security-Token"), TEMP_SESSION_TOKEN)
        self.assertTrue(param(url, "X-Amz-Credential").startswith(TEMP_ACCESS_KEY + "%2F"))
        status, _, body = curl(url)
        self.assertEqual(status, 200, body[:300])
        self.assertEqual(body, content)
        # Without the token, or with another one, S3 refuses.
        path, params = split_url(url)
        self.assertEqual(curl(join_url(path, [p for p in params if p[0] != "X-Amz-Security-Token"]))[0], 400)
        self.assertIn(curl(replace_param(url, "X-Amz-Security-Token", "other-token"))[0], (400, 403))
        # Upload URL.
        put_url = self.sign(json.dumps({"backend": "tok", "filename": "tok/uploaded.bin"}), for_upload=True)
        self.assertEqual(param(put_url, "X-Amz-Security-Token"), TEMP_SESSION_TOKEN)
        self.assertEqual(curl(put_url, "PUT", upload=b"uploaded with token")[0], 200)
        self.assertEqual(FX.get_bytes(self.tok_kp + "tok/uploaded.bin"), b"uploaded with token")

    def test_token_not_listed(self):
        row = FX.sql("SELECT options::text, secrets_set FROM so_backend_info WHERE key = 'tok'")[0]
        self.assertNotIn(TEMP_SESSION_TOKEN, row[0])
        self.assertNotIn(TEMP_SECRET_KEY, row[0])
        self.assertEqual(sorted(row[1]), ["secret_access_key", "session_token"])


# ---- byte-identical to botocore ---------------------------------------------------


class PinnedDatetime(datetime.datetime):
    now_value = None

    @classmethod
    def utcnow(cls):  # what botocore.auth asks for the signing time
        return cls.now_value


class PresignMatchesBotocoreTest(ClientsBase):
    """Signed URLs are byte-identical to botocore's pure-Python presigner for
    the same inputs (bucket, key, method, response overrides, credentials,
    expiry) and time (X-Amz-Date of our URL)."""

    clients = {}

    def botocore_client(self, token):
        if token not in self.clients:
            if token:
                creds = dict(aws_access_key_id=TEMP_ACCESS_KEY, aws_secret_access_key=TEMP_SECRET_KEY,
                             aws_session_token=TEMP_SESSION_TOKEN)
            else:
                creds = dict(aws_access_key_id=FX.access_key, aws_secret_access_key=FX.secret_key)
            self.clients[token] = boto3.session.Session(region_name=FX.region, **creds).client(
                "s3", endpoint_url=FX.endpoint,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        return self.clients[token]

    def botocore_presign(self, url, key, token, method):
        """botocore's URL for the inputs of our URL, at its X-Amz-Date."""
        when = datetime.datetime.strptime(param(url, "X-Amz-Date"), "%Y%m%dT%H%M%SZ")
        params = {"Bucket": BUCKET, "Key": key}
        names = {"response-content-disposition": "ResponseContentDisposition",
                 "response-content-type": "ResponseContentType"}
        # Response overrides in the order our URL has them (botocore keeps the
        # order of Params); their values decoded from our URL.
        for name, value in split_url(url)[1]:
            if name in names:
                params[names[name]] = urllib.parse.unquote(value)
        PinnedDatetime.now_value = PinnedDatetime(when.year, when.month, when.day, when.hour, when.minute,
                                                  when.second)
        with mock.patch.object(botocore.auth, "datetime", types.SimpleNamespace(datetime=PinnedDatetime)):
            return self.botocore_client(token).generate_presigned_url(
                "put_object" if method == "PUT" else "get_object", Params=params,
                ExpiresIn=int(param(url, "X-Amz-Expires")))

    def test_byte_identical(self):
        keys = ["plain.bin", "dir with space/file name.txt", "sym+bol=eq&amp%25 pct~tilde.json",
                "double//slash/x.bin", "unicode/naïve ü ✓.txt", "emoji/😀 four-byte 𝄞.bin"]
        variants = [
            ("GET", "'1 hour'", {}),
            ("GET", "'90 seconds'", {"download_as": "report.pdf"}),
            ("GET", "'15 minutes'", {"download_as": "rép ort \"q\" +&=%~ 😀.csv"}),
            ("GET", "'7 days'", {"download_type": "text/csv; charset=utf-8"}),
            ("GET", "'2 hours'", {"download_as": "a b.txt", "download_type": "application/x-a+b"}),
            ("PUT", "'30 minutes'", {}),
        ]
        checked = 0
        for backend, prefix, token in (("cli", self.kp, False), ("tok", self.tok_kp, True)):
            for key in keys:
                stub = json.dumps({"backend": backend, "filename": key})
                for method, interval, extra in variants:
                    kw = dict(extra)
                    args = ""
                    if method == "PUT":
                        args += ", for_upload => true"
                    for name in kw:
                        args += ", %s => %%(%s)s" % (name, name)
                    url = FX.value("SELECT so_sign(%%(obj)s::stored_object, %s%s)" % (interval, args),
                                   dict(kw, obj=stub))
                    with self.subTest(backend=backend, key=key, method=method, extra=extra):
                        self.assertEqual(("X-Amz-Security-Token" in url), token)
                        expected = self.botocore_presign(url, prefix + key, token, method)
                        self.assertEqual(url, expected)
                        checked += 1
        self.assertEqual(checked, 2 * len(keys) * len(variants))

    def test_many_in_one_statement_share_time(self):
        # Every row of a statement gets the same X-Amz-Date; each still matches botocore.
        rows = FX.sql("SELECT so_filename(o), so_sign(o, '5 minutes') FROM unnest(%s::stored_object[]) o",
                      (list(self.objects.values()),))
        dates = {param(url, "X-Amz-Date") for _, url in rows}
        self.assertEqual(len(dates), 1)
        for key, url in rows:
            with self.subTest(key=key):
                self.assertEqual(url, self.botocore_presign(url, self.kp + key, False, "GET"))


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [ExtensionWritesTest, ForeignWritesTest, SignedUrlTest, SessionTokenTest,
                                 PresignMatchesBotocoreTest]))
