#!/usr/bin/python3
"""End-to-end tests of the S3 fixture (run-fixture.sh + s3proxy.py + s3rver).

Run with Debian's Python: /usr/bin/python3 tests/s3/test_fixture.py
Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest
import urllib.error
import urllib.request
from unittest import mock

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


def start_fixture():
    FIXTURE.dir = tempfile.mkdtemp(prefix="s3-fixture-test-")
    FIXTURE.port = free_port()
    env = dict(os.environ,
               S3_FIXTURE_BUCKETS=f"{BUCKET} {OTHER_BUCKET}",
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

    def test_wrong_secret_fails(self):
        result = self.aws("s3api", "list-objects-v2", "--bucket", BUCKET,
                          secret="wrong", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("SignatureDoesNotMatch", result.stderr)


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
                 KeyTests, ListingTests, FaultTests, AwsCliTests, StopTests):
        suite.addTests(loader.loadTestsFromTestCase(case))
    start_fixture()
    try:
        runner = unittest.TextTestRunner(
            verbosity=2, resultclass=CountingResult, stream=sys.stdout)
        result = runner.run(suite)
    finally:
        stop_fixture()
        shutil.rmtree(FIXTURE.dir, ignore_errors=True)
    failed = len(result.failures) + len(result.errors) + \
        len(result.unexpectedSuccesses)
    print(f"{result.passed} passed, {failed} failed")
    return 0 if failed == 0 and result.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
