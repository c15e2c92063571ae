#!/usr/bin/python3
"""End-to-end tests of the S3 fixture (run-fixture.sh + s3proxy.py + s3rver).

Run with Debian's Python: /usr/bin/python3 tests/s3/test_fixture.py
Prints "N passed, N failed" last and exits non-zero on any failure.
S3_FIXTURE_TEST_PORT picks the proxy's port (default: any free one); the
fixture's directory is made under $TMPDIR.
"""

import base64
import datetime
import gzip
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest
import urllib.error
import urllib.parse
import urllib.request
from unittest import mock
from urllib.parse import quote
from xml.etree import ElementTree

os.environ["BOTO_DISABLE_CRT"] = "true"

import boto3  # noqa: E402
import botocore.auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402
from botocore.exceptions import ClientError, ConnectionClosedError, \
    EndpointConnectionError, ReadTimeoutError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUN_FIXTURE = os.path.join(HERE, "run-fixture.sh")
BUCKET = "test-bucket"
OTHER_BUCKET = "other-bucket"
VERSIONED = "versioned-bucket"  # versioning Enabled by its tests
ACCESS_KEY, SECRET_KEY = "test-access-key", "test-secret-key"
TEMP_KEY, TEMP_SECRET, TOKEN = "temp-access-key", "temp-secret-key", "tok3n"
MIB = 1024 * 1024

FIXTURE = types.SimpleNamespace(dir=None, port=None, started=False)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint():
    return f"http://127.0.0.1:{FIXTURE.port}"


def start_fixture(restart=False):
    """Start the fixture; restart=True reuses the directory and port."""
    if not restart:
        FIXTURE.dir = tempfile.mkdtemp(prefix="s3-fixture-test-")
        FIXTURE.port = int(os.environ.get("S3_FIXTURE_TEST_PORT") or
                           free_port())
    env = dict(os.environ,
               S3_FIXTURE_BUCKETS=f"{BUCKET} {OTHER_BUCKET} {VERSIONED}",
               S3_FIXTURE_CREDENTIALS=f"{ACCESS_KEY}:{SECRET_KEY} "
                                      f"{TEMP_KEY}:{TEMP_SECRET}:{TOKEN}")
    subprocess.run([RUN_FIXTURE, "start", FIXTURE.dir, str(FIXTURE.port)],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    FIXTURE.started = True


def stop_fixture():
    if FIXTURE.started:
        subprocess.run([RUN_FIXTURE, "stop", FIXTURE.dir], check=True)
        FIXTURE.started = False


def client(access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None,
           attempts=1, read_timeout=60):
    return boto3.client(
        "s3", endpoint_url=endpoint(), region_name="us-east-1",
        aws_access_key_id=access_key, aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=Config(signature_version="s3v4",
                      s3={"addressing_style": "path"},
                      retries={"total_max_attempts": attempts,
                               "mode": "standard"},
                      read_timeout=read_timeout, connect_timeout=5))


def error_of(call):
    """(HTTP status, S3 error code) of a boto3 call expected to fail."""
    try:
        call()
    except ClientError as exc:
        return (exc.response["ResponseMetadata"]["HTTPStatusCode"],
                exc.response["Error"]["Code"])
    raise AssertionError("the call succeeded")


def failure_of(call):
    """The ClientError response of a boto3 call expected to fail."""
    try:
        call()
    except ClientError as exc:
        return types.SimpleNamespace(
            status=exc.response["ResponseMetadata"]["HTTPStatusCode"],
            code=exc.response["Error"]["Code"],
            message=exc.response["Error"].get("Message", ""),
            headers=exc.response["ResponseMetadata"]["HTTPHeaders"])
    raise AssertionError("the call succeeded")


def headers_of(response):
    return response["ResponseMetadata"]["HTTPHeaders"]


def with_header(s3, event, name, value):
    """Context manager: add a header to one kind of boto3 request."""
    def add(request, **_):
        request.headers[name] = value

    class _Scope:
        def __enter__(self):
            s3.meta.events.register_first(f"before-sign.s3.{event}", add)

        def __exit__(self, *exc):
            s3.meta.events.unregister(f"before-sign.s3.{event}", add)
    return _Scope()


def _frozen_clock(when):
    class Frozen(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when
    return types.SimpleNamespace(datetime=Frozen)


def raw_request(method, path, body=b"", headers=None, sign=True,
                credentials=(ACCESS_KEY, SECRET_KEY), when=None,
                send_body=None, region="us-east-1", after_signing=None):
    """A request signed by botocore (client side) and sent by http.client.

    send_body replaces the body after signing; after_signing(headers) may
    tamper with the signed headers.
    """
    request = AWSRequest(method=method, url=endpoint() + path, data=body,
                         headers=dict(headers or {}))
    if sign:
        signer = botocore.auth.S3SigV4Auth(Credentials(*credentials), "s3",
                                           region)
        if when is None:
            signer.add_auth(request)
        else:
            with mock.patch.object(botocore.auth, "datetime",
                                   _frozen_clock(when)):
                signer.add_auth(request)
    sent_headers = dict(request.headers.items())
    if after_signing:
        after_signing(sent_headers)
    return http_call(method, path, send_body if send_body is not None
                     else body, sent_headers)


def http_call(method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", FIXTURE.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def control(method, name, document=None):
    body = json.dumps(document).encode() if document is not None else b""
    status, _, data = http_call(method, "/__fixture/" + name, body)
    return status, json.loads(data)


def error_code(xml_body):
    text = xml_body.decode()
    return text.split("<Code>")[1].split("</Code>")[0]


def upload_dirs(bucket=BUCKET):
    root = os.path.join(FIXTURE.dir, "data", bucket, "._S3rver_uploads")
    return os.listdir(root) if os.path.isdir(root) else []


class FixtureTestCase(unittest.TestCase):
    def setUp(self):
        control("DELETE", "faults")
        self.s3 = client()

    def tearDown(self):
        control("DELETE", "faults")


class SignatureTests(FixtureTestCase):
    def test_header_signed_put_and_get(self):
        self.s3.put_object(Bucket=BUCKET, Key="sig/ok", Body=b"payload")
        body = self.s3.get_object(Bucket=BUCKET, Key="sig/ok")["Body"].read()
        self.assertEqual(body, b"payload")

    def test_presigned_get_and_put(self):
        put_url = self.s3.generate_presigned_url(
            "put_object", Params={"Bucket": BUCKET, "Key": "sig/pre sign+d"},
            ExpiresIn=300)
        request = urllib.request.Request(put_url, data=b"via url",
                                         method="PUT")
        with urllib.request.urlopen(request) as response:
            self.assertEqual(response.status, 200)
        get_url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "sig/pre sign+d"},
            ExpiresIn=300)
        with urllib.request.urlopen(get_url) as response:
            self.assertEqual(response.read(), b"via url")

    def test_tampered_signature_is_rejected(self):
        def tamper(headers):
            auth = headers["Authorization"]
            last = "0" if auth[-1] != "0" else "1"
            headers["Authorization"] = auth[:-1] + last
        status, headers, body = raw_request("GET", f"/{BUCKET}/sig/ok",
                                            after_signing=tamper)
        self.assertEqual((status, error_code(body)),
                         (403, "SignatureDoesNotMatch"))
        self.assertIn("x-amz-request-id", headers)
        self.assertIn(b"<RequestId>", body)

    def test_wrong_secret_is_rejected(self):
        bad = client(secret_key="not-the-secret")
        self.assertEqual(error_of(lambda: bad.list_objects_v2(Bucket=BUCKET)),
                         (403, "SignatureDoesNotMatch"))

    def test_unknown_access_key_is_rejected(self):
        bad = client(access_key="nobody")
        self.assertEqual(error_of(lambda: bad.head_bucket(Bucket=BUCKET))[0],
                         403)
        status, _, body = raw_request("GET", f"/{BUCKET}?list-type=2",
                                      credentials=("nobody", "x"))
        self.assertEqual((status, error_code(body)),
                         (403, "InvalidAccessKeyId"))

    def test_anonymous_request_is_denied(self):
        status, _, body = raw_request("GET", f"/{BUCKET}/sig/ok", sign=False)
        self.assertEqual((status, error_code(body)), (403, "AccessDenied"))

    def test_expired_presigned_url(self):
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "sig/ok"},
            ExpiresIn=1)
        time.sleep(2.1)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url)
        body = caught.exception.read()
        self.assertEqual(caught.exception.code, 403)
        self.assertEqual(error_code(body), "AccessDenied")
        self.assertIn(b"Request has expired", body)

    def test_presign_longer_than_a_week_is_rejected(self):
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "sig/ok"},
            ExpiresIn=604801)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url)
        self.assertEqual(caught.exception.code, 400)
        self.assertEqual(error_code(caught.exception.read()),
                         "AuthorizationQueryParametersError")

    def test_presigned_url_for_another_key_is_rejected(self):
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": "sig/ok"},
            ExpiresIn=300)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url.replace("/sig/ok?", "/sig/other?"))
        self.assertEqual(caught.exception.code, 403)
        self.assertEqual(error_code(caught.exception.read()),
                         "SignatureDoesNotMatch")

    def test_skewed_clock_is_rejected(self):
        past = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        status, _, body = raw_request("GET", f"/{BUCKET}?list-type=2",
                                      when=past)
        self.assertEqual((status, error_code(body)),
                         (403, "RequestTimeTooSkewed"))

    def test_wrong_content_sha256_is_rejected(self):
        # Signed for one body, sent with another of the same length.
        status, _, body = raw_request("PUT", f"/{BUCKET}/sig/sha",
                                      body=b"AAAA", send_body=b"BBBB")
        self.assertEqual((status, error_code(body)),
                         (400, "XAmzContentSHA256Mismatch"))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="sig/sha"))[0], 404)

    def test_wrong_content_md5_is_rejected(self):
        wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
        self.assertEqual(error_of(lambda: self.s3.put_object(
            Bucket=BUCKET, Key="sig/md5", Body=b"data", ContentMD5=wrong)),
            (400, "BadDigest"))
        right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
        self.s3.put_object(Bucket=BUCKET, Key="sig/md5", Body=b"data",
                           ContentMD5=right)

    def test_unsigned_amz_header_is_rejected(self):
        def add_header(headers):
            headers["x-amz-meta-sneaky"] = "1"
        status, _, body = raw_request("PUT", f"/{BUCKET}/sig/h", body=b"x",
                                      after_signing=add_header)
        self.assertEqual((status, error_code(body)), (403, "AccessDenied"))

    def test_wrong_region_is_rejected(self):
        status, _, body = raw_request("GET", f"/{BUCKET}?list-type=2",
                                      region="eu-west-1")
        self.assertEqual((status, error_code(body)),
                         (400, "AuthorizationHeaderMalformed"))

    def test_session_token(self):
        good = client(TEMP_KEY, TEMP_SECRET, token=TOKEN)
        good.put_object(Bucket=BUCKET, Key="sig/token", Body=b"t")
        self.assertEqual(error_of(lambda: client(TEMP_KEY, TEMP_SECRET)
                                  .head_bucket(Bucket=BUCKET))[0], 400)
        status, _, body = raw_request("GET", f"/{BUCKET}/sig/token",
                                      credentials=(TEMP_KEY, TEMP_SECRET))
        self.assertEqual((status, error_code(body)),
                         (400, "MissingSecurityHeader"))
        status, _, body = raw_request(
            "GET", f"/{BUCKET}/sig/token",
            credentials=(TEMP_KEY, TEMP_SECRET, "wrong"))
        self.assertEqual((status, error_code(body)), (400, "InvalidToken"))

    def test_virtual_hosted_style_is_rejected(self):
        status, _, body = raw_request(
            "GET", "/sig/ok", headers={"Host": f"{BUCKET}.localhost"})
        self.assertEqual((status, error_code(body)), (400, "InvalidRequest"))


class ConditionalWriteTests(FixtureTestCase):
    def put_if_absent(self, key, body, s3=None):
        s3 = s3 or self.s3

        def add_header(request, **_):
            request.headers["If-None-Match"] = "*"
        s3.meta.events.register_first("before-sign.s3.PutObject", add_header)
        try:
            return s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        finally:
            s3.meta.events.unregister("before-sign.s3.PutObject", add_header)

    def test_if_none_match_star(self):
        self.put_if_absent("cond/once", b"first")
        self.assertEqual(error_of(lambda: self.put_if_absent("cond/once",
                                                             b"second")),
                         (412, "PreconditionFailed"))
        body = self.s3.get_object(Bucket=BUCKET, Key="cond/once")["Body"]
        self.assertEqual(body.read(), b"first")

    def test_concurrent_conditional_puts_have_one_winner(self):
        results = []
        # boto3's default session is not thread-safe: make clients here.
        clients = [client() for _ in range(8)]

        def attempt(n):
            try:
                self.put_if_absent("cond/race", b"w%d" % n, clients[n])
                results.append("ok")
            except ClientError as exc:
                results.append(exc.response["Error"]["Code"])
        threads = [threading.Thread(target=attempt, args=(n,))
                   for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(sorted(results),
                         ["PreconditionFailed"] * 7 + ["ok"])

    def test_read_conditions(self):
        etag = self.s3.put_object(Bucket=BUCKET, Key="cond/read",
                                  Body=b"r")["ETag"]
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="cond/read", IfMatch='"nope"')),
            (412, "PreconditionFailed"))
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="cond/read", IfNoneMatch=etag))[0], 304)

    def test_suffix_range(self):
        self.s3.put_object(Bucket=BUCKET, Key="cond/range", Body=b"0123456789")
        got = self.s3.get_object(Bucket=BUCKET, Key="cond/range",
                                 Range="bytes=-3")
        self.assertEqual(got["Body"].read(), b"789")
        self.assertEqual(got["ContentRange"], "bytes 7-9/10")
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="cond/range", Range="bytes=10-")),
            (416, "InvalidRange"))


class MultipartTests(FixtureTestCase):
    def uploads(self, prefix=""):
        listed = self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
        return [(u["Key"], u["UploadId"]) for u in listed.get("Uploads", [])]

    def test_abort_leaves_nothing(self):
        key = "mp//aborted ü"
        upload = self.s3.create_multipart_upload(Bucket=BUCKET, Key=key)
        upload_id = upload["UploadId"]
        self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id,
                            PartNumber=1, Body=b"x" * 1000)
        self.assertIn((key, upload_id), self.uploads("mp/"))
        self.assertIn(upload_id, upload_dirs())
        self.s3.abort_multipart_upload(Bucket=BUCKET, Key=key,
                                       UploadId=upload_id)
        self.assertNotIn((key, upload_id), self.uploads())
        self.assertNotIn(upload_id, upload_dirs())
        self.assertEqual(error_of(lambda: self.s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=2,
            Body=b"y")), (404, "NoSuchUpload"))
        self.assertEqual(error_of(lambda: self.s3.abort_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id)),
            (404, "NoSuchUpload"))
        self.assertNotIn(upload_id, upload_dirs())

    def test_complete_assembles_and_cleans_up(self):
        key = "mp/complete"
        first, last = os.urandom(5 * MIB), b"tail"
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key=key)["UploadId"]
        etags = [self.s3.upload_part(Bucket=BUCKET, Key=key,
                                     UploadId=upload_id, PartNumber=n,
                                     Body=data)["ETag"]
                 for n, data in ((1, first), (2, last))]
        parts = self.s3.list_parts(Bucket=BUCKET, Key=key,
                                   UploadId=upload_id)["Parts"]
        self.assertEqual([p["Size"] for p in parts], [5 * MIB, 4])
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                       for n, e in zip((1, 2), etags)]})
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        self.assertEqual(body, first + last)
        self.assertNotIn(upload_id, [u for _, u in self.uploads()])
        self.assertNotIn(upload_id, upload_dirs())

    def test_small_parts_wrong_etags_and_order_are_rejected(self):
        key = "mp/strict"
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key=key)["UploadId"]
        etags = [self.s3.upload_part(Bucket=BUCKET, Key=key,
                                     UploadId=upload_id, PartNumber=n,
                                     Body=b"%d" % n * 10)["ETag"]
                 for n in (1, 2)]

        def complete(parts):
            return lambda: self.s3.complete_multipart_upload(
                Bucket=BUCKET, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                           for n, e in parts]})
        self.assertEqual(error_of(complete([(1, etags[0]), (2, etags[1])])),
                         (400, "EntityTooSmall"))
        self.assertEqual(error_of(complete([(1, '"bad"')])),
                         (400, "InvalidPart"))
        self.assertEqual(error_of(complete([(2, etags[1]), (1, etags[0])])),
                         (400, "InvalidPartOrder"))
        self.assertIn((key, upload_id), self.uploads("mp/strict"))
        self.s3.abort_multipart_upload(Bucket=BUCKET, Key=key,
                                       UploadId=upload_id)
        self.assertEqual(self.uploads("mp/strict"), [])

    def test_unknown_upload_id(self):
        self.assertEqual(error_of(lambda: self.s3.upload_part(
            Bucket=BUCKET, Key="mp/none", UploadId="0123abcd",
            PartNumber=1, Body=b"x")), (404, "NoSuchUpload"))
        self.assertNotIn("0123abcd", upload_dirs())

    def test_complete_with_if_none_match_on_existing_key(self):
        key = "mp/exists"
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=b"old")
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key=key)["UploadId"]
        etag = self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                   PartNumber=1, Body=b"new")["ETag"]

        def add_header(request, **_):
            request.headers["If-None-Match"] = "*"
        event = "before-sign.s3.CompleteMultipartUpload"
        self.s3.meta.events.register_first(event, add_header)
        self.assertEqual(error_of(lambda: self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})),
            (412, "PreconditionFailed"))
        self.s3.meta.events.unregister(event, add_header)
        self.s3.abort_multipart_upload(Bucket=BUCKET, Key=key,
                                       UploadId=upload_id)
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        self.assertEqual(body, b"old")


ODD_KEYS = ["odd//double", "odd/trailing/", "odd///triple//",
            "odd/with space", "odd/plus+eq=amp&pct%tilde~",
            "odd/ünïcödé", "odd/emoji 😀 𝄞", "odd/../dots/./x",
            "odd/."]


class KeyTests(FixtureTestCase):
    def test_odd_keys_round_trip(self):
        for key in ODD_KEYS + ["//leading-double", "/leading"]:
            with self.subTest(key=key):
                body = key.encode()
                self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
                head = self.s3.head_object(Bucket=BUCKET, Key=key)
                self.assertEqual(head["ContentLength"], len(body))
                got = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"]
                self.assertEqual(got.read(), body)
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="odd/")
        self.assertEqual([o["Key"] for o in listed["Contents"]],
                         sorted(ODD_KEYS, key=lambda k: k.encode()))
        for key in ODD_KEYS:
            self.s3.delete_object(Bucket=BUCKET, Key=key)
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="odd/")
        self.assertEqual(listed["KeyCount"], 0)

    def test_delimiter_with_double_slashes(self):
        for key in ("tree//x", "tree/a/b", "tree/c", "tree///y"):
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=b"t")
        listed = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="tree/",
                                         Delimiter="/")
        self.assertEqual([p["Prefix"] for p in listed["CommonPrefixes"]],
                         ["tree//", "tree/a/"])
        self.assertEqual([o["Key"] for o in listed["Contents"]], ["tree/c"])
        nested = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="tree//",
                                         Delimiter="/")
        self.assertEqual([p["Prefix"] for p in nested["CommonPrefixes"]],
                         ["tree///"])
        self.assertEqual([o["Key"] for o in nested["Contents"]], ["tree//x"])

    def test_copy_object_with_odd_source(self):
        source = "copy//src ü+&=%😀"
        self.s3.put_object(Bucket=BUCKET, Key=source, Body=b"copied")
        self.s3.copy_object(Bucket=OTHER_BUCKET, Key="copy//dst 😀",
                            CopySource={"Bucket": BUCKET, "Key": source})
        got = self.s3.get_object(Bucket=OTHER_BUCKET, Key="copy//dst 😀")
        self.assertEqual(got["Body"].read(), b"copied")

    def test_delete_objects(self):
        keys = ["bulk//a", "bulk/b c", "bulk/😀"]
        for key in keys:
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=b"d")
        result = self.s3.delete_objects(
            Bucket=BUCKET, Delete={"Objects": [{"Key": k} for k in keys]})
        self.assertEqual(sorted(d["Key"] for d in result["Deleted"]),
                         sorted(keys))
        self.assertEqual(self.s3.list_objects_v2(
            Bucket=BUCKET, Prefix="bulk/")["KeyCount"], 0)


class ListingTests(FixtureTestCase):
    KEYS = ["page/a", "page/a-b", "page/a.txt", "page/a/x", "page/b"]

    @classmethod
    def setUpClass(cls):
        s3 = client()
        for key in cls.KEYS:
            s3.put_object(Bucket=BUCKET, Key=key, Body=b"p")

    def test_pagination_max_keys_2(self):
        pages, token = [], None
        while True:
            args = {"Bucket": BUCKET, "Prefix": "page/", "MaxKeys": 2}
            if token:
                args["ContinuationToken"] = token
            result = self.s3.list_objects_v2(**args)
            pages.append([o["Key"] for o in result.get("Contents", [])])
            if not result["IsTruncated"]:
                break
            token = result["NextContinuationToken"]
        self.assertEqual(pages, [self.KEYS[0:2], self.KEYS[2:4],
                                 self.KEYS[4:]])

    def test_paginator_with_delimiter(self):
        entries = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix="page/",
                                       Delimiter="/",
                                       PaginationConfig={"PageSize": 1}):
            entries += [o["Key"] for o in page.get("Contents", [])]
            entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        self.assertEqual(entries, ["page/a", "page/a-b", "page/a.txt",
                                   "page/a/", "page/b"])

    def test_list_objects_v1_and_start_after(self):
        keys = []
        for page in self.s3.get_paginator("list_objects").paginate(
                Bucket=BUCKET, Prefix="page/",
                PaginationConfig={"PageSize": 2}):
            keys += [o["Key"] for o in page.get("Contents", [])]
        self.assertEqual(keys, self.KEYS)
        result = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="page/",
                                         StartAfter="page/a.txt")
        self.assertEqual([o["Key"] for o in result["Contents"]],
                         self.KEYS[3:])


def enable_versioning(s3, bucket, status="Enabled"):
    s3.put_bucket_versioning(Bucket=bucket,
                             VersioningConfiguration={"Status": status})


def versions_of(bucket, key):
    """[(VersionId, is a delete marker, IsLatest)] of one key, in the
    listing's order (boto3 splits versions from markers, so read XML)."""
    status, _, body = raw_request(
        "GET", f"/{bucket}?versions&prefix={quote(key, safe='')}")
    assert status == 200, body
    ns = "{http://s3.amazonaws.com/doc/2006-03-01/}"
    found = []
    for entry in ElementTree.fromstring(body):
        kind = entry.tag[len(ns):]
        if kind in ("Version", "DeleteMarker") and \
                entry.findtext(ns + "Key") == key:
            found.append((entry.findtext(ns + "VersionId"),
                          kind == "DeleteMarker",
                          entry.findtext(ns + "IsLatest") == "true"))
    return found


class VersioningTests(FixtureTestCase):
    @classmethod
    def setUpClass(cls):
        enable_versioning(client(), VERSIONED)

    def put(self, key, body, **extra):
        return self.s3.put_object(Bucket=VERSIONED, Key=key, Body=body,
                                  **extra)["VersionId"]

    def body(self, key, version=None, bucket=VERSIONED):
        args = {"VersionId": version} if version else {}
        got = self.s3.get_object(Bucket=bucket, Key=key, **args)
        return got["Body"].read(), got.get("VersionId")

    def test_bucket_versioning_configuration(self):
        bucket = "cfg-versioning"
        self.s3.create_bucket(Bucket=bucket)
        self.assertNotIn("Status", self.s3.get_bucket_versioning(
            Bucket=bucket))
        for status in ("Enabled", "Suspended", "Enabled"):
            enable_versioning(self.s3, bucket, status)
            self.assertEqual(self.s3.get_bucket_versioning(
                Bucket=bucket)["Status"], status)

        def put_config(xml, md5=True):
            headers = {"Content-MD5": base64.b64encode(
                hashlib.md5(xml).digest()).decode()} if md5 else {}
            status, _, body = raw_request("PUT", f"/{bucket}?versioning",
                                          body=xml, headers=headers)
            return status, error_code(body) if status != 200 else None
        config = b"<VersioningConfiguration><Status>%s</Status>" \
                 b"</VersioningConfiguration>"
        self.assertEqual(put_config(config % b"Suspended"), (200, None))
        self.assertEqual(put_config(config % b"Off"), (400, "MalformedXML"))
        self.assertEqual(put_config(config % b"Enabled", md5=False),
                         (400, "InvalidRequest"))
        self.assertEqual(put_config(b"<VersioningConfiguration/>"),
                         (400, "IllegalVersioningConfigurationException"))
        self.assertEqual(self.s3.get_bucket_versioning(
            Bucket=bucket)["Status"], "Suspended")

    def test_each_put_is_a_version(self):
        ids = [self.put("v/three", b"body %d" % n) for n in range(3)]
        self.assertEqual(len(set(ids)), 3)
        for version_id in ids:
            self.assertRegex(version_id, r"^[A-Za-z0-9][A-Za-z0-9._]{31}$")
        self.assertEqual(self.body("v/three"), (b"body 2", ids[2]))
        for n, version_id in enumerate(ids):
            self.assertEqual(self.body("v/three", version_id),
                             (b"body %d" % n, version_id))
            head = self.s3.head_object(Bucket=VERSIONED, Key="v/three",
                                       VersionId=version_id)
            self.assertEqual((head["VersionId"], head["ContentLength"]),
                             (version_id, 6))
        self.assertEqual(versions_of(VERSIONED, "v/three"),
                         [(ids[2], False, True), (ids[1], False, False),
                          (ids[0], False, False)])
        # Ranges and conditions apply to old versions too.
        old = self.s3.get_object(Bucket=VERSIONED, Key="v/three",
                                 VersionId=ids[0], Range="bytes=-1")
        self.assertEqual(old["Body"].read(), b"0")
        self.assertEqual(old["ContentRange"], "bytes 5-5/6")
        etag = self.s3.head_object(Bucket=VERSIONED, Key="v/three",
                                   VersionId=ids[0])["ETag"]
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=VERSIONED, Key="v/three", VersionId=ids[0],
            IfNoneMatch=etag))[0], 304)
        url = self.s3.generate_presigned_url("get_object", Params={
            "Bucket": VERSIONED, "Key": "v/three", "VersionId": ids[1],
            "ResponseContentType": "text/x-old"}, ExpiresIn=60)
        with urllib.request.urlopen(url) as response:
            self.assertEqual(response.read(), b"body 1")
            self.assertEqual(response.headers["Content-Type"], "text/x-old")
            self.assertEqual(response.headers["x-amz-version-id"], ids[1])

    def test_unknown_and_malformed_version_ids(self):
        self.put("v/ids", b"x")
        unknown = "A" * 32
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=VERSIONED, Key="v/ids", VersionId=unknown)),
            (404, "NoSuchVersion"))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=VERSIONED, Key="v/ids", VersionId=unknown)), (404, "404"))
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=VERSIONED, Key="v/ids", VersionId="not-a-version")),
            (400, "InvalidArgument"))
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=VERSIONED, Key="v/ids", VersionId="null")),
            (404, "NoSuchVersion"))

    def test_delete_marker(self):
        first = self.put("v/marked", b"kept")
        deleted = self.s3.delete_object(Bucket=VERSIONED, Key="v/marked")
        self.assertEqual(deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertTrue(deleted["DeleteMarker"])
        marker = deleted["VersionId"]
        for call, code in ((self.s3.get_object, "NoSuchKey"),
                           (self.s3.head_object, "404")):
            failure = failure_of(lambda: call(Bucket=VERSIONED,
                                              Key="v/marked"))
            self.assertEqual((failure.status, failure.code), (404, code))
            self.assertEqual(failure.headers["x-amz-delete-marker"], "true")
            self.assertEqual(failure.headers["x-amz-version-id"], marker)
        for call, code in ((self.s3.get_object, "MethodNotAllowed"),
                           (self.s3.head_object, "405")):
            failure = failure_of(lambda: call(Bucket=VERSIONED,
                                              Key="v/marked",
                                              VersionId=marker))
            self.assertEqual((failure.status, failure.code), (405, code))
            self.assertEqual(failure.headers["x-amz-delete-marker"], "true")
            self.assertIn("last-modified", failure.headers)
        self.assertEqual(self.body("v/marked", first), (b"kept", first))
        listed = self.s3.list_objects_v2(Bucket=VERSIONED, Prefix="v/marked")
        self.assertEqual(listed["KeyCount"], 0)
        v1 = self.s3.list_objects(Bucket=VERSIONED, Prefix="v/marked")
        self.assertNotIn("Contents", v1)
        self.assertEqual(versions_of(VERSIONED, "v/marked"),
                         [(marker, True, True), (first, False, False)])
        # Removing the marker makes the version current again.
        gone = self.s3.delete_object(Bucket=VERSIONED, Key="v/marked",
                                     VersionId=marker)
        self.assertEqual((gone["VersionId"], gone["DeleteMarker"]),
                         (marker, True))
        self.assertEqual(self.body("v/marked"), (b"kept", first))

    def test_deleting_versions_promotes_the_previous_one(self):
        ids = [self.put("v/promote", b"p%d" % n) for n in range(3)]
        gone = self.s3.delete_object(Bucket=VERSIONED, Key="v/promote",
                                     VersionId=ids[2])
        self.assertEqual(gone["VersionId"], ids[2])
        self.assertNotIn("DeleteMarker", gone)
        self.assertEqual(self.body("v/promote"), (b"p1", ids[1]))
        self.s3.delete_object(Bucket=VERSIONED, Key="v/promote",
                              VersionId=ids[0])  # not the latest
        self.assertEqual(self.body("v/promote"), (b"p1", ids[1]))
        self.assertEqual(versions_of(VERSIONED, "v/promote"),
                         [(ids[1], False, True)])
        self.s3.delete_object(Bucket=VERSIONED, Key="v/promote",
                              VersionId=ids[1])
        failure = failure_of(lambda: self.s3.get_object(
            Bucket=VERSIONED, Key="v/promote"))
        self.assertEqual((failure.status, failure.code), (404, "NoSuchKey"))
        self.assertNotIn("x-amz-delete-marker", failure.headers)
        self.assertEqual(versions_of(VERSIONED, "v/promote"), [])
        # Deleting an id that is not there is a no-op, as in S3.
        again = self.s3.delete_object(Bucket=VERSIONED, Key="v/promote",
                                      VersionId=ids[1])
        self.assertEqual(again["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertEqual(error_of(lambda: self.s3.delete_object(
            Bucket=VERSIONED, Key="v/promote", VersionId="bad id")),
            (400, "InvalidArgument"))

    def test_delete_objects_with_version_ids(self):
        a1, a2 = self.put("v/bulk/a", b"1"), self.put("v/bulk/a", b"2")
        self.put("v/bulk/b", b"b")
        result = self.s3.delete_objects(Bucket=VERSIONED, Delete={"Objects": [
            {"Key": "v/bulk/a", "VersionId": a2},
            {"Key": "v/bulk/b"},
            {"Key": "v/bulk/c", "VersionId": "malformed"}]})
        deleted = {d["Key"]: d for d in result["Deleted"]}
        self.assertEqual(deleted["v/bulk/a"]["VersionId"], a2)
        self.assertNotIn("DeleteMarker", deleted["v/bulk/a"])
        self.assertTrue(deleted["v/bulk/b"]["DeleteMarker"])
        marker = deleted["v/bulk/b"]["DeleteMarkerVersionId"]
        self.assertEqual([(e["Key"], e["Code"]) for e in result["Errors"]],
                         [("v/bulk/c", "InvalidArgument")])
        self.assertEqual(self.body("v/bulk/a"), (b"1", a1))
        result = self.s3.delete_objects(Bucket=VERSIONED, Delete={"Objects": [
            {"Key": "v/bulk/b", "VersionId": marker}]})
        self.assertEqual(result["Deleted"][0]["DeleteMarkerVersionId"],
                         marker)
        self.assertEqual(self.body("v/bulk/b")[0], b"b")

    def test_copy_object_from_a_version(self):
        old = self.put("v/copy/src", b"old")
        self.put("v/copy/src", b"new")
        copied = self.s3.copy_object(
            Bucket=VERSIONED, Key="v/copy/dst",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src",
                        "VersionId": old})
        self.assertEqual(copied["CopySourceVersionId"], old)
        self.assertEqual(self.body("v/copy/dst"),
                         (b"old", copied["VersionId"]))
        # Copying an old version onto its own key restores it.
        restored = self.s3.copy_object(
            Bucket=VERSIONED, Key="v/copy/src",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src",
                        "VersionId": old})
        self.assertEqual(self.body("v/copy/src"),
                         (b"old", restored["VersionId"]))
        self.assertEqual(len(versions_of(VERSIONED, "v/copy/src")),
                         3)
        # Latest version copied without a versionId: its id is reported.
        latest = self.s3.copy_object(
            Bucket=BUCKET, Key="v/copy/out",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src"})
        self.assertEqual(latest["CopySourceVersionId"],
                         restored["VersionId"])
        self.assertNotIn("VersionId", latest)  # BUCKET is not versioned
        marker = self.s3.delete_object(Bucket=VERSIONED,
                                       Key="v/copy/src")["VersionId"]
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="v/copy/out",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src"})),
            (404, "NoSuchKey"))
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="v/copy/out",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src",
                        "VersionId": marker})), (400, "InvalidRequest"))
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="v/copy/out",
            CopySource={"Bucket": VERSIONED, "Key": "v/copy/src",
                        "VersionId": "B" * 32})), (404, "NoSuchVersion"))

    def test_if_none_match_sees_a_delete_marker_as_absent(self):
        self.put("v/cond", b"1")
        with with_header(self.s3, "PutObject", "If-None-Match", "*"):
            self.assertEqual(error_of(lambda: self.put("v/cond", b"2")),
                             (412, "PreconditionFailed"))
            self.s3.delete_object(Bucket=VERSIONED, Key="v/cond")
            third = self.put("v/cond", b"3")
        self.assertEqual(self.body("v/cond"), (b"3", third))
        with with_header(self.s3, "PutObject", "If-Match", '"nope"'):
            self.s3.delete_object(Bucket=VERSIONED, Key="v/cond")
            self.assertEqual(error_of(lambda: self.put("v/cond", b"4")),
                             (404, "NoSuchKey"))

    def test_multipart_upload_makes_a_version(self):
        before = self.put("v/mp", b"before")
        upload_id = self.s3.create_multipart_upload(
            Bucket=VERSIONED, Key="v/mp")["UploadId"]
        etag = self.s3.upload_part(Bucket=VERSIONED, Key="v/mp",
                                   UploadId=upload_id, PartNumber=1,
                                   Body=b"after")["ETag"]
        done = self.s3.complete_multipart_upload(
            Bucket=VERSIONED, Key="v/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        self.assertNotEqual(done["VersionId"], before)
        self.assertEqual(self.body("v/mp"), (b"after", done["VersionId"]))
        self.assertEqual(self.body("v/mp", before), (b"before", before))

    def test_list_object_versions_pages(self):
        expected = []
        for key in ("v/page/a", "v/page/b/x", "v/page/c"):
            ids = [self.put(key, b"d") for _ in range(2)]
            expected += [(key, i) for i in reversed(ids)]
        marker = self.s3.delete_object(Bucket=VERSIONED,
                                       Key="v/page/c")["VersionId"]
        expected.insert(4, ("v/page/c", marker))
        seen, markers = [], []
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=VERSIONED, Prefix="v/page/",
                                       PaginationConfig={"PageSize": 2}):
            self.assertLessEqual(len(page.get("Versions", [])) +
                                 len(page.get("DeleteMarkers", [])), 2)
            seen += [(v["Key"], v["VersionId"])
                     for v in page.get("Versions", [])]
            markers += [(m["Key"], m["VersionId"])
                        for m in page.get("DeleteMarkers", [])]
        self.assertEqual(markers, [("v/page/c", marker)])
        self.assertEqual(sorted(seen + markers), sorted(expected))
        self.assertEqual([k for k, _ in seen + markers if k == "v/page/a"],
                         ["v/page/a"] * 2)
        grouped = self.s3.list_object_versions(
            Bucket=VERSIONED, Prefix="v/page/", Delimiter="/")
        self.assertEqual([p["Prefix"] for p in grouped["CommonPrefixes"]],
                         ["v/page/b/"])
        self.assertEqual({v["Key"] for v in grouped["Versions"]},
                         {"v/page/a", "v/page/c"})
        self.assertEqual(error_of(lambda: self.s3.list_object_versions(
            Bucket=VERSIONED, VersionIdMarker=marker)),
            (400, "InvalidArgument"))
        one = self.s3.list_object_versions(Bucket=VERSIONED,
                                           Prefix="v/page/", MaxKeys=1)
        self.assertTrue(one["IsTruncated"])
        self.assertEqual((one["NextKeyMarker"], one["NextVersionIdMarker"]),
                         expected[0])

    def test_suspended_bucket_writes_null_versions(self):
        bucket = "suspended-bucket"
        self.s3.create_bucket(Bucket=bucket)
        self.s3.put_object(Bucket=bucket, Key="s", Body=b"pre")
        enable_versioning(self.s3, bucket)
        kept = self.s3.put_object(Bucket=bucket, Key="s",
                                  Body=b"kept")["VersionId"]
        enable_versioning(self.s3, bucket, "Suspended")
        put = self.s3.put_object(Bucket=bucket, Key="s", Body=b"null 1")
        self.assertNotIn("VersionId", put)  # S3 announces no "null" id
        self.assertEqual(self.body("s", bucket=bucket), (b"null 1", "null"))
        # The null version written before versioning was replaced.
        self.assertEqual(versions_of(bucket, "s"),
                         [("null", False, True), (kept, False, False)])
        self.s3.put_object(Bucket=bucket, Key="s", Body=b"null 2")
        self.assertEqual(self.body("s", "null", bucket), (b"null 2", "null"))
        self.assertEqual(len(versions_of(bucket, "s")), 2)
        deleted = self.s3.delete_object(Bucket=bucket, Key="s")
        self.assertEqual((deleted["DeleteMarker"], deleted["VersionId"]),
                         (True, "null"))
        self.assertEqual(versions_of(bucket, "s"),
                         [("null", True, True), (kept, False, False)])
        self.s3.delete_object(Bucket=bucket, Key="s", VersionId="null")
        self.assertEqual(self.body("s", bucket=bucket), (b"kept", kept))

    def test_unversioned_bucket_is_unchanged(self):
        put = self.s3.put_object(Bucket=BUCKET, Key="v/plain", Body=b"p")
        self.assertNotIn("x-amz-version-id", headers_of(put))
        got = self.s3.get_object(Bucket=BUCKET, Key="v/plain",
                                 VersionId="null")
        self.assertEqual(got["Body"].read(), b"p")
        self.assertNotIn("x-amz-version-id", headers_of(got))
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="v/plain", VersionId="C" * 32)),
            (400, "InvalidArgument"))
        listed = self.s3.list_object_versions(Bucket=BUCKET,
                                              Prefix="v/plain")
        self.assertEqual([(v["VersionId"], v["IsLatest"])
                          for v in listed["Versions"]], [("null", True)])
        deleted = self.s3.delete_object(Bucket=BUCKET, Key="v/plain",
                                        VersionId="null")
        self.assertNotIn("x-amz-version-id", headers_of(deleted))
        self.assertNotIn("x-amz-delete-marker", headers_of(deleted))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="v/plain")), (404, "404"))
        self.assertNotIn("DeleteMarkers", self.s3.list_object_versions(
            Bucket=BUCKET, Prefix="v/plain"))

    def test_concurrent_puts_make_distinct_versions(self):
        clients = [client() for _ in range(8)]
        written = {}

        def put(n):
            response = clients[n].put_object(Bucket=VERSIONED, Key="v/race",
                                             Body=b"writer %d" % n)
            written[response["VersionId"]] = b"writer %d" % n
        threads = [threading.Thread(target=put, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(len(written), 8)
        listed = self.s3.list_object_versions(Bucket=VERSIONED,
                                              Prefix="v/race")["Versions"]
        self.assertEqual({v["VersionId"] for v in listed}, set(written))
        self.assertEqual([v["IsLatest"] for v in listed],
                         [True] + [False] * 7)
        # Newest first: the last write to take the key's lock is current.
        stamps = [v["LastModified"] for v in listed]
        self.assertEqual(stamps, sorted(stamps, reverse=True))
        body, current = self.body("v/race")
        self.assertEqual(current, listed[0]["VersionId"])
        self.assertEqual(body, written[current])
        for version_id, expected in written.items():
            self.assertEqual(self.body("v/race", version_id)[0], expected)

    def test_bucket_with_versions_is_not_empty(self):
        bucket = "drained-bucket"
        self.s3.create_bucket(Bucket=bucket)
        enable_versioning(self.s3, bucket)
        first = self.s3.put_object(Bucket=bucket, Key="k",
                                   Body=b"k")["VersionId"]
        marker = self.s3.delete_object(Bucket=bucket, Key="k")["VersionId"]
        self.assertEqual(error_of(lambda: self.s3.delete_bucket(
            Bucket=bucket)), (409, "BucketNotEmpty"))
        for version_id in (marker, first):
            self.s3.delete_object(Bucket=bucket, Key="k",
                                  VersionId=version_id)
        self.s3.delete_bucket(Bucket=bucket)
        self.assertEqual(error_of(lambda: self.s3.head_bucket(
            Bucket=bucket))[0], 404)

    def test_sidecar_state_is_not_listed(self):
        self.put("v/hidden", b"h")
        self.put("v/hidden", b"h2")
        keys = [o["Key"] for o in self.s3.list_objects_v2(
            Bucket=VERSIONED)["Contents"]]
        self.assertFalse([k for k in keys if "fixture" in k or "._" in k])
        buckets = [b["Name"] for b in self.s3.list_buckets()["Buckets"]]
        self.assertNotIn("._fixture", buckets)
        sidecar = os.path.join(FIXTURE.dir, "data", VERSIONED, "._fixture")
        self.assertTrue(os.path.isfile(os.path.join(sidecar,
                                                    "bucket.json")))
        self.assertTrue(os.path.isfile(os.path.join(
            sidecar, "keys", "v~", "hidden._v", "index.json")))

    def test_versions_with_odd_keys(self):
        for key in ("v/odd//x", "v/odd/ü 😀+&="):
            first = self.put(key, b"1")
            second = self.put(key, b"2")
            self.assertEqual(self.body(key, first), (b"1", first))
            self.s3.delete_object(Bucket=VERSIONED, Key=key)
            self.assertEqual([v for v, _, _ in versions_of(
                VERSIONED, key)][1:], [second, first])
        keys = {v["Key"] for v in self.s3.list_object_versions(
            Bucket=VERSIONED, Prefix="v/odd/")["Versions"]}
        self.assertEqual(keys, {"v/odd//x", "v/odd/ü 😀+&="})


def sse_c_headers(key, prefix="x-amz-server-side-encryption-customer-"):
    return {prefix + "algorithm": "AES256",
            prefix + "key": base64.b64encode(key).decode(),
            prefix + "key-MD5": base64.b64encode(
                hashlib.md5(key).digest()).decode()}


class EncryptionTests(FixtureTestCase):
    KEY, OTHER_KEY = b"k" * 32, b"o" * 32

    def ssec(self, key=None):
        return {"SSECustomerAlgorithm": "AES256",
                "SSECustomerKey": key or self.KEY}

    def test_sse_s3_and_kms(self):
        put = self.s3.put_object(Bucket=BUCKET, Key="sse/s3", Body=b"s",
                                 ServerSideEncryption="AES256")
        self.assertEqual(put["ServerSideEncryption"], "AES256")
        self.assertNotIn("SSEKMSKeyId", put)
        for call in (self.s3.get_object, self.s3.head_object):
            got = call(Bucket=BUCKET, Key="sse/s3")
            self.assertEqual(got["ServerSideEncryption"], "AES256")
        put = self.s3.put_object(Bucket=BUCKET, Key="sse/kms", Body=b"k",
                                 ServerSideEncryption="aws:kms")
        self.assertRegex(put["SSEKMSKeyId"],
                         r"^arn:aws:kms:us-east-1:000000000000:key/")
        default_key = put["SSEKMSKeyId"]
        arn = "arn:aws:kms:us-east-1:000000000000:key/my-key"
        put = self.s3.put_object(Bucket=BUCKET, Key="sse/kms", Body=b"k",
                                 ServerSideEncryption="aws:kms",
                                 SSEKMSKeyId=arn, BucketKeyEnabled=True)
        self.assertEqual((put["SSEKMSKeyId"], put["BucketKeyEnabled"]),
                         (arn, True))
        head = self.s3.head_object(Bucket=BUCKET, Key="sse/kms")
        self.assertEqual((head["ServerSideEncryption"], head["SSEKMSKeyId"],
                          head["BucketKeyEnabled"]), ("aws:kms", arn, True))
        bare = self.s3.put_object(Bucket=BUCKET, Key="sse/kms2", Body=b"k",
                                  ServerSideEncryption="aws:kms",
                                  SSEKMSKeyId="1234abcd-12ab-34cd")
        self.assertEqual(bare["SSEKMSKeyId"], "arn:aws:kms:us-east-1:"
                         "000000000000:key/1234abcd-12ab-34cd")
        self.assertNotEqual(bare["SSEKMSKeyId"], default_key)
        # A plain PUT replaces the object: no encryption headers any more.
        self.s3.put_object(Bucket=BUCKET, Key="sse/kms", Body=b"plain")
        self.assertNotIn("ServerSideEncryption", self.s3.head_object(
            Bucket=BUCKET, Key="sse/kms"))

    def test_sse_refusals(self):
        put = self.s3.put_object
        for args in ({"ServerSideEncryption": "AES128"},
                     {"ServerSideEncryption": "AES256",
                      "SSEKMSKeyId": "some-key"},
                     {"SSEKMSKeyId": "some-key"},
                     {"ServerSideEncryption": "AES256", **self.ssec()}):
            with self.subTest(args=args):
                self.assertEqual(error_of(lambda: put(
                    Bucket=BUCKET, Key="sse/refused", Body=b"r", **args)),
                    (400, "InvalidArgument"))
                self.assertEqual(error_of(lambda: self.s3
                                          .create_multipart_upload(
                                              Bucket=BUCKET,
                                              Key="sse/refused", **args)),
                                 (400, "InvalidArgument"))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="sse/refused")), (404, "404"))
        put(Bucket=BUCKET, Key="sse/readable", Body=b"r")
        with with_header(self.s3, "GetObject",
                         "x-amz-server-side-encryption", "AES256"):
            self.assertEqual(error_of(lambda: self.s3.get_object(
                Bucket=BUCKET, Key="sse/readable")),
                (400, "InvalidArgument"))

    def test_sse_on_multipart_and_copy(self):
        created = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key="sse/mp", ServerSideEncryption="aws:kms")
        upload_id, kms_key = created["UploadId"], created["SSEKMSKeyId"]
        self.assertEqual(created["ServerSideEncryption"], "aws:kms")
        part = self.s3.upload_part(Bucket=BUCKET, Key="sse/mp",
                                   UploadId=upload_id, PartNumber=1,
                                   Body=b"part")
        self.assertEqual((part["ServerSideEncryption"], part["SSEKMSKeyId"]),
                         ("aws:kms", kms_key))
        done = self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key="sse/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1,
                                        "ETag": part["ETag"]}]})
        self.assertEqual((done["ServerSideEncryption"], done["SSEKMSKeyId"]),
                         ("aws:kms", kms_key))
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="sse/mp")[
            "ServerSideEncryption"], "aws:kms")
        # A copy is encrypted only as its own request asks.
        plain = self.s3.copy_object(Bucket=BUCKET, Key="sse/mp-copy",
                                    CopySource={"Bucket": BUCKET,
                                                "Key": "sse/mp"})
        self.assertNotIn("ServerSideEncryption", plain)
        self.assertNotIn("ServerSideEncryption", self.s3.head_object(
            Bucket=BUCKET, Key="sse/mp-copy"))
        encrypted = self.s3.copy_object(
            Bucket=BUCKET, Key="sse/mp-copy", ServerSideEncryption="AES256",
            CopySource={"Bucket": BUCKET, "Key": "sse/mp"})
        self.assertEqual(encrypted["ServerSideEncryption"], "AES256")
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="sse/mp-copy")[
            "ServerSideEncryption"], "AES256")
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="sse/mp-copy", ServerSideEncryption="nope",
            CopySource={"Bucket": BUCKET, "Key": "sse/mp"})),
            (400, "InvalidArgument"))

    def test_sse_c_get_and_head(self):
        put = self.s3.put_object(Bucket=BUCKET, Key="ssec/obj", Body=b"c",
                                 **self.ssec())
        key_md5 = base64.b64encode(hashlib.md5(self.KEY).digest()).decode()
        self.assertEqual((put["SSECustomerAlgorithm"],
                          put["SSECustomerKeyMD5"]), ("AES256", key_md5))
        self.assertNotIn("ServerSideEncryption", put)
        for call in (self.s3.get_object, self.s3.head_object):
            got = call(Bucket=BUCKET, Key="ssec/obj", **self.ssec())
            self.assertEqual((got["SSECustomerAlgorithm"],
                              got["SSECustomerKeyMD5"]), ("AES256", key_md5))
        self.assertEqual(self.s3.get_object(
            Bucket=BUCKET, Key="ssec/obj", **self.ssec())["Body"].read(),
            b"c")
        failure = failure_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="ssec/obj"))
        self.assertEqual((failure.status, failure.code, failure.message), (
            400, "InvalidRequest", "The object was stored using a form of "
            "Server Side Encryption. The correct parameters must be provided "
            "to retrieve the object."))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="ssec/obj")), (400, "400"))
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="ssec/obj", **self.ssec(self.OTHER_KEY))),
            (403, "AccessDenied"))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="ssec/obj", **self.ssec(self.OTHER_KEY))),
            (403, "403"))
        # SSE-C parameters for an object stored without them.
        self.s3.put_object(Bucket=BUCKET, Key="ssec/plain", Body=b"p")
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="ssec/plain", **self.ssec())),
            (400, "InvalidRequest"))
        # Only the key's MD5 is kept on disk, never the key.
        for root, _, files in os.walk(os.path.join(FIXTURE.dir, "data")):
            for name in files:
                with open(os.path.join(root, name), "rb") as handle:
                    data = handle.read()
                self.assertNotIn(base64.b64encode(self.KEY), data, name)
                self.assertNotIn(self.KEY, data, name)

    def test_sse_c_refusals(self):
        def put_with(headers):
            status, _, body = raw_request("PUT", f"/{BUCKET}/ssec/bad",
                                          body=b"b", headers=headers)
            return status, error_code(body) if status != 200 else None
        good = sse_c_headers(self.KEY)
        wrong_md5 = dict(good)
        wrong_md5["x-amz-server-side-encryption-customer-key-MD5"] = \
            base64.b64encode(hashlib.md5(b"x").digest()).decode()
        self.assertEqual(put_with(wrong_md5), (400, "InvalidArgument"))
        self.assertEqual(put_with(sse_c_headers(b"short" * 3)),
                         (400, "InvalidArgument"))
        no_md5 = dict(good)
        del no_md5["x-amz-server-side-encryption-customer-key-MD5"]
        self.assertEqual(put_with(no_md5), (400, "InvalidArgument"))
        bad_algorithm = dict(good)
        bad_algorithm["x-amz-server-side-encryption-customer-algorithm"] = \
            "AES128"
        self.assertEqual(put_with(bad_algorithm),
                         (400, "InvalidEncryptionAlgorithmError"))
        self.assertEqual(put_with(dict(good, **{
            "x-amz-server-side-encryption": "aws:kms"})),
            (400, "InvalidArgument"))
        self.assertEqual(put_with(good), (200, None))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="ssec/bad")), (400, "400"))

    def test_sse_c_multipart(self):
        created = self.s3.create_multipart_upload(Bucket=BUCKET,
                                                  Key="ssec/mp",
                                                  **self.ssec())
        upload_id = created["UploadId"]
        self.assertEqual(created["SSECustomerAlgorithm"], "AES256")

        def part(**extra):
            return self.s3.upload_part(Bucket=BUCKET, Key="ssec/mp",
                                       UploadId=upload_id, PartNumber=1,
                                       Body=b"mp", **extra)
        self.assertEqual(error_of(part), (400, "InvalidRequest"))
        self.assertEqual(error_of(lambda: part(**self.ssec(self.OTHER_KEY))),
                         (400, "InvalidArgument"))
        uploaded = part(**self.ssec())
        self.assertEqual(uploaded["SSECustomerKeyMD5"],
                         created["SSECustomerKeyMD5"])
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key="ssec/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1,
                                        "ETag": uploaded["ETag"]}]})
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="ssec/mp")), (400, "InvalidRequest"))
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="ssec/mp",
                                            **self.ssec())["Body"].read(),
                         b"mp")
        # Parts of an upload created without SSE-C may not carry a key.
        plain = self.s3.create_multipart_upload(Bucket=BUCKET,
                                                Key="ssec/mp2")["UploadId"]
        self.assertEqual(error_of(lambda: self.s3.upload_part(
            Bucket=BUCKET, Key="ssec/mp2", UploadId=plain, PartNumber=1,
            Body=b"x", **self.ssec())), (400, "InvalidArgument"))
        self.s3.abort_multipart_upload(Bucket=BUCKET, Key="ssec/mp2",
                                       UploadId=plain)

    def test_sse_c_copy(self):
        self.s3.put_object(Bucket=BUCKET, Key="ssec/src", Body=b"src",
                           **self.ssec())

        def copy(**extra):
            return self.s3.copy_object(
                Bucket=BUCKET, Key="ssec/dst",
                CopySource={"Bucket": BUCKET, "Key": "ssec/src"}, **extra)
        self.assertEqual(error_of(copy), (400, "InvalidRequest"))
        self.assertEqual(error_of(lambda: copy(
            CopySourceSSECustomerAlgorithm="AES256",
            CopySourceSSECustomerKey=self.OTHER_KEY)), (403, "AccessDenied"))
        source_key = {"CopySourceSSECustomerAlgorithm": "AES256",
                      "CopySourceSSECustomerKey": self.KEY}
        self.assertEqual(error_of(lambda: copy(
            ServerSideEncryption="AES256", **source_key,
            **self.ssec(self.OTHER_KEY))), (400, "InvalidArgument"))
        copy(**source_key)
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="ssec/dst")[
            "Body"].read(), b"src")
        # The target may be encrypted with a key of its own.
        copied = copy(**source_key, **self.ssec(self.OTHER_KEY))
        self.assertEqual(copied["SSECustomerKeyMD5"], base64.b64encode(
            hashlib.md5(self.OTHER_KEY).digest()).decode())
        self.assertEqual(error_of(lambda: self.s3.get_object(
            Bucket=BUCKET, Key="ssec/dst", **self.ssec())),
            (403, "AccessDenied"))
        self.assertEqual(self.s3.get_object(
            Bucket=BUCKET, Key="ssec/dst",
            **self.ssec(self.OTHER_KEY))["Body"].read(), b"src")
        # Copy-source SSE-C parameters for a source stored without them.
        self.s3.put_object(Bucket=BUCKET, Key="ssec/plain-src", Body=b"p")
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="ssec/dst", **source_key,
            CopySource={"Bucket": BUCKET, "Key": "ssec/plain-src"})),
            (400, "InvalidRequest"))

    def curl(self, url, headers=()):
        command = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}"]
        for name, value in headers:
            command += ["-H", f"{name}: {value}"]
        result = subprocess.run(command + [url], capture_output=True,
                                timeout=30, check=True)
        body, _, status = result.stdout.rpartition(b"\n")
        return int(status), body

    def test_sse_c_presigned_get_with_curl(self):
        self.s3.put_object(Bucket=BUCKET, Key="ssec/presigned",
                           Body=b"presigned secret", **self.ssec())
        signed = self.s3.generate_presigned_url("get_object", Params={
            "Bucket": BUCKET, "Key": "ssec/presigned", **self.ssec()},
            ExpiresIn=300)
        self.assertIn("x-amz-server-side-encryption-customer-key",
                      urllib.parse.unquote(signed))  # in SignedHeaders
        headers = list(sse_c_headers(self.KEY).items())
        self.assertEqual(self.curl(signed, headers),
                         (200, b"presigned secret"))
        # The signature covers the key: without the headers it fails.
        status, body = self.curl(signed)
        self.assertEqual((status, error_code(body)),
                         (403, "SignatureDoesNotMatch"))
        unsigned = self.s3.generate_presigned_url("get_object", Params={
            "Bucket": BUCKET, "Key": "ssec/presigned"}, ExpiresIn=300)
        status, body = self.curl(unsigned)
        self.assertEqual((status, error_code(body)), (400, "InvalidRequest"))
        # x-amz-* headers the URL does not sign are refused.
        status, body = self.curl(unsigned, headers)
        self.assertEqual((status, error_code(body)), (403, "AccessDenied"))


def tag_set(tags):
    return {"TagSet": [{"Key": k, "Value": v} for k, v in tags]}


class TaggingTests(FixtureTestCase):
    @classmethod
    def setUpClass(cls):
        enable_versioning(client(), VERSIONED)

    def tags(self, key, bucket=BUCKET, **extra):
        got = self.s3.get_object_tagging(Bucket=bucket, Key=key, **extra)
        return [(t["Key"], t["Value"]) for t in got["TagSet"]]

    def test_tagging_header_and_tag_count(self):
        self.s3.put_object(Bucket=BUCKET, Key="tag/put", Body=b"t",
                           Tagging="project=so&owner=two%20words&empty=")
        self.assertEqual(self.tags("tag/put"), [
            ("project", "so"), ("owner", "two words"), ("empty", "")])
        got = self.s3.get_object(Bucket=BUCKET, Key="tag/put")
        self.assertEqual(got["TagCount"], 3)
        head = self.s3.head_object(Bucket=BUCKET, Key="tag/put")
        self.assertEqual(headers_of(head)["x-amz-tagging-count"], "3")
        # A new PUT replaces the tags with its own (none here).
        self.s3.put_object(Bucket=BUCKET, Key="tag/put", Body=b"t2")
        self.assertEqual(self.tags("tag/put"), [])
        self.assertNotIn("TagCount", self.s3.get_object(Bucket=BUCKET,
                                                        Key="tag/put"))

    def test_put_and_delete_object_tagging(self):
        self.s3.put_object(Bucket=BUCKET, Key="tag/ops", Body=b"t",
                           Tagging="a=1")
        put = self.s3.put_object_tagging(
            Bucket=BUCKET, Key="tag/ops",
            Tagging=tag_set([("b", "2"), ("ü", "日本 語")]))
        self.assertEqual(put["ResponseMetadata"]["HTTPStatusCode"], 200)
        self.assertNotIn("VersionId", put)
        self.assertEqual(self.tags("tag/ops"), [("b", "2"), ("ü", "日本 語")])
        deleted = self.s3.delete_object_tagging(Bucket=BUCKET, Key="tag/ops")
        self.assertEqual(deleted["ResponseMetadata"]["HTTPStatusCode"], 204)
        self.assertEqual(self.tags("tag/ops"), [])
        self.assertNotIn("x-amz-tagging-count", headers_of(
            self.s3.head_object(Bucket=BUCKET, Key="tag/ops")))
        self.assertEqual(error_of(lambda: self.s3.get_object_tagging(
            Bucket=BUCKET, Key="tag/none")), (404, "NoSuchKey"))
        self.assertEqual(error_of(lambda: self.s3.put_object_tagging(
            Bucket=BUCKET, Key="tag/none", Tagging=tag_set([("a", "b")]))),
            (404, "NoSuchKey"))
        body = b"<Tagging><TagSet/></Tagging>"
        status, _, reply = raw_request("PUT", f"/{BUCKET}/tag/ops?tagging",
                                       body=body)
        self.assertEqual((status, error_code(reply)), (400, "InvalidRequest"))

    def test_tags_belong_to_versions(self):
        first = self.s3.put_object(Bucket=VERSIONED, Key="tag/v", Body=b"1",
                                   Tagging="gen=1")["VersionId"]
        second = self.s3.put_object(Bucket=VERSIONED, Key="tag/v", Body=b"2",
                                    Tagging="gen=2")["VersionId"]
        self.assertEqual(self.tags("tag/v", VERSIONED), [("gen", "2")])
        self.assertEqual(self.tags("tag/v", VERSIONED, VersionId=first),
                         [("gen", "1")])
        put = self.s3.put_object_tagging(Bucket=VERSIONED, Key="tag/v",
                                         VersionId=first,
                                         Tagging=tag_set([("gen", "one")]))
        self.assertEqual(put["VersionId"], first)
        self.assertEqual(self.tags("tag/v", VERSIONED), [("gen", "2")])
        got = self.s3.get_object_tagging(Bucket=VERSIONED, Key="tag/v")
        self.assertEqual(got["VersionId"], second)
        deleted = self.s3.delete_object_tagging(Bucket=VERSIONED,
                                                Key="tag/v",
                                                VersionId=second)
        self.assertEqual(deleted["VersionId"], second)
        self.assertEqual(self.tags("tag/v", VERSIONED, VersionId=first),
                         [("gen", "one")])
        self.assertEqual(self.s3.get_object(Bucket=VERSIONED, Key="tag/v",
                                            VersionId=first)["TagCount"], 1)
        marker = self.s3.delete_object(Bucket=VERSIONED,
                                       Key="tag/v")["VersionId"]
        self.assertEqual(error_of(lambda: self.tags(
            "tag/v", VERSIONED, VersionId=marker)), (405, "MethodNotAllowed"))
        self.assertEqual(error_of(lambda: self.tags("tag/v", VERSIONED)),
                         (404, "NoSuchKey"))

    def test_copy_tagging_directive(self):
        self.s3.put_object(Bucket=BUCKET, Key="tag/src", Body=b"s",
                           Tagging="from=source")
        source = {"Bucket": BUCKET, "Key": "tag/src"}
        self.s3.copy_object(Bucket=BUCKET, Key="tag/copy", CopySource=source)
        self.assertEqual(self.tags("tag/copy"), [("from", "source")])
        self.s3.copy_object(Bucket=BUCKET, Key="tag/copy", CopySource=source,
                            TaggingDirective="REPLACE", Tagging="new=tag")
        self.assertEqual(self.tags("tag/copy"), [("new", "tag")])
        self.s3.copy_object(Bucket=BUCKET, Key="tag/copy", CopySource=source,
                            TaggingDirective="REPLACE")
        self.assertEqual(self.tags("tag/copy"), [])
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="tag/copy", CopySource=source,
            TaggingDirective="MERGE")), (400, "InvalidArgument"))
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="tag/copy", CopySource=source,
            MetadataDirective="MERGE")), (400, "InvalidArgument"))

    def test_multipart_tags(self):
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key="tag/mp", Tagging="mp=yes")["UploadId"]
        etag = self.s3.upload_part(Bucket=BUCKET, Key="tag/mp",
                                   UploadId=upload_id, PartNumber=1,
                                   Body=b"m")["ETag"]
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key="tag/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        self.assertEqual(self.tags("tag/mp"), [("mp", "yes")])

    def test_tag_limits(self):
        def put(tagging):
            return self.s3.put_object(Bucket=BUCKET, Key="tag/limits",
                                      Body=b"l", Tagging=tagging)

        def put_tagging(tags):
            return self.s3.put_object_tagging(Bucket=BUCKET, Key="tag/limits",
                                              Tagging=tag_set(tags))
        ten = [(f"k{n}", "v") for n in range(10)]
        put("&".join(f"{k}={v}" for k, v in ten))
        put("k=" + "v" * 256 + "&" + "k" * 128 + "=v")
        # Lengths count UTF-16 code units: U+1D400 (a letter) counts two.
        put("wide=" + quote("𝐀" * 128))
        # "=" is a tag character: encoded, it may be inside a value.
        put("eq=" + quote("a=b", safe=""))
        self.assertEqual(self.tags("tag/limits"), [("eq", "a=b")])
        put("wide=" + quote("𝐀" * 128))
        refused = {
            "&".join(f"k{n}=v" for n in range(11)): "BadRequest",
            "k" * 129 + "=v": "InvalidTag",
            "k=" + "v" * 257: "InvalidTag",
            "wide=" + quote("𝐀" * 129): "InvalidTag",
            "emoji=" + quote("😀"): "InvalidTag",  # a symbol, not a letter
            "a=1&a=2": "InvalidTag",
            "aws:reserved=1": "InvalidTag",
            "=empty": "InvalidTag",
            "bad%5Bchar=1": "InvalidTag",
            "a=b=c": "InvalidArgument"}
        for tagging, code in refused.items():
            with self.subTest(tagging=tagging[:40]):
                self.assertEqual(error_of(lambda: put(tagging)), (400, code))
        self.assertEqual(self.tags("tag/limits")[0][0], "wide")
        self.assertEqual(error_of(lambda: put_tagging(
            ten + [("k10", "v")])), (400, "BadRequest"))
        self.assertEqual(error_of(lambda: put_tagging(
            [("a", "1"), ("a", "2")])), (400, "InvalidTag"))
        self.assertEqual(error_of(lambda: put_tagging([("k" * 129, "v")])),
                         (400, "InvalidTag"))
        self.assertEqual(error_of(lambda: put_tagging([("k", "v" * 257)])),
                         (400, "InvalidTag"))
        self.assertEqual(error_of(lambda: self.s3.create_multipart_upload(
            Bucket=BUCKET, Key="tag/limits", Tagging="a=1&a=2")),
            (400, "InvalidTag"))


ALL_CLASSES = ["STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
               "INTELLIGENT_TIERING", "GLACIER", "DEEP_ARCHIVE", "GLACIER_IR",
               "OUTPOSTS", "SNOW", "EXPRESS_ONEZONE"]


class StorageClassTests(FixtureTestCase):
    def put_raw(self, key, storage_class):
        # botocore 1.29 validates StorageClass against an older list.
        status, _, body = raw_request(
            "PUT", f"/{BUCKET}/{key}", body=b"c",
            headers={"x-amz-storage-class": storage_class})
        return status, error_code(body) if status != 200 else None

    def test_every_storage_class(self):
        for storage_class in ALL_CLASSES:
            key = f"class/{storage_class}"
            self.assertEqual(self.put_raw(key, storage_class), (200, None))
            head = self.s3.head_object(Bucket=BUCKET, Key=key)
            # S3 leaves the header out for STANDARD.
            self.assertEqual(head.get("StorageClass"),
                             None if storage_class == "STANDARD"
                             else storage_class)
        for listing in (self.s3.list_objects_v2, self.s3.list_objects):
            listed = listing(Bucket=BUCKET, Prefix="class/")["Contents"]
            self.assertEqual({o["Key"][len("class/"):]: o["StorageClass"]
                              for o in listed},
                             {c: c for c in ALL_CLASSES})
        versions = self.s3.list_object_versions(Bucket=BUCKET,
                                                Prefix="class/")["Versions"]
        self.assertEqual({v["StorageClass"] for v in versions},
                         set(ALL_CLASSES))

    def test_invalid_storage_class(self):
        self.assertEqual(self.put_raw("class/bad", "FAST"),
                         (400, "InvalidStorageClass"))
        self.assertEqual(self.put_raw("class/bad", "standard"),
                         (400, "InvalidStorageClass"))
        status, _, body = raw_request(
            "POST", f"/{BUCKET}/class/bad?uploads",
            headers={"x-amz-storage-class": "FAST"})
        self.assertEqual((status, error_code(body)),
                         (400, "InvalidStorageClass"))
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=BUCKET, Key="class/bad")), (404, "404"))

    def test_archived_classes_refuse_get(self):
        for storage_class in ("GLACIER", "DEEP_ARCHIVE"):
            key = f"archived/{storage_class}"
            self.s3.put_object(Bucket=BUCKET, Key=key, Body=b"cold",
                               StorageClass=storage_class)
            failure = failure_of(lambda: self.s3.get_object(Bucket=BUCKET,
                                                            Key=key))
            self.assertEqual((failure.status, failure.code),
                             (403, "InvalidObjectState"))
            head = self.s3.head_object(Bucket=BUCKET, Key=key)
            self.assertEqual((head["StorageClass"], head["ContentLength"]),
                             (storage_class, 4))
            self.assertEqual(error_of(lambda: self.s3.copy_object(
                Bucket=BUCKET, Key="archived/copy",
                CopySource={"Bucket": BUCKET, "Key": key})),
                (403, "InvalidObjectState"))
        # GLACIER_IR is instant retrieval.
        self.s3.put_object(Bucket=BUCKET, Key="archived/ir", Body=b"warm",
                           StorageClass="GLACIER_IR")
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="archived/ir")[
            "Body"].read(), b"warm")

    def test_storage_class_of_uploads_and_copies(self):
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key="class/mp",
            StorageClass="STANDARD_IA")["UploadId"]
        uploads = self.s3.list_multipart_uploads(Bucket=BUCKET,
                                                 Prefix="class/mp")
        self.assertEqual(uploads["Uploads"][0]["StorageClass"],
                         "STANDARD_IA")
        etag = self.s3.upload_part(Bucket=BUCKET, Key="class/mp",
                                   UploadId=upload_id, PartNumber=1,
                                   Body=b"mp")["ETag"]
        self.assertEqual(self.s3.list_parts(
            Bucket=BUCKET, Key="class/mp",
            UploadId=upload_id)["StorageClass"], "STANDARD_IA")
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key="class/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="class/mp")[
            "StorageClass"], "STANDARD_IA")
        source = {"Bucket": BUCKET, "Key": "class/mp"}
        self.s3.copy_object(Bucket=BUCKET, Key="class/copy",
                            CopySource=source)
        self.assertNotIn("StorageClass", self.s3.head_object(
            Bucket=BUCKET, Key="class/copy"))  # copies default to STANDARD
        self.s3.copy_object(Bucket=BUCKET, Key="class/copy",
                            CopySource=source, StorageClass="ONEZONE_IA")
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="class/copy")[
            "StorageClass"], "ONEZONE_IA")
        # Copying onto itself is allowed only when something changes.
        itself = {"Bucket": BUCKET, "Key": "class/copy"}
        self.assertEqual(error_of(lambda: self.s3.copy_object(
            Bucket=BUCKET, Key="class/copy", CopySource=itself)),
            (400, "InvalidRequest"))
        self.s3.copy_object(Bucket=BUCKET, Key="class/copy",
                            CopySource=itself, StorageClass="STANDARD")
        self.assertNotIn("StorageClass", self.s3.head_object(
            Bucket=BUCKET, Key="class/copy"))
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="class/copy")[
            "Body"].read(), b"mp")


class StandardHeaderTests(FixtureTestCase):
    EXPIRES = datetime.datetime(2031, 1, 2, 3, 4, 5,
                                tzinfo=datetime.timezone.utc)
    HEADERS = {"CacheControl": "max-age=60", "ContentDisposition":
               'attachment; filename="f.txt.gz"', "ContentEncoding": "gzip",
               "ContentLanguage": "de-CH", "ContentType": "text/plain"}

    def check(self, response, expected=None):
        expected = expected or self.HEADERS
        for name, value in expected.items():
            self.assertEqual(response.get(name), value, name)
        if "ContentEncoding" in expected:
            self.assertEqual(response["Expires"], self.EXPIRES)

    def test_put_and_multipart_keep_standard_headers(self):
        body = gzip.compress(b"compressed " * 50)
        self.s3.put_object(Bucket=BUCKET, Key="std/put", Body=body,
                           Expires=self.EXPIRES, **self.HEADERS)
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key="std/mp", Expires=self.EXPIRES,
            **self.HEADERS)["UploadId"]
        etag = self.s3.upload_part(Bucket=BUCKET, Key="std/mp",
                                   UploadId=upload_id, PartNumber=1,
                                   Body=body)["ETag"]
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key="std/mp", UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
        for key in ("std/put", "std/mp"):
            got = self.s3.get_object(Bucket=BUCKET, Key=key)
            self.check(got)
            self.assertEqual(got["Body"].read(), body)  # still gzip
            self.check(self.s3.head_object(Bucket=BUCKET, Key=key))
        # Nothing decodes the body on the way, even for a raw client.
        status, headers, raw = raw_request(
            "GET", f"/{BUCKET}/std/put", headers={"Accept-Encoding": "gzip"})
        self.assertEqual((status, headers["Content-Encoding"], raw),
                         (200, "gzip", body))

    def test_copy_metadata_directive(self):
        self.s3.put_object(Bucket=BUCKET, Key="std/src", Body=b"s",
                           Expires=self.EXPIRES, Metadata={"m": "1"},
                           **self.HEADERS)
        source = {"Bucket": BUCKET, "Key": "std/src"}
        self.s3.copy_object(Bucket=BUCKET, Key="std/copy", CopySource=source)
        copied = self.s3.head_object(Bucket=BUCKET, Key="std/copy")
        self.check(copied)
        self.assertEqual(copied["Metadata"], {"m": "1"})
        self.s3.copy_object(Bucket=BUCKET, Key="std/copy", CopySource=source,
                            MetadataDirective="REPLACE",
                            CacheControl="no-cache", ContentLanguage="fr",
                            Metadata={"n": "2"})
        replaced = self.s3.head_object(Bucket=BUCKET, Key="std/copy")
        self.check(replaced, {"CacheControl": "no-cache",
                              "ContentLanguage": "fr",
                              "ContentType": "binary/octet-stream"})
        for name in ("ContentDisposition", "ContentEncoding", "Expires"):
            self.assertNotIn(name, replaced)
        self.assertEqual(replaced["Metadata"], {"n": "2"})
        # REPLACE makes copying an object onto itself legal.
        self.s3.copy_object(Bucket=BUCKET, Key="std/src",
                            CopySource=source, MetadataDirective="REPLACE",
                            ContentLanguage="it")
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="std/src")[
            "ContentLanguage"], "it")

    def test_old_versions_keep_their_headers(self):
        enable_versioning(self.s3, VERSIONED)
        body = gzip.compress(b"first")
        first = self.s3.put_object(Bucket=VERSIONED, Key="std/v", Body=body,
                                   Expires=self.EXPIRES,
                                   **self.HEADERS)["VersionId"]
        self.s3.put_object(Bucket=VERSIONED, Key="std/v", Body=b"second",
                           ContentType="text/x-second")
        old = self.s3.get_object(Bucket=VERSIONED, Key="std/v",
                                 VersionId=first)
        self.check(old)
        self.assertEqual(old["Body"].read(), body)
        self.check(self.s3.head_object(Bucket=VERSIONED, Key="std/v",
                                       VersionId=first))
        self.assertEqual(self.s3.head_object(Bucket=VERSIONED, Key="std/v")[
            "ContentType"], "text/x-second")


# -- browser-based uploads (POST Object) ---------------------------------


def multipart_body(fields, file=b"", filename="upload.txt", after_file=()):
    """A multipart/form-data body as a browser builds it: the fields in
    order, then the file part (none if file is None), then parts that S3
    must ignore because they follow the file."""
    boundary = "----FixtureFormBoundary" + os.urandom(8).hex()
    chunks = []

    def part(name, value, file_name=None):
        head = f'--{boundary}\r\nContent-Disposition: form-data; ' \
            f'name="{name}"'
        if file_name is not None:
            head += f'; filename="{file_name}"\r\n' \
                "Content-Type: application/octet-stream"
        data = value if isinstance(value, bytes) else value.encode()
        chunks.append(head.encode() + b"\r\n\r\n" + data + b"\r\n")
    for name, value in (fields.items() if isinstance(fields, dict)
                        else fields):
        part(name, value)
    if file is not None:
        part("file", file, filename)
    for name, value in after_file:
        part(name, value)
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def post_form(fields, file=b"data", bucket=BUCKET, filename="upload.txt",
              after_file=(), headers=None):
    """POST a form to /bucket with http.client: (status, headers, body)."""
    content_type, body = multipart_body(fields, file, filename, after_file)
    return http_call("POST", f"/{bucket}", body,
                     {"Content-Type": content_type, **(headers or {})})


def error_fields(xml_body):
    """The children of an <Error> document, by tag."""
    root = ElementTree.fromstring(xml_body)
    return {child.tag: child.text or "" for child in root}


def sign_policy(policy, key, credentials=(ACCESS_KEY, SECRET_KEY),
                when=None):
    """Form fields for a policy written by hand (a dict, or text that need
    not be JSON), signed with botocore's SigV4 POST signer."""
    when = when or datetime.datetime.utcnow()
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{credentials[0]}/{stamp[:8]}/us-east-1/s3/aws4_request"
    text = policy if isinstance(policy, str) else json.dumps(policy)
    encoded = base64.b64encode(text.encode()).decode()
    signer = botocore.auth.S3SigV4PostAuth(Credentials(*credentials), "s3",
                                           "us-east-1")
    request = AWSRequest(method="POST", url=endpoint())
    request.context["timestamp"] = stamp
    return {"key": key, "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": scope, "x-amz-date": stamp,
            "policy": encoded,
            "x-amz-signature": signer.signature(encoded, request)}


def auth_conditions(fields, bucket=BUCKET):
    """The conditions every policy needs for its own fields."""
    return [{"bucket": bucket}] + [
        {name: fields[name]} for name in
        ("key", "x-amz-algorithm", "x-amz-credential", "x-amz-date")]


class PostObjectTests(FixtureTestCase):
    """POST Object as the S3 API reference documents it, with the policies
    botocore's generate_presigned_post writes."""

    def presign(self, key, fields=None, conditions=None, s3=None, **kwargs):
        return (s3 or self.s3).generate_presigned_post(
            BUCKET if "Bucket" not in kwargs else kwargs.pop("Bucket"), key,
            Fields=fields, Conditions=conditions, **kwargs)

    def refused(self, response, status, code, message=None):
        got_status, _, body = response
        fields = error_fields(body)
        self.assertEqual((got_status, fields["Code"]), (status, code), body)
        if message is not None:
            self.assertEqual(fields["Message"], message)
        return fields

    def absent(self, key, bucket=BUCKET):
        self.assertEqual(error_of(lambda: self.s3.head_object(
            Bucket=bucket, Key=key))[0], 404)

    def test_upload_with_filename_metadata_and_201(self):
        post = self.presign(
            "post/${filename}",
            {"Content-Type": "text/plain", "success_action_status": "201",
             "x-amz-meta-owner": "browser"},
            [["content-length-range", 1, 64],
             ["starts-with", "$Content-Type", "text/"],
             {"success_action_status": "201"},
             ["starts-with", "$x-amz-meta-owner", ""]])
        self.assertEqual(post["url"], f"{endpoint()}/{BUCKET}")
        # What an old browser sends for a file: a Windows path.
        content_type, body = multipart_body(
            post["fields"], b"hello, form", "C:\\Users\\me\\report.txt")
        request = urllib.request.Request(post["url"], data=body, method="POST",
                                         headers={"Content-Type":
                                                  content_type})
        with urllib.request.urlopen(request) as response:
            status, document = response.status, response.read()
            location = response.headers["Location"]
        etag = '"%s"' % hashlib.md5(b"hello, form").hexdigest()
        self.assertEqual(status, 201)
        result = ElementTree.fromstring(document)
        self.assertEqual(result.tag, "PostResponse")
        self.assertEqual({c.tag: c.text for c in result}, {
            "Location": f"{endpoint()}/{BUCKET}/post/report.txt",
            "Bucket": BUCKET, "Key": "post/report.txt", "ETag": etag})
        self.assertEqual(location, f"{endpoint()}/{BUCKET}/post/report.txt")
        got = self.s3.get_object(Bucket=BUCKET, Key="post/report.txt")
        self.assertEqual((got["Body"].read(), got["ContentType"],
                          got["Metadata"], got["ETag"]),
                         (b"hello, form", "text/plain",
                          {"owner": "browser"}, etag))

    def test_success_status_and_redirect(self):
        post = self.presign("post/status")
        status, headers, body = post_form(post["fields"])
        self.assertEqual((status, body), (204, b""))
        self.assertEqual(headers["ETag"], '"%s"' % hashlib.md5(
            b"data").hexdigest())
        post = self.presign("post/status", {"success_action_status": "200"},
                            [{"success_action_status": "200"}])
        status, _, body = post_form(post["fields"])
        self.assertEqual((status, body), (200, b""))
        post = self.presign(
            "post/redirect",
            {"success_action_redirect": "https://app.example/done?step=2"},
            [["starts-with", "$success_action_redirect",
              "https://app.example/"]])
        status, headers, _ = post_form(post["fields"], b"moved")
        self.assertEqual(status, 303)
        target = urllib.parse.urlsplit(headers["Location"])
        self.assertEqual(target.netloc, "app.example")
        self.assertEqual(urllib.parse.parse_qs(target.query), {
            "step": ["2"], "bucket": [BUCKET], "key": ["post/redirect"],
            "etag": ['"%s"' % hashlib.md5(b"moved").hexdigest()]})
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="post/redirect")
                         ["Body"].read(), b"moved")

    def test_key_and_content_type_conditions(self):
        exact = self.presign("post/exact", {"Content-Type": "image/png"},
                             [["eq", "$Content-Type", "image/png"]])
        self.refused(post_form(dict(exact["fields"], key="post/other")),
                     403, "AccessDenied", "Invalid according to Policy: "
                     'Policy Condition failed: ["eq", "$key", "post/exact"]')
        self.refused(post_form(dict(exact["fields"],
                                    **{"Content-Type": "image/gif"})),
                     403, "AccessDenied", "Invalid according to Policy: "
                     "Policy Condition failed: "
                     '["eq", "$Content-Type", "image/png"]')
        self.absent("post/other")
        self.absent("post/exact")
        self.assertEqual(post_form(exact["fields"], b"\x89PNG")[0], 204)
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="post/exact")
                         ["ContentType"], "image/png")
        prefixed = self.presign("post/img/${filename}",
                                {"Content-Type": "image/jpeg"},
                                [["starts-with", "$Content-Type", "image/"]])
        self.refused(post_form(dict(prefixed["fields"],
                                    key="elsewhere/${filename}")),
                     403, "AccessDenied", "Invalid according to Policy: "
                     'Policy Condition failed: ["starts-with", "$key", '
                     '"post/img/"]')
        self.refused(post_form(dict(prefixed["fields"],
                                    **{"Content-Type": "text/html"})),
                     403, "AccessDenied")
        self.assertEqual(post_form(prefixed["fields"], b"jpeg",
                                   filename="cat.jpg")[0], 204)
        self.assertEqual(self.s3.head_object(
            Bucket=BUCKET, Key="post/img/cat.jpg")["ContentType"],
            "image/jpeg")
        # A policy that names the bucket as another one.
        other = self.presign("post/b", Bucket=OTHER_BUCKET)
        self.refused(post_form(other["fields"]), 403, "AccessDenied",
                     "Invalid according to Policy: Policy Condition failed: "
                     f'["eq", "$bucket", "{OTHER_BUCKET}"]')

    def test_content_length_range(self):
        post = self.presign("post/sized", conditions=[
            ["content-length-range", 2, 5]])
        fields = self.refused(post_form(post["fields"], b"123456"), 400,
                              "EntityTooLarge")
        self.assertEqual((fields["ProposedSize"], fields["MaxSizeAllowed"]),
                         ("6", "5"))
        fields = self.refused(post_form(post["fields"], b"1"), 400,
                              "EntityTooSmall")
        self.assertEqual((fields["ProposedSize"], fields["MinSizeAllowed"]),
                         ("1", "2"))
        self.absent("post/sized")
        self.assertEqual(post_form(post["fields"], b"12345")[0], 204)

    def test_signature_and_expiry_refusals(self):
        post = self.presign("post/auth", conditions=[
            ["content-length-range", 0, 10]])
        fields = post["fields"]
        self.refused(post_form(self.presign("post/auth", ExpiresIn=-60)
                               ["fields"]), 403, "AccessDenied",
                     "Invalid according to Policy: Policy expired.")
        past = {"expiration": "2007-12-01T12:00:00.000Z", "conditions": []}
        signed = sign_policy(past, "post/auth")
        past["conditions"] = auth_conditions(signed)
        self.refused(post_form(sign_policy(past, "post/auth")), 403,
                     "AccessDenied",
                     "Invalid according to Policy: Policy expired.")
        # Loosen the size limit without signing again.
        policy = json.loads(base64.b64decode(fields["policy"]))
        policy["conditions"][0] = ["content-length-range", 0, 1000]
        tampered = dict(fields, policy=base64.b64encode(
            json.dumps(policy).encode()).decode())
        self.refused(post_form(tampered, b"x" * 100), 403,
                     "SignatureDoesNotMatch")
        signature = fields["x-amz-signature"]
        wrong = dict(fields, **{"x-amz-signature": signature[:-1] + (
            "0" if signature[-1] != "0" else "1")})
        refusal = self.refused(post_form(wrong), 403, "SignatureDoesNotMatch")
        self.assertEqual(refusal["StringToSign"], fields["policy"])
        bad_secret = self.presign("post/auth", s3=client(
            secret_key="not-the-secret"))
        self.refused(post_form(bad_secret["fields"]), 403,
                     "SignatureDoesNotMatch")
        nobody = self.presign("post/auth", s3=client("nobody", "x"))
        self.refused(post_form(nobody["fields"]), 403, "InvalidAccessKeyId")
        self.absent("post/auth")
        self.assertEqual(post_form(fields)[0], 204)

    def test_form_refusals(self):
        post = self.presign("post/form")
        fields = post["fields"]
        self.refused(post_form(dict(fields, **{"x-amz-meta-extra": "1"})),
                     403, "AccessDenied", "Invalid according to Policy: "
                     "Extra input fields: x-amz-meta-extra")
        refusal = self.refused(post_form(fields, file=None), 400,
                               "InvalidArgument",
                               "POST requires exactly one file upload per "
                               "request.")
        self.assertEqual(refusal["ArgumentName"], "file")
        for missing in ("key", "x-amz-signature", "policy"):
            partial = {k: v for k, v in fields.items() if k != missing}
            refusal = self.refused(post_form(partial), 400, "InvalidArgument")
            self.assertEqual(refusal["ArgumentName"], missing)
        self.refused(post_form({"key": "post/form"}), 403, "AccessDenied",
                     "Access Denied")
        nameless = self.presign("post/${filename}")
        self.refused(post_form(dict(nameless["fields"], key="${filename}"),
                               filename=""), 400, "InvalidArgument",
                     "User key must have a length greater than 0.")
        self.refused(post_form(dict(fields, acl="public-read")), 403,
                     "AccessDenied")  # no condition names acl
        self.absent("post/form")
        # Fields after the file are ignored, x-ignore-* need no condition,
        # field names are case-insensitive.
        renamed = {(k.upper() if k.startswith("x-amz") else k): v
                   for k, v in fields.items()}
        self.assertEqual(post_form(dict(renamed, **{"x-ignore-me": "1"}),
                                   after_file=[("x-amz-meta-late", "1")])[0],
                         204)
        self.assertEqual(self.s3.head_object(Bucket=BUCKET, Key="post/form")
                         ["Metadata"], {})
        status, _, body = http_call("POST", f"/{BUCKET}", b"key=a&file=b",
                                    {"Content-Type": "application/"
                                     "x-www-form-urlencoded"})
        self.assertEqual((status, error_code(body)), (412,
                                                      "PreconditionFailed"))
        status, _, body = http_call("POST", f"/{BUCKET}", b"--nope\r\n",
                                    {"Content-Type": "multipart/form-data; "
                                     "boundary=other"})
        self.assertEqual((status, error_code(body)), (400,
                                                      "MalformedPOSTRequest"))
        big = self.presign("post/big", {"x-amz-meta-big": "b" * 21000},
                           [["starts-with", "$x-amz-meta-big", ""]])
        self.refused(post_form(big["fields"]), 400,
                     "MaxPostPreDataLengthExceeded")

    def test_malformed_policies(self):
        now = datetime.datetime.utcnow()
        later = (now + datetime.timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.000Z")
        for policy in ("not json", {"conditions": []},
                       {"expiration": "tomorrow", "conditions": []},
                       {"expiration": later},
                       {"expiration": later, "conditions": {"a": "b"}},
                       {"expiration": later, "conditions": [
                           ["matches", "$key", "a"]]},
                       {"expiration": later, "conditions": [
                           {"key": "post/x", "acl": "private"}]}):
            with self.subTest(policy=policy):
                self.refused(post_form(sign_policy(policy, "post/x")), 400,
                             "InvalidPolicyDocument")
        fields = sign_policy({}, "post/x")
        fields["policy"] = "%%%"
        self.refused(post_form(fields), 403, "SignatureDoesNotMatch")
        # A policy written by hand, with S3's \\$ escape, is accepted.
        signed = sign_policy({}, "post/$hand")
        conditions = auth_conditions(signed)
        conditions[1] = ["eq", "$key", "post/\\$hand"]
        text = json.dumps({"expiration": later, "conditions": conditions})
        text = text.replace("\\\\$", "\\$")
        self.assertEqual(post_form(sign_policy(text, "post/$hand"))[0], 204)
        self.absent("post/x")

    def test_checksum_sha256(self):
        data = b"checked bytes"
        digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
        post = self.presign("post/sum", {"x-amz-checksum-sha256": digest},
                            [{"x-amz-checksum-sha256": digest}])
        wrong = base64.b64encode(hashlib.sha256(b"x").digest()).decode()
        self.refused(post_form(dict(post["fields"], **{
            "x-amz-checksum-sha256": wrong})), 403, "AccessDenied")
        self.refused(post_form(post["fields"], b"other bytes"), 400,
                     "BadDigest", "The SHA256 you specified did not match "
                     "the calculated checksum.")
        self.absent("post/sum")
        status, headers, _ = post_form(post["fields"], data)
        self.assertEqual((status, headers["x-amz-checksum-sha256"]),
                         (204, digest))
        head = self.s3.head_object(Bucket=BUCKET, Key="post/sum",
                                   ChecksumMode="ENABLED")
        self.assertEqual(head["ChecksumSHA256"], digest)
        self.assertNotIn("ChecksumSHA256", self.s3.head_object(
            Bucket=BUCKET, Key="post/sum"))
        # botocore validates the body against the checksum it is sent.
        got = self.s3.get_object(Bucket=BUCKET, Key="post/sum",
                                 ChecksumMode="ENABLED")
        self.assertEqual((got["Body"].read(), got["ChecksumSHA256"]),
                         (data, digest))
        ranged = self.s3.get_object(Bucket=BUCKET, Key="post/sum",
                                    ChecksumMode="ENABLED", Range="bytes=0-2")
        self.assertNotIn("ChecksumSHA256", ranged)
        # PutObject takes x-amz-checksum-sha256 too; a copy keeps it.
        put = self.s3.put_object(Bucket=BUCKET, Key="post/sum-put", Body=data,
                                 ChecksumAlgorithm="SHA256")
        self.assertEqual(put["ChecksumSHA256"], digest)
        self.assertEqual(error_of(lambda: self.s3.put_object(
            Bucket=BUCKET, Key="post/sum-put", Body=b"y",
            ChecksumSHA256=digest)), (400, "BadDigest"))
        self.assertEqual(error_of(lambda: self.s3.put_object(
            Bucket=BUCKET, Key="post/sum-put", Body=b"y",
            ChecksumAlgorithm="CRC32")), (501, "NotImplemented"))
        self.s3.copy_object(Bucket=BUCKET, Key="post/sum-copy",
                            CopySource={"Bucket": BUCKET, "Key": "post/sum"})
        self.assertEqual(self.s3.head_object(
            Bucket=BUCKET, Key="post/sum-copy",
            ChecksumMode="ENABLED")["ChecksumSHA256"], digest)

    def test_session_token(self):
        temporary = client(TEMP_KEY, TEMP_SECRET, token=TOKEN)
        post = self.presign("post/token", s3=temporary)
        self.assertEqual(post["fields"]["x-amz-security-token"], TOKEN)
        without = {k: v for k, v in post["fields"].items()
                   if k != "x-amz-security-token"}
        self.refused(post_form(without), 400, "MissingSecurityHeader")
        self.refused(post_form(dict(post["fields"], **{
            "x-amz-security-token": "wrong"})), 400, "InvalidToken")
        self.absent("post/token")
        self.assertEqual(post_form(post["fields"], b"temp")[0], 204)
        self.assertEqual(self.s3.get_object(Bucket=BUCKET, Key="post/token")
                         ["Body"].read(), b"temp")

    def test_upload_is_an_ordinary_write(self):
        """Versions, SSE, tags, storage class and ACLs as PutObject."""
        enable_versioning(self.s3, VERSIONED)
        tagging = ("<Tagging><TagSet><Tag><Key>origin</Key><Value>form"
                   "</Value></Tag></TagSet></Tagging>")
        extra = {"x-amz-server-side-encryption": "aws:kms",
                 "x-amz-storage-class": "STANDARD_IA", "tagging": tagging,
                 "acl": "private"}
        post = self.presign("post/versioned", extra,
                            [{k: v} for k, v in extra.items()],
                            Bucket=VERSIONED)
        first_status, first, _ = post_form(post["fields"], b"one",
                                           bucket=VERSIONED)
        second_status, second, _ = post_form(post["fields"], b"two",
                                             bucket=VERSIONED)
        self.assertEqual((first_status, second_status), (204, 204))
        self.assertEqual(first["x-amz-server-side-encryption"], "aws:kms")
        self.assertEqual(versions_of(VERSIONED, "post/versioned"), [
            (second["x-amz-version-id"], False, True),
            (first["x-amz-version-id"], False, False)])
        old = self.s3.get_object(Bucket=VERSIONED, Key="post/versioned",
                                 VersionId=first["x-amz-version-id"])
        self.assertEqual((old["Body"].read(), old["ServerSideEncryption"],
                          old["StorageClass"], old["TagCount"]),
                         (b"one", "aws:kms", "STANDARD_IA", 1))
        self.assertEqual(self.s3.get_object_tagging(
            Bucket=VERSIONED, Key="post/versioned")["TagSet"],
            [{"Key": "origin", "Value": "form"}])
        public = self.presign("post/acl", {"acl": "public-read"},
                              [{"acl": "public-read"}])
        self.refused(post_form(public["fields"]), 400,
                     "AccessControlListNotSupported")
        bad_class = self.presign("post/acl", {"x-amz-storage-class": "COLD"},
                                 [{"x-amz-storage-class": "COLD"}])
        self.refused(post_form(bad_class["fields"]), 400,
                     "InvalidStorageClass")
        self.absent("post/acl")
        stats = control("GET", "stats")[1]
        self.assertGreaterEqual(stats["operations"]["PostObject"], 2)


# -- CORS ------------------------------------------------------------------


CORS_RULES = [
    {"ID": "app", "AllowedOrigins": ["http://app.example",
                                     "https://*.example.org"],
     "AllowedMethods": ["PUT", "POST", "GET"],
     "AllowedHeaders": ["x-amz-*", "Content-Type"],
     "ExposeHeaders": ["ETag", "x-amz-version-id"], "MaxAgeSeconds": 600},
    {"AllowedOrigins": ["*"], "AllowedMethods": ["GET", "HEAD"]},
]


def preflight(path, origin=None, method=None, headers=None):
    """An unsigned OPTIONS request, as a browser sends it."""
    sent = {}
    if origin is not None:
        sent["Origin"] = origin
    if method is not None:
        sent["Access-Control-Request-Method"] = method
    if headers is not None:
        sent["Access-Control-Request-Headers"] = headers
    return http_call("OPTIONS", path, b"", sent)


def cors_of(headers):
    return {k: v for k, v in headers.items()
            if k.lower().startswith("access-control-") or k == "Vary"}


class CorsTests(FixtureTestCase):
    VARY = "Origin, Access-Control-Request-Headers, Access-Control-Request-" \
        "Method"

    def setUp(self):
        super().setUp()
        self.s3.put_bucket_cors(Bucket=OTHER_BUCKET,
                                CORSConfiguration={"CORSRules": CORS_RULES})

    def tearDown(self):
        self.s3.delete_bucket_cors(Bucket=OTHER_BUCKET)
        super().tearDown()

    def test_configuration(self):
        self.assertEqual(self.s3.get_bucket_cors(Bucket=OTHER_BUCKET)
                         ["CORSRules"], CORS_RULES)
        failure = failure_of(lambda: self.s3.get_bucket_cors(Bucket=BUCKET))
        self.assertEqual((failure.status, failure.code),
                         (404, "NoSuchCORSConfiguration"))
        document = (b"<CORSConfiguration><CORSRule><AllowedOrigin>*"
                    b"</AllowedOrigin><AllowedMethod>GET</AllowedMethod>"
                    b"</CORSRule></CORSConfiguration>")
        status, _, body = raw_request("PUT", f"/{BUCKET}?cors", document)
        self.assertEqual((status, error_code(body)), (400, "InvalidRequest"))
        md5 = base64.b64encode(hashlib.md5(document).digest()).decode()
        status, _, _ = raw_request("PUT", f"/{BUCKET}?cors", document,
                                   {"Content-MD5": md5})
        self.assertEqual(status, 200)
        self.assertEqual(self.s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"],
                         [{"AllowedMethods": ["GET"],
                           "AllowedOrigins": ["*"]}])
        self.s3.delete_bucket_cors(Bucket=BUCKET)
        self.assertEqual(error_of(lambda: self.s3.get_bucket_cors(
            Bucket=BUCKET)), (404, "NoSuchCORSConfiguration"))
        for rule, code in (
                ({"AllowedOrigins": ["*"], "AllowedMethods": ["PATCH"]},
                 "InvalidRequest"),
                ({"AllowedOrigins": ["http://*.*.example"],
                  "AllowedMethods": ["GET"]}, "InvalidRequest"),
                ({"AllowedOrigins": ["*"], "AllowedMethods": ["GET"],
                  "AllowedHeaders": ["x-*-*"]}, "InvalidRequest"),
                ({"AllowedOrigins": [], "AllowedMethods": ["GET"]},
                 "MalformedXML")):
            with self.subTest(rule=rule):
                self.assertEqual(error_of(lambda: self.s3.put_bucket_cors(
                    Bucket=BUCKET, CORSConfiguration={"CORSRules": [rule]})),
                    (400, code))
        self.assertEqual(error_of(lambda: self.s3.get_bucket_cors(
            Bucket=BUCKET)), (404, "NoSuchCORSConfiguration"))

    def test_preflight_allowed(self):
        status, headers, body = preflight(
            f"/{OTHER_BUCKET}/some/key", "http://app.example", "PUT",
            "Content-Type, X-Amz-Date,x-amz-content-sha256")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(cors_of(headers), {
            "Access-Control-Allow-Origin": "http://app.example",
            "Access-Control-Allow-Methods": "PUT, POST, GET",
            "Access-Control-Allow-Headers":
                "content-type, x-amz-date, x-amz-content-sha256",
            "Access-Control-Expose-Headers": "ETag, x-amz-version-id",
            "Access-Control-Max-Age": "600",
            "Access-Control-Allow-Credentials": "true",
            "Vary": self.VARY})
        # One wildcard in an origin; OPTIONS on the bucket is the
        # preflight of a browser's POST upload.
        status, headers, _ = preflight(f"/{OTHER_BUCKET}",
                                       "https://files.example.org", "POST")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Access-Control-Allow-Origin"],
                         "https://files.example.org")
        self.assertNotIn("Access-Control-Allow-Headers", headers)
        # The first rule that matches wins: any origin may GET, but
        # without credentials.
        status, headers, _ = preflight(f"/{OTHER_BUCKET}/k",
                                       "http://elsewhere.test", "GET")
        self.assertEqual(status, 200)
        self.assertEqual(cors_of(headers), {
            "Access-Control-Allow-Origin": "*",
            "Access-Control-Allow-Methods": "GET, HEAD", "Vary": self.VARY})

    def test_preflight_refused(self):
        path = f"/{OTHER_BUCKET}/some/key"
        for origin, method, headers in (
                ("http://elsewhere.test", "PUT", None),
                ("http://app.example", "DELETE", None),
                ("http://app.example", "PUT", "x-amz-date, authorization"),
                ("https://example.org", "PUT", None),
                ("http://app.example:8080", "PUT", None)):
            with self.subTest(origin=origin, method=method):
                status, sent, body = preflight(path, origin, method, headers)
                fields = error_fields(body)
                self.assertEqual((status, fields["Code"]),
                                 (403, "AccessForbidden"))
                self.assertTrue(fields["Message"].startswith(
                    "CORSResponse: This CORS request is not allowed."))
                self.assertEqual((fields["Method"], fields["ResourceType"]),
                                 (method, "OBJECT"))
                self.assertEqual(cors_of(sent), {})
        status, _, body = preflight(path, method="GET")
        self.assertEqual((status, error_fields(body)["Message"]), (
            400, "Insufficient information. Origin request header needed."))
        status, _, body = preflight(path, "http://app.example")
        self.assertEqual((status, error_fields(body)["Message"]), (
            400, "Invalid Access-Control-Request-Method: null"))
        status, _, body = preflight(f"/{BUCKET}/k", "http://app.example",
                                    "GET")
        fields = error_fields(body)
        self.assertEqual((status, fields["Code"], fields["Message"]), (
            403, "AccessForbidden",
            "CORSResponse: CORS is not enabled for this bucket."))

    def test_actual_requests_get_cors_headers(self):
        origin = {"Origin": "https://www.example.org"}
        status, headers, _ = raw_request("PUT", f"/{OTHER_BUCKET}/cors/k",
                                         b"body", origin)
        self.assertEqual(status, 200)
        self.assertEqual(cors_of(headers), {
            "Access-Control-Allow-Origin": "https://www.example.org",
            "Access-Control-Allow-Methods": "PUT, POST, GET",
            "Access-Control-Expose-Headers": "ETag, x-amz-version-id",
            "Access-Control-Max-Age": "600",
            "Access-Control-Allow-Credentials": "true", "Vary": self.VARY})
        status, headers, _ = raw_request("GET", f"/{OTHER_BUCKET}/cors/k",
                                         headers={"Origin": "http://x.test"})
        self.assertEqual((status, headers["Access-Control-Allow-Origin"]),
                         (200, "*"))
        # Error answers carry them too; a method no rule allows does not.
        status, headers, body = raw_request(
            "GET", f"/{OTHER_BUCKET}/cors/missing", headers=origin)
        self.assertEqual((status, error_code(body)), (404, "NoSuchKey"))
        self.assertEqual(headers["Access-Control-Allow-Origin"],
                         "https://www.example.org")
        status, headers, _ = raw_request("DELETE", f"/{OTHER_BUCKET}/cors/k",
                                         headers=origin)
        self.assertEqual((status, cors_of(headers)), (204, {}))
        for path, sent in ((f"/{OTHER_BUCKET}/cors/k", {}),
                           (f"/{BUCKET}/sig/ok", origin)):
            status, headers, _ = raw_request("GET", path, headers=sent)
            self.assertEqual(cors_of(headers), {})
        # The browser upload itself.
        post = self.s3.generate_presigned_post(OTHER_BUCKET, "cors/posted")
        status, headers, _ = post_form(post["fields"], bucket=OTHER_BUCKET,
                                       headers={"Origin":
                                                "http://app.example"})
        self.assertEqual((status, headers["Access-Control-Allow-Origin"]),
                         (204, "http://app.example"))
        self.assertEqual(headers["Access-Control-Expose-Headers"],
                         "ETag, x-amz-version-id")
        self.s3.delete_object(Bucket=OTHER_BUCKET, Key="cors/posted")

    def test_preflight_needs_no_signature_but_a_bucket(self):
        status, _, body = preflight("/no-such-bucket/k", "http://app.example",
                                    "GET")
        self.assertEqual((status, error_code(body)), (404, "NoSuchBucket"))
        stats = control("GET", "stats")[1]
        self.assertGreaterEqual(stats["operations"]["PreflightRequest"], 1)


class FaultTests(FixtureTestCase):
    def stats(self):
        return control("GET", "stats")[1]

    def test_error_injection_for_one_method(self):
        self.s3.put_object(Bucket=BUCKET, Key="fault/e", Body=b"e")
        control("POST", "faults", {"mode": "error", "status": 503,
                                   "count": 2, "method": "GET"})
        self.s3.head_bucket(Bucket=BUCKET)  # HEAD is not affected
        for _ in range(2):
            self.assertEqual(error_of(lambda: self.s3.get_object(
                Bucket=BUCKET, Key="fault/e")), (503, "SlowDown"))
        self.s3.get_object(Bucket=BUCKET, Key="fault/e")
        control("POST", "faults", {"mode": "error", "status": 500})
        self.assertEqual(error_of(lambda: self.s3.head_bucket(
            Bucket=BUCKET))[0], 500)

    def test_retries_recover_from_errors(self):
        self.s3.put_object(Bucket=BUCKET, Key="fault/r", Body=b"r")
        before = self.stats()["operations"].get("GetObject", 0)
        control("POST", "faults", {"mode": "error", "status": 500,
                                   "count": 2, "operation": "GetObject"})
        retrying = client(attempts=5)
        body = retrying.get_object(Bucket=BUCKET, Key="fault/r")["Body"]
        self.assertEqual(body.read(), b"r")
        after = self.stats()["operations"]["GetObject"]
        self.assertEqual(after - before, 3)

    def test_delay(self):
        control("POST", "faults", {"mode": "delay", "seconds": 1.5})
        started = time.monotonic()
        self.s3.head_bucket(Bucket=BUCKET)
        self.assertGreaterEqual(time.monotonic() - started, 1.5)
        control("POST", "faults", {"mode": "delay", "seconds": 2})
        impatient = client(read_timeout=0.5)
        with self.assertRaises(ReadTimeoutError):
            impatient.head_bucket(Bucket=BUCKET)

    def test_drop_connection(self):
        control("POST", "faults", {"mode": "drop", "count": 1})
        with self.assertRaises((http.client.RemoteDisconnected,
                                ConnectionResetError)):
            raw_request("GET", f"/{BUCKET}?list-type=2")
        status, _, _ = raw_request("GET", f"/{BUCKET}?list-type=2")
        self.assertEqual(status, 200)
        control("POST", "faults", {"mode": "drop", "count": 1})
        with self.assertRaises(ConnectionClosedError):
            self.s3.head_bucket(Bucket=BUCKET)
        control("POST", "faults", {"mode": "drop", "count": 2})
        client(attempts=4).head_bucket(Bucket=BUCKET)  # retried through

    def test_down_refuses_connections(self):
        status, _ = control("POST", "faults", {"mode": "down",
                                               "seconds": 1.5})
        self.assertEqual(status, 200)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", FIXTURE.port), 1).close()
        with self.assertRaises(EndpointConnectionError):
            self.s3.head_bucket(Bucket=BUCKET)
        time.sleep(2)
        self.s3.head_bucket(Bucket=BUCKET)

    def test_fail_nth_upload_part(self):
        control("POST", "faults", {"mode": "fail_part", "part": 2})
        key = "fault/mp"
        upload_id = self.s3.create_multipart_upload(
            Bucket=BUCKET, Key=key)["UploadId"]
        data = [os.urandom(5 * MIB), b"end"]
        etag1 = self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                    PartNumber=1, Body=data[0])["ETag"]
        self.assertEqual(error_of(lambda: self.s3.upload_part(
            Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=2,
            Body=data[1])), (500, "InternalError"))
        etag2 = self.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                    PartNumber=2, Body=data[1])["ETag"]
        self.s3.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag1},
                                       {"PartNumber": 2, "ETag": etag2}]})
        body = self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
        self.assertEqual(body, data[0] + data[1])

    def test_reset_clears_faults(self):
        control("POST", "faults", {"mode": "error", "count": -1})
        self.assertEqual(error_of(lambda: self.s3.head_bucket(
            Bucket=BUCKET))[0], 503)
        control("POST", "faults", {"mode": "reset"})
        self.s3.head_bucket(Bucket=BUCKET)
        self.assertEqual(control("POST", "faults", {"mode": "bogus"})[0], 400)

    def test_keep_alive_reuses_one_connection(self):
        before = self.stats()["connections_accepted"]
        started = time.monotonic()
        for _ in range(200):
            self.s3.head_bucket(Bucket=BUCKET)
        elapsed = time.monotonic() - started
        # One connection for boto3, one for this second stats request.
        self.assertEqual(self.stats()["connections_accepted"] - before, 2)
        self.assertLess(elapsed, 20, "200 requests on one connection")


class AwsCliTests(FixtureTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists("/usr/bin/aws"):
            raise AssertionError("/usr/bin/aws is missing: apt-get install "
                                 "awscli")

    def aws(self, *args, secret=SECRET_KEY, check=True):
        env = dict(os.environ, AWS_CONFIG_FILE="/dev/null",
                   AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                   AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=secret,
                   AWS_DEFAULT_REGION="us-east-1", AWS_PAGER="",
                   AWS_EC2_METADATA_DISABLED="true")
        result = subprocess.run(
            ["/usr/bin/aws", "--endpoint-url", endpoint(), *args],
            env=env, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            self.fail(f"aws {' '.join(args)} failed: {result.stderr}")
        return result

    def test_s3api_put_get_odd_key(self):
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "in")
            with open(source, "wb") as handle:
                handle.write(b"from the cli")
            self.aws("s3api", "put-object", "--bucket", BUCKET, "--key",
                     "cli//odd ü", "--body", source)
            target = os.path.join(tmp, "out")
            self.aws("s3api", "get-object", "--bucket", BUCKET, "--key",
                     "cli//odd ü", target)
            with open(target, "rb") as handle:
                self.assertEqual(handle.read(), b"from the cli")

    def test_cp_multipart_and_ls(self):
        data = os.urandom(9 * MIB)  # above the CLI's 8 MiB threshold
        with tempfile.TemporaryDirectory() as tmp:
            source, target = os.path.join(tmp, "big"), os.path.join(tmp, "b2")
            with open(source, "wb") as handle:
                handle.write(data)
            before = control("GET", "stats")[1]["operations"].get(
                "UploadPart", 0)
            self.aws("s3", "cp", source, f"s3://{BUCKET}/cli/big.bin")
            after = control("GET", "stats")[1]["operations"]["UploadPart"]
            self.assertEqual(after - before, 2)
            self.aws("s3", "cp", f"s3://{BUCKET}/cli/big.bin", target)
            with open(target, "rb") as handle:
                self.assertEqual(handle.read(), data)
        listing = self.aws("s3", "ls", f"s3://{BUCKET}/cli/").stdout
        self.assertIn("big.bin", listing)
        self.assertEqual(self.s3.list_multipart_uploads(
            Bucket=BUCKET).get("Uploads", []), [])

    def test_list_objects_v2_paging(self):
        for n in range(5):
            self.s3.put_object(Bucket=BUCKET, Key=f"clipage/{n}", Body=b"c")
        output = self.aws("s3api", "list-objects-v2", "--bucket", BUCKET,
                          "--prefix", "clipage/", "--page-size", "2").stdout
        keys = [o["Key"] for o in json.loads(output)["Contents"]]
        self.assertEqual(keys, [f"clipage/{n}" for n in range(5)])

    def test_presign(self):
        self.s3.put_object(Bucket=BUCKET, Key="cli/presigned", Body=b"pre")
        url = self.aws("s3", "presign", f"s3://{BUCKET}/cli/presigned",
                       "--expires-in", "60").stdout.strip()
        with urllib.request.urlopen(url) as response:
            self.assertEqual(response.read(), b"pre")

    def test_versions_tags_encryption_and_storage_class(self):
        self.aws("s3api", "put-bucket-versioning", "--bucket", VERSIONED,
                 "--versioning-configuration", "Status=Enabled")
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "in")
            ids = []
            for content in (b"cli one", b"cli two"):
                with open(source, "wb") as handle:
                    handle.write(content)
                put = json.loads(self.aws(
                    "s3api", "put-object", "--bucket", VERSIONED, "--key",
                    "cli/v", "--body", source, "--server-side-encryption",
                    "aws:kms", "--tagging", "via=cli", "--storage-class",
                    "STANDARD_IA").stdout)
                self.assertEqual(put["ServerSideEncryption"], "aws:kms")
                ids.append(put["VersionId"])
            head = json.loads(self.aws(
                "s3api", "head-object", "--bucket", VERSIONED, "--key",
                "cli/v", "--version-id", ids[0]).stdout)
            self.assertEqual((head["VersionId"], head["StorageClass"],
                              head["ServerSideEncryption"]),
                             (ids[0], "STANDARD_IA", "aws:kms"))
            target = os.path.join(tmp, "out")
            self.aws("s3api", "get-object", "--bucket", VERSIONED, "--key",
                     "cli/v", "--version-id", ids[0], target)
            with open(target, "rb") as handle:
                self.assertEqual(handle.read(), b"cli one")
            listed = json.loads(self.aws(
                "s3api", "list-object-versions", "--bucket", VERSIONED,
                "--prefix", "cli/v").stdout)
            self.assertEqual([v["VersionId"] for v in listed["Versions"]],
                             ids[::-1])
            tags = json.loads(self.aws(
                "s3api", "get-object-tagging", "--bucket", VERSIONED, "--key",
                "cli/v", "--version-id", ids[0]).stdout)
            self.assertEqual(tags["TagSet"], [{"Key": "via", "Value": "cli"}])
            # SSE-C through the high-level commands (HeadObject first).
            sse_c = ["--sse-c", "AES256", "--sse-c-key", "c" * 32]
            self.aws("s3", "cp", source, f"s3://{BUCKET}/cli/ssec", *sse_c)
            self.aws("s3", "cp", f"s3://{BUCKET}/cli/ssec", target,
                     "--sse-c", "AES256", "--sse-c-key", "c" * 32)
            with open(target, "rb") as handle:
                self.assertEqual(handle.read(), b"cli two")
            refused = self.aws("s3", "cp", f"s3://{BUCKET}/cli/ssec", target,
                               check=False)
            self.assertNotEqual(refused.returncode, 0)
            self.assertIn("400", refused.stderr)

    def test_wrong_secret_fails(self):
        result = self.aws("s3api", "list-objects-v2", "--bucket", BUCKET,
                          secret="wrong", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SignatureDoesNotMatch", result.stderr)


# -- GCS mode (run-fixture.sh ... --gcs) -------------------------------------
#
# A second fixture, started by the first GCS test class that runs, answers
# as Cloud Storage's XML API does for an HMAC key (README.md, "GCS mode").
# Requests are signed by botocore (AWS4-HMAC-SHA256, as Cloud Storage takes
# them in a simple migration) or by goog4_headers/goog4_url below, a
# GOOG4-HMAC-SHA256 signer written here from Google's "Signatures" and
# "Canonical requests" pages, independently of s3fixture/goog4.py.

GCS_KEY, GCS_SECRET = "GOOG1EFIXTURETESTHMACKEY", "gcs-fixture-test-secret"
GCS_BUCKET, GCS_VERSIONED = "gcs-bucket", "gcs-versioned"
GCS_FIXTURES = {}  # name -> SimpleNamespace(dir, port)


def start_gcs_fixture(name, *flags, min_part_size=None):
    """Start (once) a --gcs fixture; main() stops them all."""
    if name in GCS_FIXTURES:
        return GCS_FIXTURES[name]
    fixture = types.SimpleNamespace(
        dir=tempfile.mkdtemp(prefix="s3-fixture-gcs-test-"), port=free_port())
    env = dict(os.environ,
               S3_FIXTURE_BUCKETS=f"{GCS_BUCKET} {GCS_VERSIONED}",
               S3_FIXTURE_CREDENTIALS=f"{GCS_KEY}:{GCS_SECRET}")
    if min_part_size is not None:
        env["S3_FIXTURE_MIN_PART_SIZE"] = str(min_part_size)
    subprocess.run([RUN_FIXTURE, "start", fixture.dir, str(fixture.port),
                    "--gcs", *flags], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    GCS_FIXTURES[name] = fixture
    return fixture


def stop_gcs_fixtures():
    for fixture in GCS_FIXTURES.values():
        subprocess.run([RUN_FIXTURE, "stop", fixture.dir], check=False)
        shutil.rmtree(fixture.dir, ignore_errors=True)
    GCS_FIXTURES.clear()


def _enc(text):
    return quote(text, safe="-_.~")


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256)


def _goog4_key(secret, day, location):
    key = ("GOOG4" + secret).encode()
    for part in (day, location, "storage", "goog4_request"):
        key = _hmac(key, part).digest()
    return key


def _goog4_canonical(method, path, query, headers, payload):
    names = sorted(headers)
    return "\n".join([
        method, path,
        "&".join(f"{k}={v}" for k, v in sorted(
            (_enc(k), _enc(v)) for k, v in query)),
        "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names),
        ";".join(names), payload]), ";".join(names)


def goog4_headers(port, method, path, query=(), headers=None, body=b"",
                  key=GCS_KEY, secret=GCS_SECRET, when=None,
                  location="auto", content_sha256=True):
    """Headers of a GOOG4-HMAC-SHA256 header-signed request."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    signed = {k.lower(): v for k, v in (headers or {}).items()}
    signed["host"] = f"127.0.0.1:{port}"
    signed["x-goog-date"] = stamp
    if content_sha256:
        signed["x-goog-content-sha256"] = hashlib.sha256(body).hexdigest()
    canonical, names = _goog4_canonical(
        method, path, query, signed,
        signed.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD"))
    scope = f"{stamp[:8]}/{location}/storage/goog4_request"
    to_sign = "\n".join(["GOOG4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = _hmac(_goog4_key(secret, stamp[:8], location),
                      to_sign).hexdigest()
    signed["authorization"] = (
        f"GOOG4-HMAC-SHA256 Credential={key}/{scope}, "
        f"SignedHeaders={names}, Signature={signature}")
    return signed


def goog4_url(port, method, path, expires=300, query=(), headers=None,
              key=GCS_KEY, secret=GCS_SECRET, when=None, location="auto"):
    """Path and query of a V4 signed URL (signing-urls-manually)."""
    when = when or datetime.datetime.now(datetime.timezone.utc)
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    scope = f"{stamp[:8]}/{location}/storage/goog4_request"
    signed = {k.lower(): v for k, v in (headers or {}).items()}
    signed["host"] = f"127.0.0.1:{port}"
    params = [("X-Goog-Algorithm", "GOOG4-HMAC-SHA256"),
              ("X-Goog-Credential", f"{key}/{scope}"),
              ("X-Goog-Date", stamp), ("X-Goog-Expires", str(expires)),
              ("X-Goog-SignedHeaders", ";".join(sorted(signed)))]
    params += list(query)
    canonical, _ = _goog4_canonical(method, path, params, signed,
                                    "UNSIGNED-PAYLOAD")
    to_sign = "\n".join(["GOOG4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signature = _hmac(_goog4_key(secret, stamp[:8], location),
                      to_sign).hexdigest()
    return path + "?" + "&".join(f"{_enc(k)}={_enc(v)}" for k, v in
                                 params) + "&X-Goog-Signature=" + signature


def crc32c_b64(data):
    """CRC32C, bit by bit (test-side, independent of s3fixture/crc32c.py)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return base64.b64encode(struct.pack(">I", crc ^ 0xFFFFFFFF)).decode()


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def gcs_error(body):
    """(Code, Details) of a Cloud Storage XML error document."""
    root = ElementTree.fromstring(body)
    return root.findtext("Code"), root.findtext("Details")


class GcsTestCase(unittest.TestCase):
    FIXTURE = "gcs"
    FLAGS = ()
    MIN_PART_SIZE = None

    @classmethod
    def setUpClass(cls):
        fixture = start_gcs_fixture(cls.FIXTURE, *cls.FLAGS,
                                    min_part_size=cls.MIN_PART_SIZE)
        cls.port = fixture.port
        cls.dir = fixture.dir

    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def boto(self, region="auto", secret=GCS_SECRET):
        """boto3 as Google's simple-migration samples configure it."""
        return boto3.client(
            "s3", endpoint_url=self.endpoint(), region_name=region,
            aws_access_key_id=GCS_KEY, aws_secret_access_key=secret,
            config=Config(signature_version="s3v4",
                          s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1,
                                   "mode": "standard"}))

    def call(self, method, path, body=b"", headers=None):
        """Send as given; (status, lower-case headers, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return (response.status,
                    {k.lower(): v for k, v in response.getheaders()},
                    response.read())
        finally:
            conn.close()

    def goog4(self, method, path, body=b"", headers=None, query=(),
              after_signing=None, **sign):
        """A GOOG4 header-signed request; query is a list of pairs."""
        signed = goog4_headers(self.port, method, path, query, headers, body,
                               **sign)
        if after_signing:
            after_signing(signed)
        target = path + ("?" + "&".join(f"{_enc(k)}={_enc(v)}"
                                        for k, v in query) if query else "")
        return self.call(method, target, body, signed)

    def put(self, key, body, headers=None, bucket=GCS_BUCKET):
        status, headers, data = self.goog4("PUT", self.path(key, bucket),
                                           body, headers)
        self.assertEqual(status, 200, data)
        return headers

    @staticmethod
    def path(key, bucket=GCS_BUCKET):
        return f"/{bucket}/{quote(key, safe='/~')}"

    def assert_error(self, result, status, code):
        got_status, headers, body = result
        self.assertEqual((got_status, gcs_error(body)[0]), (status, code),
                         body)
        return gcs_error(body)[1]


class GcsSignatureTests(GcsTestCase):
    def test_goog4_header_signed_put_and_get(self):
        headers = self.put("sig/goog4 ü", b"goog4 body",
                           {"Content-Type": "text/plain"})
        self.assertIn("x-goog-generation", headers)
        status, headers, body = self.goog4("GET", self.path("sig/goog4 ü"))
        self.assertEqual((status, body), (200, b"goog4 body"))
        self.assertEqual(headers["content-type"], "text/plain")
        self.assertIn("x-guploader-uploadid", headers)
        self.assertNotIn("x-amz-request-id", headers)
        # Without x-goog-content-sha256 the payload is UNSIGNED-PAYLOAD.
        status, _, body = self.goog4("PUT", self.path("sig/unsigned"), b"u",
                                     content_sha256=False)
        self.assertEqual(status, 200, body)

    def test_goog4_any_location(self):
        status, _, body = self.goog4("GET", f"/{GCS_BUCKET}",
                                     query=[("list-type", "2")],
                                     location="europe-west1")
        self.assertEqual(status, 200, body)

    def test_goog4_wrong_secret_and_tampering(self):
        self.put("sig/t", b"t")
        result = self.goog4("GET", self.path("sig/t"), secret="not-it")
        self.assertEqual(self.assert_error(result, 403,
                                           "SignatureDoesNotMatch")[:17],
                         "The request signa")
        self.assertTrue(result[2].startswith(
            b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>"))
        self.assertIn(b"<StringToSign>GOOG4-HMAC-SHA256\n", result[2])
        self.assertNotIn(b"<RequestId>", result[2])

        def tamper(headers):
            headers["authorization"] = headers["authorization"][:-1] + (
                "0" if headers["authorization"][-1] != "0" else "1")
        self.assert_error(self.goog4("GET", self.path("sig/t"),
                                     after_signing=tamper),
                          403, "SignatureDoesNotMatch")
        # Signed for one key, sent for another.
        signed = goog4_headers(self.port, "GET", self.path("sig/t"))
        self.assert_error(self.call("GET", self.path("sig/other"),
                                    headers=signed),
                          403, "SignatureDoesNotMatch")

    def test_goog4_unknown_access_id(self):
        self.assert_error(self.goog4("GET", self.path("sig/t"),
                                     key="GOOG1NOBODY"),
                          403, "InvalidAccessKeyId")

    def test_goog4_malformed_scope_and_headers(self):
        def service(headers):
            headers["authorization"] = headers["authorization"].replace(
                "/storage/", "/s3/")
        self.assert_error(self.goog4("GET", self.path("sig/t"),
                                     after_signing=service),
                          400, "MalformedSecurityHeader")

        def unsigned(headers):
            headers["x-goog-meta-sneaky"] = "1"
        details = self.assert_error(
            self.goog4("PUT", self.path("sig/h"), b"x",
                       after_signing=unsigned),
            400, "MalformedSecurityHeader")
        self.assertIn("x-goog-meta-sneaky", details)

        def drop(headers):
            del headers["x-goog-date"]
        self.assert_error(self.goog4("GET", self.path("sig/t"),
                                     after_signing=drop),
                          400, "MalformedSecurityHeader")
        # A signed header the request does not carry.
        signed = goog4_headers(self.port, "GET", self.path("sig/t"),
                               headers={"x-goog-meta-a": "1"})
        del signed["x-goog-meta-a"]
        self.assert_error(self.call("GET", self.path("sig/t"),
                                    headers=signed),
                          400, "MalformedSecurityHeader")

    def test_goog4_skewed_clock(self):
        past = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(minutes=20)
        self.assert_error(self.goog4("GET", self.path("sig/t"), when=past),
                          403, "RequestTimeTooSkewed")

    def test_goog4_payload_hash(self):
        signed = goog4_headers(self.port, "PUT", self.path("sig/sha"),
                               body=b"AAAA")
        self.assert_error(self.call("PUT", self.path("sig/sha"), b"BBBB",
                                    signed), 400, "BadDigest")
        self.assert_error(self.goog4("GET", self.path("sig/sha")),
                          404, "NoSuchKey")

    def test_signed_url_get_and_put(self):
        url = goog4_url(self.port, "PUT", self.path("sig/url é+&"))
        status, _, body = self.call("PUT", url, b"via signed url")
        self.assertEqual(status, 200, body)
        url = goog4_url(self.port, "GET", self.path("sig/url é+&"),
                        query=[("response-content-type", "text/x-test")])
        with urllib.request.urlopen(self.endpoint() + url) as response:
            self.assertEqual(response.read(), b"via signed url")
            self.assertEqual(response.headers["Content-Type"], "text/x-test")
        # Lower-case parameter names, as some Google libraries send them.
        lower = url.replace("X-Goog-Signature=", "x-goog-signature=")
        self.assertEqual(self.call("GET", lower)[0], 200)

    def test_signed_upload_url_with_signed_headers(self):
        # A browser upload as a backend would sign it: type, create-only and
        # size range are signed headers the uploader must send as they are.
        signed = {"Content-Type": "image/png",
                  "x-goog-if-generation-match": "0",
                  "x-goog-content-length-range": "1,10"}
        url = goog4_url(self.port, "PUT", self.path("sig/upload"),
                        headers=signed)
        status, headers, body = self.call("PUT", url, b"png", signed)
        self.assertEqual(status, 200, body)
        self.assertIn("x-goog-generation", headers)
        self.assert_error(self.call("PUT", url, b"png", signed),
                          412, "PreconditionFailed")
        self.assert_error(self.call("PUT", url, b"x", dict(
            signed, **{"Content-Type": "text/plain"})),
            403, "SignatureDoesNotMatch")
        self.assert_error(self.call("PUT", url, b"x", {
            "Content-Type": "image/png"}), 400, "MalformedSecurityHeader")
        url = goog4_url(self.port, "PUT", self.path("sig/upload-big"),
                        headers=signed)
        self.assert_error(self.call("PUT", url, b"0123456789A", signed),
                          400, "EntityTooLarge")
        self.assert_error(self.goog4("GET", self.path("sig/upload-big")),
                          404, "NoSuchKey")

    def test_signed_url_refusals(self):
        self.put("sig/u", b"u")
        past = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(seconds=100)
        expired = goog4_url(self.port, "GET", self.path("sig/u"), expires=10,
                            when=past)
        details = self.assert_error(self.call("GET", expired), 400,
                                    "ExpiredToken")
        self.assertIn("expired", details)
        self.assert_error(self.call("GET", goog4_url(
            self.port, "GET", self.path("sig/u"), expires=604801)),
            400, "MalformedSecurityHeader")
        url = goog4_url(self.port, "GET", self.path("sig/u"))
        self.assert_error(self.call("GET", url.replace("/sig/u?", "/sig/v?")),
                          403, "SignatureDoesNotMatch")
        self.assert_error(self.call("DELETE", url), 403,
                          "SignatureDoesNotMatch")
        self.assert_error(self.call("GET", goog4_url(
            self.port, "GET", self.path("sig/u"), secret="wrong")),
            403, "SignatureDoesNotMatch")
        self.assert_error(self.call("GET", url.replace(
            "X-Goog-Date", "X-Goog-Nothing")), 400,
            "MalformedSecurityHeader")

    def test_aws4_with_hmac_key(self):
        for region in ("auto", "us-west-2"):
            s3 = self.boto(region)
            put = s3.put_object(Bucket=GCS_BUCKET, Key=f"sig/aws4-{region}",
                                Body=b"aws4")
            self.assertIn("x-goog-generation", headers_of(put))
            got = s3.get_object(Bucket=GCS_BUCKET, Key=f"sig/aws4-{region}")
            self.assertEqual(got["Body"].read(), b"aws4")
        self.assertEqual(error_of(lambda: self.boto(secret="wrong")
                                  .head_object(Bucket=GCS_BUCKET,
                                               Key="sig/aws4-auto"))[0], 403)
        url = self.boto().generate_presigned_url(
            "get_object",
            Params={"Bucket": GCS_BUCKET, "Key": "sig/aws4-auto"},
            ExpiresIn=60)
        with urllib.request.urlopen(url) as response:
            self.assertEqual(response.read(), b"aws4")

    def test_anonymous_is_denied(self):
        status, headers, body = self.call("GET", self.path("sig/t"))
        self.assertEqual((status, gcs_error(body)[0]), (403, "AccessDenied"))
        self.assertIn(b"<Message>Access denied.</Message>", body)


class GcsHeaderTests(GcsTestCase):
    def test_x_amz_equivalents_are_processed(self):
        s3 = self.boto()
        s3.put_object(Bucket=GCS_BUCKET, Key="hdr/amz", Body=b"m",
                      Metadata={"colour": "blue"}, StorageClass="NEARLINE")
        headers = headers_of(s3.head_object(Bucket=GCS_BUCKET,
                                            Key="hdr/amz"))
        self.assertEqual(headers["x-goog-meta-colour"], "blue")
        self.assertEqual(headers["x-goog-storage-class"], "NEARLINE")
        self.assertFalse([h for h in headers if h.startswith("x-amz-")],
                         headers)

    def test_x_amz_without_equivalent_is_refused(self):
        s3 = self.boto()
        for extra in ({"Tagging": "a=b"}, {"ServerSideEncryption": "AES256"},
                      {"StorageClass": "STANDARD_IA"}):
            self.assertEqual(error_of(lambda: s3.put_object(
                Bucket=GCS_BUCKET, Key="hdr/refused", Body=b"x", **extra)),
                (400, "InvalidArgument"), extra)
        self.assert_error(self.goog4("GET", self.path("hdr/refused")),
                          404, "NoSuchKey")

    def test_mixing_x_amz_and_x_goog_is_refused(self):
        s3 = self.boto()
        with with_header(s3, "PutObject", "x-goog-if-generation-match", "0"):
            self.assertEqual(error_of(lambda: s3.put_object(
                Bucket=GCS_BUCKET, Key="hdr/mixed", Body=b"x")),
                (400, "ExcessHeaderValues"))

    def test_x_amz_if_generation_match_is_the_equivalent(self):
        s3 = self.boto()
        with with_header(s3, "PutObject", "x-amz-if-generation-match", "0"):
            s3.put_object(Bucket=GCS_BUCKET, Key="hdr/once", Body=b"1")
            self.assertEqual(error_of(lambda: s3.put_object(
                Bucket=GCS_BUCKET, Key="hdr/once", Body=b"2")),
                (412, "PreconditionFailed"))

    def test_goog_meta_and_standard_headers(self):
        self.put("hdr/meta", b"m", {"x-goog-meta-Owner": "me",
                                    "Cache-Control": "no-cache"})
        status, headers, _ = self.goog4("HEAD", self.path("hdr/meta"))
        self.assertEqual((status, headers["x-goog-meta-owner"],
                          headers["cache-control"]), (200, "me", "no-cache"))
        # put-object: no Content-Type means application/octet-stream.
        self.assertEqual(headers["content-type"], "application/octet-stream")

    def test_storage_classes(self):
        for name in ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"):
            self.put(f"hdr/class-{name}", b"c",
                     {"x-goog-storage-class": name})
            status, headers, body = self.goog4(
                "GET", self.path(f"hdr/class-{name}"))
            self.assertEqual((status, body, headers["x-goog-storage-class"]),
                             (200, b"c", name))
        for name in ("GLACIER", "STANDARD_IA", "nearline"):
            self.assert_error(self.goog4(
                "PUT", self.path("hdr/class-bad"), b"c",
                {"x-goog-storage-class": name}), 400, "InvalidArgument")

    def test_unknown_and_unemulated_goog_headers(self):
        self.assert_error(self.goog4("PUT", self.path("hdr/x"), b"x",
                                     {"x-goog-if-generation-matches": "0"}),
                          400, "InvalidArgument")
        self.assert_error(self.goog4("PUT", self.path("hdr/x"), b"x",
                                     {"x-goog-generation": "5"}),
                          400, "InvalidArgument")
        self.assert_error(self.goog4("PUT", self.path("hdr/x"), b"x",
                                     {"x-goog-encryption-kms-key-name": "k"}),
                          501, "NotImplemented")

    def test_upload_hashes_are_checked(self):
        body = b"hash me"
        good = f"crc32c={crc32c_b64(body)},md5={md5_b64(body)}"
        headers = self.put("hdr/hash", body, {"x-goog-hash": good})
        self.assertEqual(headers["x-goog-hash"], good)
        self.assert_error(self.goog4("PUT", self.path("hdr/hash"), body, {
            "x-goog-hash": "crc32c=AAAAAA=="}), 400, "CrcMismatch")
        self.assert_error(self.goog4("PUT", self.path("hdr/hash"), body, {
            "x-goog-hash": f"md5={md5_b64(b'other')}"}), 400, "BadDigest")


class GcsPreconditionTests(GcsTestCase):
    def test_generation_match_zero_creates_only(self):
        create = {"x-goog-if-generation-match": "0"}
        self.put("pre/once", b"first", create)
        details = self.assert_error(
            self.goog4("PUT", self.path("pre/once"), b"second", create),
            412, "PreconditionFailed")
        self.assertIn("x-goog-if-generation-match", details)
        self.assertEqual(self.goog4("GET", self.path("pre/once"))[2],
                         b"first")

    def test_if_none_match_is_not_create_only(self):
        # request-preconditions: If-None-Match applies to reads only.
        self.put("pre/inm", b"first", {"If-None-Match": "*"})
        self.put("pre/inm", b"second", {"If-None-Match": "*"})
        self.assertEqual(self.goog4("GET", self.path("pre/inm"))[2],
                         b"second")

    def test_concurrent_create_only_has_one_winner(self):
        results = []

        def attempt(n):
            results.append(self.goog4(
                "PUT", self.path("pre/race"), b"w%d" % n,
                {"x-goog-if-generation-match": "0"})[0])
        threads = [threading.Thread(target=attempt, args=(n,))
                   for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(sorted(results), [200] + [412] * 7)

    def test_generation_match_on_put_get_delete(self):
        first = int(self.put("pre/n", b"1")["x-goog-generation"])
        self.assert_error(self.goog4("PUT", self.path("pre/n"), b"x", {
            "x-goog-if-generation-match": str(first + 1)}),
            412, "PreconditionFailed")
        second = int(self.put("pre/n", b"2", {
            "x-goog-if-generation-match": str(first)})["x-goog-generation"])
        self.assertGreater(second, first)
        self.assert_error(self.goog4("GET", self.path("pre/n"), headers={
            "x-goog-if-generation-match": str(first)}),
            412, "PreconditionFailed")
        self.assert_error(self.goog4("GET", self.path("pre/n"), headers={
            "x-goog-if-generation-match": "0"}), 412, "PreconditionFailed")
        status, _, body = self.goog4("GET", self.path("pre/n"), headers={
            "x-goog-if-generation-match": str(second),
            "x-goog-if-metageneration-match": "1"})
        self.assertEqual((status, body), (200, b"2"))
        self.assertEqual(self.goog4("HEAD", self.path("pre/n"), headers={
            "x-goog-if-metageneration-match": "2"})[0], 412)
        self.assert_error(self.goog4("DELETE", self.path("pre/n"), headers={
            "x-goog-if-generation-match": str(first)}),
            412, "PreconditionFailed")
        self.assertEqual(self.goog4("DELETE", self.path("pre/n"), headers={
            "x-goog-if-generation-match": str(second)})[0], 204)
        self.assert_error(self.goog4("PUT", self.path("pre/n"), b"3", {
            "x-goog-if-generation-match": str(second)}),
            412, "PreconditionFailed")

    def test_metageneration_alone_on_put_is_refused(self):
        self.assert_error(self.goog4("PUT", self.path("pre/meta"), b"m", {
            "x-goog-if-metageneration-match": "1"}), 400, "InvalidArgument")
        self.assert_error(self.goog4("PUT", self.path("pre/meta"), b"m", {
            "x-goog-if-generation-match": "zero"}), 400, "InvalidArgument")

    def test_copy_destination_and_source_preconditions(self):
        source = int(self.put("pre/src", b"source")["x-goog-generation"])
        self.put("pre/dst-taken", b"taken")
        copy = {"x-goog-copy-source": f"{GCS_BUCKET}/pre/src",
                "x-goog-if-generation-match": "0"}
        self.assert_error(self.goog4("PUT", self.path("pre/dst-taken"),
                                     headers=copy),
                          412, "PreconditionFailed")
        self.assert_error(self.goog4("PUT", self.path("pre/dst-new"),
                                     headers=dict(copy, **{
                                         "x-goog-copy-source-if-generation-"
                                         "match": str(source + 1)})),
                          412, "PreconditionFailed")
        status, headers, body = self.goog4(
            "PUT", self.path("pre/dst-new"), headers=dict(copy, **{
                "x-goog-copy-source-if-generation-match": str(source)}))
        self.assertEqual(status, 200, body)
        self.assertIn(b"<CopyObjectResult", body)
        self.assertGreater(int(headers["x-goog-generation"]), source)
        self.assertEqual(self.goog4("GET", self.path("pre/dst-new"))[2],
                         b"source")


class GcsGenerationTests(GcsTestCase):
    def test_generation_and_hash_headers(self):
        body = b"generations"
        put = self.put("gen/h", body, {"Content-Encoding": "gzip"})
        generation = put["x-goog-generation"]
        self.assertRegex(generation, r"^[1-9]\d{15,}$")
        expected = {"x-goog-metageneration": "1",
                    "x-goog-stored-content-length": str(len(body)),
                    "x-goog-stored-content-encoding": "gzip",
                    "x-goog-hash": f"crc32c={crc32c_b64(body)},"
                                   f"md5={md5_b64(body)}"}
        for method in ("HEAD", "GET"):
            status, headers, _ = self.goog4(method, self.path("gen/h"))
            self.assertEqual(status, 200)
            self.assertEqual(headers["x-goog-generation"], generation)
            for name, value in expected.items():
                self.assertEqual(headers[name], value, (method, name))
        for name, value in expected.items():
            self.assertEqual(put[name], value, name)
        again = self.put("gen/h", body)["x-goog-generation"]
        self.assertGreater(int(again), int(generation))
        # Kept in the sidecar's version index (versions.py).
        index = os.path.join(self.dir, "data", GCS_BUCKET, "._fixture",
                             "keys", "gen~", "h._v", "index.json")
        with open(index) as handle:
            self.assertEqual(json.load(handle)["versions"][0]["attrs"]
                             ["generation"], int(again))

    def test_generation_parameter(self):
        generation = self.put("gen/p", b"p")["x-goog-generation"]
        status, headers, body = self.goog4("GET", self.path("gen/p"),
                                           query=[("generation", generation)])
        self.assertEqual((status, body, headers["x-goog-generation"]),
                         (200, b"p", generation))
        self.assert_error(self.goog4("GET", self.path("gen/p"), query=[
            ("generation", str(int(generation) - 1))]), 404, "NoSuchKey")
        self.assert_error(self.goog4("GET", self.path("gen/p"), query=[
            ("generation", "abc")]), 400, "InvalidArgument")
        self.assert_error(self.goog4("GET", self.path("gen/p"), query=[
            ("versionId", "null")]), 400, "InvalidArgument")
        self.assert_error(self.goog4("DELETE", self.path("gen/p"), query=[
            ("generation", "1")]), 404, "NoSuchKey")
        self.assertEqual(self.goog4("DELETE", self.path("gen/p"), query=[
            ("generation", generation)])[0], 204)

    def test_delete_of_a_missing_object_is_404(self):
        details = self.assert_error(
            self.goog4("DELETE", self.path("gen/never")), 404, "NoSuchKey")
        self.assertEqual(details, f"No such object: {GCS_BUCKET}/gen/never")

    def test_noncurrent_generations_in_a_versioned_bucket(self):
        self.boto().put_bucket_versioning(
            Bucket=GCS_VERSIONED, VersioningConfiguration={
                "Status": "Enabled"})
        path = self.path("gen/v", GCS_VERSIONED)
        first = self.put("gen/v", b"one", bucket=GCS_VERSIONED)[
            "x-goog-generation"]
        second = self.put("gen/v", b"two", bucket=GCS_VERSIONED)[
            "x-goog-generation"]
        status, headers, body = self.goog4("GET", path,
                                           query=[("generation", first)])
        self.assertEqual((status, body, headers["x-goog-generation"]),
                         (200, b"one", first))
        self.assertEqual(self.goog4("GET", path)[2], b"two")
        # Deleting the live object leaves its generation noncurrent.
        self.assertEqual(self.goog4("DELETE", path)[0], 204)
        self.assert_error(self.goog4("GET", path), 404, "NoSuchKey")
        self.assert_error(self.goog4("DELETE", path), 404, "NoSuchKey")
        self.assertEqual(self.goog4("GET", path, query=[
            ("generation", second)])[2], b"two")
        self.assertEqual(self.goog4("DELETE", path, query=[
            ("generation", first)])[0], 204)
        self.assert_error(self.goog4("GET", path, query=[
            ("generation", first)]), 404, "NoSuchKey")
        # Deleting the live generation by number leaves no live object:
        # the older generation stays noncurrent.
        third = self.put("gen/v", b"three", bucket=GCS_VERSIONED)[
            "x-goog-generation"]
        self.assertEqual(self.goog4("DELETE", path, query=[
            ("generation", third)])[0], 204)
        self.assert_error(self.goog4("GET", path), 404, "NoSuchKey")
        self.assertEqual(self.goog4("GET", path, query=[
            ("generation", second)])[2], b"two")
        # A copy from a noncurrent generation.
        status, headers, body = self.goog4(
            "PUT", self.path("gen/v-copy", GCS_VERSIONED), headers={
                "x-goog-copy-source": f"/{GCS_VERSIONED}/gen/v",
                "x-goog-copy-source-generation": second})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.goog4(
            "GET", self.path("gen/v-copy", GCS_VERSIONED))[2], b"two")


class GcsCopyTests(GcsTestCase):
    def test_copy_keeps_or_replaces_metadata(self):
        self.put("copy/src", b"bytes", {"x-goog-meta-a": "1",
                                        "Content-Type": "text/plain"})
        status, headers, body = self.goog4("PUT", self.path("copy/kept"),
                                           headers={"x-goog-copy-source":
                                                    f"{GCS_BUCKET}/copy/src"})
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-goog-hash"],
                         f"crc32c={crc32c_b64(b'bytes')},"
                         f"md5={md5_b64(b'bytes')}")
        _, kept, _ = self.goog4("HEAD", self.path("copy/kept"))
        self.assertEqual((kept["x-goog-meta-a"], kept["content-type"]),
                         ("1", "text/plain"))
        self.goog4("PUT", self.path("copy/replaced"), headers={
            "x-goog-copy-source": f"{GCS_BUCKET}/copy/src",
            "x-goog-metadata-directive": "REPLACE",
            "x-goog-meta-b": "2", "x-goog-storage-class": "COLDLINE"})
        _, replaced, _ = self.goog4("HEAD", self.path("copy/replaced"))
        self.assertNotIn("x-goog-meta-a", replaced)
        self.assertEqual((replaced["x-goog-meta-b"],
                          replaced["x-goog-storage-class"]),
                         ("2", "COLDLINE"))
        self.assert_error(self.goog4("PUT", self.path("copy/none"), headers={
            "x-goog-copy-source": f"{GCS_BUCKET}/copy/missing"}),
            404, "NoSuchKey")

    def test_copy_source_takes_no_query(self):
        generation = self.put("copy/q", b"q")["x-goog-generation"]
        for source in (f"{GCS_BUCKET}/copy/q?generation={generation}",
                       f"{GCS_BUCKET}/copy/q?versionId=x"):
            self.assert_error(self.goog4("PUT", self.path("copy/q2"), headers={
                "x-goog-copy-source": source}), 400, "InvalidArgument")

    def test_copy_with_aws4(self):
        s3 = self.boto()
        s3.put_object(Bucket=GCS_BUCKET, Key="copy/a", Body=b"aws")
        result = s3.copy_object(Bucket=GCS_BUCKET, Key="copy/b",
                                CopySource={"Bucket": GCS_BUCKET,
                                            "Key": "copy/a"})
        self.assertIn("x-goog-generation", headers_of(result))
        self.assertEqual(s3.get_object(Bucket=GCS_BUCKET, Key="copy/b")
                         ["Body"].read(), b"aws")


class GcsMultipartTests(GcsTestCase):
    def initiate(self, key, headers=None):
        status, _, body = self.goog4("POST", self.path(key),
                                     headers=headers, query=[("uploads", "")])
        self.assertEqual(status, 200, body)
        return ElementTree.fromstring(body).findtext(
            "{http://s3.amazonaws.com/doc/2006-03-01/}UploadId")

    def part(self, key, upload_id, number, data):
        return self.goog4("PUT", self.path(key), data, query=[
            ("partNumber", str(number)), ("uploadId", upload_id)])

    def complete(self, key, upload_id, etags, headers=None):
        body = ("<CompleteMultipartUpload>" + "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
            for n, e in etags) + "</CompleteMultipartUpload>").encode()
        return self.goog4("POST", self.path(key), body, headers,
                          query=[("uploadId", upload_id)])

    def upload(self, key, parts, headers=None):
        upload_id = self.initiate(key, {"x-goog-meta-kind": "multipart"})
        etags = []
        for number, data in enumerate(parts, 1):
            status, headers_, body = self.part(key, upload_id, number, data)
            self.assertEqual(status, 200, body)
            etags.append((number, headers_["etag"]))
        return upload_id, self.complete(key, upload_id, etags, headers)

    def test_multipart_upload_is_composite(self):
        parts = [b"a" * (5 * MIB), b"tail"]
        _, (status, headers, body) = self.upload("mp/big", parts)
        self.assertEqual(status, 200, body)
        self.assertIn(b"<CompleteMultipartUploadResult", body)
        self.assertEqual(headers["x-goog-component-count"], "2")
        self.assertRegex(headers["x-goog-hash"],
                         r"^crc32c=[A-Za-z0-9+/]{6}==$")
        status, got, data = self.goog4("GET", self.path("mp/big"))
        self.assertEqual((status, data == b"".join(parts)), (200, True))
        self.assertEqual((got["x-goog-meta-kind"], got["x-goog-hash"],
                          got["x-goog-stored-content-length"]),
                         ("multipart", headers["x-goog-hash"],
                          str(5 * MIB + 4)))

    def test_part_rules(self):
        upload_id = self.initiate("mp/rules")
        for number in ("0", "10001"):
            status, _, body = self.goog4("PUT", self.path("mp/rules"), b"x",
                                         query=[("partNumber", number),
                                                ("uploadId", upload_id)])
            self.assertEqual((status, gcs_error(body)[0]),
                             (400, "InvalidArgument"))
        etags = [(n, self.part("mp/rules", upload_id, n, b"small")[1]["etag"])
                 for n in (1, 2)]
        self.assert_error(self.complete("mp/rules", upload_id, etags),
                          400, "EntityTooSmall")
        self.assert_error(self.complete("mp/rules", upload_id,
                                        list(reversed(etags))),
                          400, "InvalidPartOrder")
        self.assertEqual(self.goog4("DELETE", self.path("mp/rules"), query=[
            ("uploadId", upload_id)])[0], 204)
        self.assert_error(self.complete("mp/rules", upload_id, etags[:1]),
                          404, "NoSuchUpload")

    def test_preconditions_are_refused(self):
        # multipart-uploads: "Preconditions are not supported".
        create = {"x-goog-if-generation-match": "0"}
        self.assert_error(self.goog4("POST", self.path("mp/pre"),
                                     headers=create, query=[("uploads", "")]),
                          501, "NotImplemented")
        upload_id = self.initiate("mp/pre")
        etag = self.part("mp/pre", upload_id, 1, b"only")[1]["etag"]
        self.assert_error(self.complete("mp/pre", upload_id, [(1, etag)],
                                        create), 501, "NotImplemented")
        status, _, body = self.complete("mp/pre", upload_id, [(1, etag)])
        self.assertEqual(status, 200, body)


class GcsMultipartPreconditionTests(GcsMultipartTests):
    """--gcs-multipart-preconditions, and 1 KiB parts (fast hashing)."""
    FIXTURE = "gcs-multipart-preconditions"
    FLAGS = ("--gcs-multipart-preconditions",)
    MIN_PART_SIZE = 1024

    test_multipart_upload_is_composite = None
    test_preconditions_are_refused = None
    test_part_rules = None

    def test_complete_honours_generation_match(self):
        create = {"x-goog-if-generation-match": "0"}
        parts = [b"p" * 1024, b"q" * 10]
        _, (status, headers, body) = self.upload("mp/once", parts, create)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["x-goog-hash"],
                         "crc32c=" + crc32c_b64(b"".join(parts)))
        upload_id, result = self.upload("mp/once", parts, create)
        self.assert_error(result, 412, "PreconditionFailed")
        generation = headers["x-goog-generation"]
        status, _, body = self.complete("mp/once", upload_id, [
            (1, self.part("mp/once", upload_id, 1, b"r")[1]["etag"])],
            {"x-goog-if-generation-match": generation})
        self.assertEqual(status, 200, body)
        self.assertEqual(self.goog4("GET", self.path("mp/once"))[2], b"r")


class GcsErrorTests(GcsTestCase):
    def test_no_such_key_document(self):
        status, headers, body = self.goog4("GET", self.path("err/missing"))
        self.assertEqual(status, 404)
        self.assertEqual(body, (
            "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey"
            "</Code><Message>The specified key does not exist.</Message>"
            f"<Details>No such object: {GCS_BUCKET}/err/missing</Details>"
            "</Error>").encode())
        self.assertEqual(headers["server"], "UploadServer")

    def test_s3_only_operations_are_not_emulated(self):
        s3 = self.boto()
        self.assertEqual(error_of(lambda: s3.delete_objects(
            Bucket=GCS_BUCKET, Delete={"Objects": [{"Key": "a"}]})),
            (501, "NotImplemented"))
        self.assertEqual(error_of(lambda: s3.get_object_tagging(
            Bucket=GCS_BUCKET, Key="a"))[0], 501)

    def test_listing_and_fixture_env(self):
        self.put("err/listed", b"l")
        listed = self.boto().list_objects_v2(Bucket=GCS_BUCKET,
                                             Prefix="err/")
        self.assertEqual([o["Key"] for o in listed["Contents"]],
                         ["err/listed"])
        with open(os.path.join(self.dir, "fixture.env")) as handle:
            self.assertIn("S3_FIXTURE_GCS=1\n", handle.read())


class RestartTests(unittest.TestCase):
    """Runs before StopTests: the proxy's sidecar state is on disk."""

    def test_state_survives_a_restart(self):
        s3 = client()
        enable_versioning(s3, VERSIONED)
        key = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": b"r" * 32}
        first = s3.put_object(Bucket=VERSIONED, Key="restart/k", Body=b"1",
                              Tagging="t=1", StorageClass="STANDARD_IA",
                              ServerSideEncryption="aws:kms")["VersionId"]
        second = s3.put_object(Bucket=VERSIONED, Key="restart/k", Body=b"2",
                               **key)["VersionId"]
        marker = s3.delete_object(Bucket=VERSIONED,
                                  Key="restart/k")["VersionId"]
        upload_id = s3.create_multipart_upload(
            Bucket=BUCKET, Key="restart/mp", StorageClass="GLACIER",
            ServerSideEncryption="AES256")["UploadId"]
        rules = [{"AllowedOrigins": ["http://app.example"],
                  "AllowedMethods": ["POST"], "MaxAgeSeconds": 5}]
        s3.put_bucket_cors(Bucket=BUCKET,
                           CORSConfiguration={"CORSRules": rules})
        checksum = s3.put_object(Bucket=BUCKET, Key="restart/sum", Body=b"s",
                                 ChecksumAlgorithm="SHA256")["ChecksumSHA256"]
        stop_fixture()
        start_fixture(restart=True)
        s3 = client()
        self.assertEqual(s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"],
                         rules)
        s3.delete_bucket_cors(Bucket=BUCKET)
        self.assertEqual(s3.head_object(Bucket=BUCKET, Key="restart/sum",
                                        ChecksumMode="ENABLED")
                         ["ChecksumSHA256"], checksum)
        self.assertEqual(s3.get_bucket_versioning(Bucket=VERSIONED)["Status"],
                         "Enabled")
        self.assertEqual(versions_of(VERSIONED, "restart/k"), [
            (marker, True, True), (second, False, False),
            (first, False, False)])
        old = s3.get_object(Bucket=VERSIONED, Key="restart/k",
                            VersionId=first)
        self.assertEqual((old["Body"].read(), old["TagCount"],
                          old["StorageClass"], old["ServerSideEncryption"]),
                         (b"1", 1, "STANDARD_IA", "aws:kms"))
        self.assertEqual(error_of(lambda: s3.get_object(
            Bucket=VERSIONED, Key="restart/k", VersionId=second)),
            (400, "InvalidRequest"))
        self.assertEqual(s3.get_object(Bucket=VERSIONED, Key="restart/k",
                                       VersionId=second, **key)[
            "Body"].read(), b"2")
        uploads = s3.list_multipart_uploads(Bucket=BUCKET,
                                            Prefix="restart/")["Uploads"]
        self.assertEqual([(u["UploadId"], u["StorageClass"])
                          for u in uploads], [(upload_id, "GLACIER")])
        part = s3.upload_part(Bucket=BUCKET, Key="restart/mp",
                              UploadId=upload_id, PartNumber=1, Body=b"p")
        self.assertEqual(part["ServerSideEncryption"], "AES256")
        s3.abort_multipart_upload(Bucket=BUCKET, Key="restart/mp",
                                  UploadId=upload_id)


def process_running(pid):
    """True unless pid is gone or a zombie waiting for its reaper."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class StopTests(unittest.TestCase):
    """Runs last: stop must end both processes and free the port."""

    def test_stop_cleans_up(self):
        pids = []
        for name in ("proxy.pid", "s3rver.pid"):
            with open(os.path.join(FIXTURE.dir, name)) as handle:
                pids.append(int(handle.read()))
        stop_fixture()
        for pid in pids:
            self.assertFalse(process_running(pid),
                             f"process {pid} still running")
        for name in ("proxy.pid", "s3rver.pid"):
            self.assertFalse(os.path.exists(os.path.join(FIXTURE.dir, name)))
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", FIXTURE.port), 1).close()


class CountingResult(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def main():
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for case in (SignatureTests, ConditionalWriteTests, MultipartTests,
                 KeyTests, ListingTests, VersioningTests, EncryptionTests,
                 TaggingTests, StorageClassTests, StandardHeaderTests,
                 PostObjectTests, CorsTests, FaultTests, AwsCliTests,
                 GcsSignatureTests, GcsHeaderTests, GcsPreconditionTests,
                 GcsGenerationTests, GcsCopyTests, GcsMultipartTests,
                 GcsMultipartPreconditionTests, GcsErrorTests,
                 RestartTests, StopTests):
        suite.addTests(loader.loadTestsFromTestCase(case))
    start_fixture()
    try:
        runner = unittest.TextTestRunner(
            verbosity=2, resultclass=CountingResult, stream=sys.stdout)
        result = runner.run(suite)
    finally:
        stop_fixture()
        stop_gcs_fixtures()
        shutil.rmtree(FIXTURE.dir, ignore_errors=True)
    failed = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses)
    print(f"{result.passed} passed, {failed} failed")
    return 0 if failed == 0 and result.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
