#!/usr/bin/python3
"""System test: signed uploads a client sends straight to S3, with the
limits the database sets inside what is signed, and their adoption.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_s3_uploads.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object
installed) and the S3 fixture's variables exported (see
tests/system/s3support.py). The fixture enforces POST policies and
presigned PUT signatures as AWS documents them (tests/s3/README.md).

- so_sign_upload's POST fields (policy and signature) are byte-identical
  to botocore's generate_presigned_post for the same conditions and time,
  with and without a session token.
- A form posted with those fields stores the object; the store refuses a
  file too large, of another type, under another key, after the expiry,
  with a tampered policy or signature.
- A PUT with the returned headers stores the object; another size, another
  type or an existing key is refused by the store.
- so_adopt turns the upload into a value (with the client's
  x-amz-checksum-sha256 as checksum), refuses and removes what breaks the
  backend's limits or the caller's expectations, and an abort removes it.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import sys
import time
import unittest
import urllib.parse
import uuid
from unittest import mock

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402  (sets BOTO_DISABLE_CRT before boto3 loads)
from s3support import BUCKET, TEMP_ACCESS_KEY, TEMP_SECRET_KEY, TEMP_SESSION_TOKEN, curl  # noqa: E402

import botocore.auth  # noqa: E402
import botocore.signers  # noqa: E402

FX = s3support.Fixture("uploads")
LIMIT = 1000  # the backend's max_size


def post_form(url, fields, filename, content, content_type="application/octet-stream", extra=()):
    """(status, body) of a browser-style multipart/form-data POST: the
    fields in order, then the file."""
    boundary = "----so-test-" + uuid.uuid4().hex
    parts = []
    for name, value in list(fields.items()) + list(extra):
        parts.append(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                      % (boundary, name, value)).encode())
    parts.append(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                  "Content-Type: %s\r\n\r\n" % (boundary, filename, content_type)).encode() + content + b"\r\n")
    body = b"".join(parts) + ("--%s--\r\n" % boundary).encode()
    target = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
    try:
        conn.request("POST", target.path or "/", body,
                     {"Content-Type": "multipart/form-data; boundary=" + boundary})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def s3_code(body):
    text = body.decode(errors="replace")
    start = text.find("<Code>")
    return text[start + 6:text.find("</Code>")] if start >= 0 else text[:200]


class FrozenDatetime(datetime.datetime):
    """datetime whose utcnow() is a fixed instant (botocore signs at utcnow)."""
    instant = None

    @classmethod
    def utcnow(cls):
        return cls.instant


class UploadTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        cls.base = FX.register("up", "up", max_size=LIMIT, allowed_content_types=["image/*", "application/pdf"],
                               attributes={"cache_control": "max-age=60", "tags": {"via": "browser"}})
        cls.temp = FX.register("up_temp", "temp", access_key_id=TEMP_ACCESS_KEY, secret_access_key=TEMP_SECRET_KEY,
                               session_token=TEMP_SESSION_TOKEN)

    def sign(self, filename, content_type, backend="up", **kwargs):
        """so_sign_upload's answer, with kwargs as named arguments."""
        named = "".join(", %s => %%(%s)s" % (k, k) for k in kwargs)
        query = "SELECT so_sign_upload(%(backend)s, %(filename)s, %(content_type)s" + named + ")::text"
        return json.loads(FX.value(query, dict(kwargs, backend=backend, filename=filename,
                                               content_type=content_type)))

    # ---- the POST policy, against botocore ------------------------------------

    def assert_same_as_botocore(self, backend, key_prefix, filename, content_type, conditions, fields_before_key,
                                credentials):
        upload = self.sign(filename, content_type, backend=backend)
        signed_at = datetime.datetime.utcfromtimestamp(upload["expires_at"] - 3600)
        FrozenDatetime.instant = signed_at
        client = FX.boto3_client(*credentials)
        with mock.patch.object(botocore.signers.datetime, "datetime", FrozenDatetime), \
                mock.patch.object(botocore.auth.datetime, "datetime", FrozenDatetime):
            theirs = client.generate_presigned_post(BUCKET, key_prefix + filename, Fields=dict(fields_before_key),
                                                    Conditions=conditions, ExpiresIn=3600)
        self.assertEqual(base64.b64decode(upload["fields"]["policy"]), base64.b64decode(theirs["fields"]["policy"]))
        self.assertEqual(upload["fields"], theirs["fields"])
        self.assertEqual(list(theirs["fields"])[:len(fields_before_key)], [k for k, _ in fields_before_key])
        self.assertEqual(upload["url"], theirs["url"])
        return upload

    def test_post_policy_is_botocore_s(self):
        tagging = "<Tagging><TagSet><Tag><Key>via</Key><Value>browser</Value></Tag></TagSet></Tagging>"
        self.assert_same_as_botocore(
            "up", self.base, "cat ü.png", "image/png",
            [{"Content-Type": "image/png"}, ["content-length-range", 0, LIMIT], {"Cache-Control": "max-age=60"},
             {"tagging": tagging}],
            [("Content-Type", "image/png"), ("Cache-Control", "max-age=60"), ("tagging", tagging)],
            (None, None, None))

    def test_post_policy_with_a_session_token_is_botocore_s(self):
        upload = self.assert_same_as_botocore(
            "up_temp", self.temp, "doc.pdf", "application/pdf",
            [{"Content-Type": "application/pdf"}, ["content-length-range", 0, 5 * 1024 ** 3]],
            [("Content-Type", "application/pdf")],
            (TEMP_ACCESS_KEY, TEMP_SECRET_KEY, TEMP_SESSION_TOKEN))
        self.assertEqual(upload["fields"]["x-amz-security-token"], TEMP_SESSION_TOKEN)

    # ---- POST: what the store accepts and refuses -------------------------------

    def test_post_upload_then_adopt(self):
        content = os.urandom(700)
        upload = self.sign("inbox/post.png", "image/png")
        status, body = post_form(upload["url"], upload["fields"], "post.png", content, "image/png")
        self.assertIn(status, (200, 201, 204), body)
        head = FX.head(self.base + "inbox/post.png")
        self.assertEqual((head["ContentType"], head["CacheControl"]), ("image/png", "max-age=60"))
        value = json.loads(FX.value("SELECT so_adopt('up', 'inbox/post.png', expected_size => 700)::text"))
        self.assertEqual((value["size"], value["content_type"]), (700, "image/png"))
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (json.dumps(value),))), content)

    def test_post_refusals(self):
        upload = self.sign("inbox/refused.png", "image/png", max_size=100)
        cases = {
            "too large": (upload["fields"], os.urandom(101), [], "EntityTooLarge"),
            "other type": (dict(upload["fields"], **{"Content-Type": "text/html"}), b"x", [], "AccessDenied"),
            "other key": (dict(upload["fields"], key=self.base + "inbox/elsewhere.png"), b"x", [], "AccessDenied"),
            "tampered policy": (dict(upload["fields"], policy=base64.b64encode(
                base64.b64decode(upload["fields"]["policy"]).replace(b"100]", b"999]")).decode()), b"x", [],
                "SignatureDoesNotMatch"),
            "tampered signature": (dict(upload["fields"], **{"x-amz-signature": "0" * 64}), b"x", [],
                                   "SignatureDoesNotMatch"),
            "extra field": (upload["fields"], b"x", [("x-amz-meta-extra", "1")], "AccessDenied"),
        }
        for name, (fields, content, extra, code) in cases.items():
            with self.subTest(name):
                status, body = post_form(upload["url"], fields, "f.png", content, "image/png", extra)
                self.assertGreaterEqual(status, 400, name)
                self.assertEqual(s3_code(body), code, body)
        self.assertIsNone(FX.head(self.base + "inbox/refused.png"))
        self.assertIsNone(FX.head(self.base + "inbox/elsewhere.png"))

    def test_post_after_expiry_is_refused(self):
        upload = self.sign("inbox/late.png", "image/png", expires_in="1 second")
        while time.time() <= upload["expires_at"]:  # the condition, not a guess
            time.sleep(0.05)
        status, body = post_form(upload["url"], upload["fields"], "late.png", b"late", "image/png")
        self.assertEqual((status, s3_code(body)), (403, "AccessDenied"))

    # ---- PUT -------------------------------------------------------------------------

    def test_put_upload_binds_size_type_and_creates_only(self):
        content = b"%PDF-1.4 " + os.urandom(300)
        upload = self.sign("inbox/put.pdf", "application/pdf", size=len(content), method="PUT")
        headers = ["%s: %s" % kv for kv in upload["headers"].items() if kv[0] != "Content-Length"]
        status, _, body = curl(upload["url"], method="PUT", upload=content, headers=headers)
        self.assertEqual(status, 200, body)
        self.assertEqual(FX.get_bytes(self.base + "inbox/put.pdf"), content)
        # The same URL again: the key exists (If-None-Match: *).
        status, _, body = curl(upload["url"], method="PUT", upload=content, headers=headers)
        self.assertEqual((status, s3_code(body)), (412, "PreconditionFailed"))
        # Another size or type: not what was signed.
        other = self.sign("inbox/put2.pdf", "application/pdf", size=10, method="PUT")
        other_headers = ["%s: %s" % kv for kv in other["headers"].items() if kv[0] != "Content-Length"]
        status, _, body = curl(other["url"], method="PUT", upload=b"x" * 11, headers=other_headers)
        self.assertEqual((status, s3_code(body)), (403, "SignatureDoesNotMatch"))
        wrong_type = [h.replace("application/pdf", "text/html") for h in other_headers]
        status, _, body = curl(other["url"], method="PUT", upload=b"x" * 10, headers=wrong_type)
        self.assertEqual((status, s3_code(body)), (403, "SignatureDoesNotMatch"))
        self.assertIsNone(FX.head(self.base + "inbox/put2.pdf"))

    # ---- adoption ---------------------------------------------------------------------

    def test_adopt_refuses_and_removes_what_breaks_the_limits(self):
        # Written around the database (as a leaked credential could): adoption still checks.
        FX.s3.put_object(Bucket=BUCKET, Key=self.base + "inbox/big.png", Body=b"x" * (LIMIT + 1),
                         ContentType="image/png")
        self.assertSqlError("54000", "SELECT so_adopt('up', 'inbox/big.png')")
        self.assertIsNone(FX.head(self.base + "inbox/big.png"))
        FX.s3.put_object(Bucket=BUCKET, Key=self.base + "inbox/page.png", Body=b"<html>", ContentType="text/html")
        self.assertSqlError("22023", "SELECT so_adopt('up', 'inbox/page.png')")
        self.assertIsNone(FX.head(self.base + "inbox/page.png"))
        FX.s3.put_object(Bucket=BUCKET, Key=self.base + "inbox/sum.png", Body=b"abc", ContentType="image/png")
        e = self.assertSqlError("22023", "SELECT so_adopt('up', 'inbox/sum.png', expected_checksum => %s)",
                                (hashlib.sha256(b"abd").hexdigest(),))
        self.assertIn("expected SHA-256", e.pgerror)
        self.assertIsNone(FX.head(self.base + "inbox/sum.png"))
        self.assertSqlError("58P01", "SELECT so_adopt('up', 'inbox/never-uploaded.png')")

    def test_adopt_reads_the_checksum_the_client_sent_and_an_abort_removes(self):
        content = b"\x89PNG adopted"
        FX.s3.put_object(Bucket=BUCKET, Key=self.base + "inbox/sha.png", Body=content, ContentType="image/png",
                         ChecksumSHA256=base64.b64encode(hashlib.sha256(content).digest()).decode())
        conn = FX.connect(autocommit=False)
        value = json.loads(FX.value("SELECT so_adopt('up', 'inbox/sha.png', expected_checksum => %s)::text",
                                    (hashlib.sha256(content).hexdigest(),), conn))
        self.assertEqual(value["checksum"], hashlib.sha256(content).hexdigest())
        conn.rollback()
        FX.wait_for_worker()
        self.assertIsNone(FX.head(self.base + "inbox/sha.png"))


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [UploadTest]))
