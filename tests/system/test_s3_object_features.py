#!/usr/bin/python3
"""System test: object attributes, versions, server-side encryption and
operation statistics on the S3 backend, checked with boto3, the AWS CLI and
curl against the fixture (which emulates what AWS documents for each: see
tests/s3/README.md).

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_s3_object_features.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object
installed, preloaded for the statistics) and the S3 fixture's variables
exported (see tests/system/s3support.py).

- Attributes (headers, storage class, tags) from the backend's defaults and
  the call reach the store on single and multipart puts, overwrites and
  server-side copies; boto3 and aws read them back; so_stat adopts what
  boto3 wrote.
- On a versioned bucket a value reads, signs, copies and deletes the
  version it recorded; a value without one, the latest.
- sse AES256 and aws:kms reach every write; SSE-C objects are readable by
  so_get and by boto3 with the key, refused without it; so_sign's URL works
  for a client that sends the key headers only.
- so_operation_stats counts retries of a request the store answered 503.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import base64
import hashlib
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402  (sets BOTO_DISABLE_CRT before boto3 loads)
from s3support import BUCKET, curl  # noqa: E402

from botocore.exceptions import ClientError  # noqa: E402

FX = s3support.Fixture("features")
PART = 5 * 1024 * 1024  # the smallest part_size: puts above it are multipart
SSE_C_KEY = bytes(range(32))
SSE_C_KEY_B64 = base64.b64encode(SSE_C_KEY).decode()
SSE_C_HEADERS = ["x-amz-server-side-encryption-customer-algorithm: AES256",
                 "x-amz-server-side-encryption-customer-key: " + SSE_C_KEY_B64,
                 "x-amz-server-side-encryption-customer-key-MD5: " +
                 base64.b64encode(hashlib.md5(SSE_C_KEY).digest()).decode()]


def client_error(fn, *args, **kwargs):
    """(HTTP status, S3 error code) of a boto3 call that must fail."""
    try:
        fn(*args, **kwargs)
    except ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"]
    raise AssertionError("the call succeeded")


def tags_of(key, bucket=BUCKET, version=None):
    extra = {"VersionId": version} if version else {}
    tagset = FX.s3.get_object_tagging(Bucket=bucket, Key=key, **extra)["TagSet"]
    return {t["Key"]: t["Value"] for t in tagset}


class AttributesTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        cls.base = FX.register("attr", "attr", part_size=PART, attributes={
            "cache_control": "max-age=3600", "content_language": "en", "tags": {"app": "documents"}})

    def put(self, key, content, attributes=None, overwrite=False):
        value = FX.value("SELECT so_put('attr', %s, %s, attributes => %s, overwrite => %s)::text",
                         (key, content, json.dumps(attributes) if attributes else None, overwrite))
        return json.loads(value)

    def test_single_put_headers_class_and_tags_reach_the_store(self):
        value = self.put("single.txt", b"hello", {
            "content_disposition": 'attachment; filename="hello.txt"', "content_encoding": "identity",
            "storage_class": "STANDARD_IA", "tags": {"team": "docs", "note": "a=b c/d"}})
        head = FX.head(self.base + "single.txt")
        self.assertEqual(head["CacheControl"], "max-age=3600")  # the backend's default
        self.assertEqual(head["ContentLanguage"], "en")
        self.assertEqual(head["ContentDisposition"], 'attachment; filename="hello.txt"')
        self.assertEqual(head["ContentEncoding"], "identity")
        self.assertEqual(head["StorageClass"], "STANDARD_IA")
        # The call's tag set replaces the default one whole.
        self.assertEqual(tags_of(self.base + "single.txt"), {"team": "docs", "note": "a=b c/d"})
        self.assertEqual(value["attributes"]["tags"], {"note": "a=b c/d", "team": "docs"})
        # so_stat reads the same back, tags included.
        stat = json.loads(FX.value("SELECT so_attributes(so_stat('attr', 'single.txt'))::text"))
        self.assertEqual(stat, value["attributes"])
        # The AWS CLI sees the class and the tags too.
        out = FX.aws("s3api", "get-object-tagging", "--bucket", BUCKET, "--key", self.base + "single.txt")
        self.assertEqual({t["Key"] for t in out["TagSet"]}, {"team", "note"})
        listed = FX.aws("s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", self.base + "single")
        self.assertEqual(listed["Contents"][0]["StorageClass"], "STANDARD_IA")

    def test_multipart_put_keeps_attributes(self):
        content = os.urandom(PART + 1000)
        self.put("multi.bin", content, {"cache_control": "no-store", "storage_class": "ONEZONE_IA",
                                        "tags": {"size": "large"}})
        head = FX.head(self.base + "multi.bin")
        self.assertEqual((head["CacheControl"], head["StorageClass"]), ("no-store", "ONEZONE_IA"))
        self.assertEqual(tags_of(self.base + "multi.bin"), {"size": "large"})
        self.assertEqual(FX.get_bytes(self.base + "multi.bin"), content)

    def test_overwrite_keeps_headers_class_and_tags(self):
        self.put("over.txt", b"one")
        value = self.put("over.txt", b"two", {"storage_class": "INTELLIGENT_TIERING", "cache_control": "no-cache",
                                               "tags": {"rev": "2"}}, overwrite=True)
        head = FX.head(self.base + "over.txt")
        self.assertEqual(FX.get_bytes(self.base + "over.txt"), b"two")
        self.assertEqual((head["CacheControl"], head["StorageClass"]), ("no-cache", "INTELLIGENT_TIERING"))
        self.assertEqual(tags_of(self.base + "over.txt"), {"rev": "2"})
        self.assertEqual(value["attributes"]["storage_class"], "INTELLIGENT_TIERING")

    def test_so_stat_adopts_what_boto3_wrote(self):
        FX.s3.put_object(Bucket=BUCKET, Key=self.base + "foreign.txt", Body=b"x", CacheControl="private",
                         ContentLanguage="fr", StorageClass="GLACIER_IR", Tagging="origin=boto3&k=v")
        stat = json.loads(FX.value("SELECT so_attributes(so_stat('attr', 'foreign.txt'))::text"))
        self.assertEqual(stat, {"cache_control": "private", "content_language": "fr",
                                "storage_class": "GLACIER_IR", "tags": {"k": "v", "origin": "boto3"}})

    def test_server_side_copy_takes_headers_and_tags_and_the_target_class(self):
        FX.register("attr_archive", "archive", attributes={"storage_class": "GLACIER_IR"})
        self.put("tocopy.txt", b"copy me", {"tags": {"t": "1"}, "content_disposition": "inline"})
        copied = json.loads(FX.value(
            "SELECT so_copy(so_stat('attr', 'tocopy.txt'), 'attr_archive')::text"))
        key = "%s/archive/tocopy.txt" % FX.prefix
        head = FX.head(key)
        self.assertEqual((head["ContentDisposition"], head["StorageClass"]), ("inline", "GLACIER_IR"))
        self.assertEqual(tags_of(key), {"t": "1"})
        self.assertEqual(copied["attributes"]["tags"], {"t": "1"})

    def test_glacier_objects_are_refused_by_the_store_on_read(self):
        self.put("cold.txt", b"cold", {"storage_class": "DEEP_ARCHIVE"})
        e = self.assertSqlError("55000", "SELECT so_get(so_stat('attr', 'cold.txt'))")
        self.assertIn("InvalidObjectState", e.pgerror)
        self.assertIn("RestoreObject", e.diag.message_hint)


class VersionsTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        cls.bucket = "versioned-%d" % os.getpid()
        FX.s3.create_bucket(Bucket=cls.bucket)
        FX.s3.put_bucket_versioning(Bucket=cls.bucket, VersioningConfiguration={"Status": "Enabled"})
        opts = {"endpoint": FX.endpoint, "region": FX.region, "allow_http": True,
                "access_key_id": FX.access_key, "secret_access_key": FX.secret_key}
        FX.sql("SELECT so_register_backend('ver', %s, %s)", ("s3://%s/v" % cls.bucket, json.dumps(opts)))
        FX.sql("SELECT so_register_backend('ver_copy', %s, %s)", ("s3://%s/copies" % cls.bucket, json.dumps(opts)))

    @classmethod
    def tearDownClass(cls):
        versions = FX.s3.list_object_versions(Bucket=cls.bucket)
        for v in versions.get("Versions", []) + versions.get("DeleteMarkers", []):
            FX.s3.delete_object(Bucket=cls.bucket, Key=v["Key"], VersionId=v["VersionId"])
        FX.s3.delete_bucket(Bucket=cls.bucket)

    def versions_of(self, key):
        listed = FX.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        return [v["VersionId"] for v in listed.get("Versions", []) if v["Key"] == key]

    def test_a_value_reads_the_version_it_recorded(self):
        first = FX.value("SELECT so_put('ver', 'doc.txt', 'version one')::text")
        self.assertIsNotNone(json.loads(first)["version_id"])
        FX.s3.put_object(Bucket=self.bucket, Key="v/doc.txt", Body=b"version two")
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (first,))), b"version one")
        latest = json.dumps({"backend": "ver", "filename": "doc.txt"})
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (latest,))), b"version two")
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object, 8, 3)", (first,))), b"one")
        # A signed URL names the version: curl gets the old bytes.
        url = FX.value("SELECT so_sign(%s::stored_object)", (first,))
        self.assertIn("versionId=", url)
        status, _, body = curl(url)
        self.assertEqual((status, body), (200, b"version one"))
        # A copy copies that version, server-side.
        copied = FX.value("SELECT so_copy(%s::stored_object, 'ver_copy')::text", (first,))
        self.assertEqual(FX.s3.get_object(Bucket=self.bucket, Key="copies/doc.txt")["Body"].read(), b"version one")
        self.assertIsNotNone(json.loads(copied)["version_id"])
        # so_stat adopts the latest, with its version.
        stat = json.loads(FX.value("SELECT so_stat('ver', 'doc.txt')::text"))
        self.assertEqual(stat["version_id"], self.versions_of("v/doc.txt")[0])

    def test_exists_follows_the_version_through_a_delete_marker(self):
        value = FX.value("SELECT so_put('ver', 'marked.txt', 'x')::text")
        FX.s3.delete_object(Bucket=self.bucket, Key="v/marked.txt")  # a delete marker
        self.assertTrue(FX.value("SELECT so_exists(%s::stored_object)", (value,)))
        latest = json.dumps({"backend": "ver", "filename": "marked.txt"})
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (latest,)))
        self.assertSqlError("58P01", "SELECT so_get(%s::stored_object)", (latest,))
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (value,))), b"x")
        gone = dict(json.loads(value), version_id="A" * 32)  # well-formed, unknown
        self.assertFalse(FX.value("SELECT so_exists(%s::stored_object)", (json.dumps(gone),)))

    def test_deleting_a_versioned_value_removes_that_version_only(self):
        old = json.loads(FX.value("SELECT so_put('ver', 'del.txt', 'old')::text"))
        FX.s3.put_object(Bucket=self.bucket, Key="v/del.txt", Body=b"new")
        self.assertEqual(len(self.versions_of("v/del.txt")), 2)
        FX.sql("SELECT so_delete(%s::stored_object)", (json.dumps(old),))
        FX.wait_for_worker()
        remaining = self.versions_of("v/del.txt")
        self.assertEqual(len(remaining), 1)
        self.assertNotIn(old["version_id"], remaining)
        self.assertEqual(FX.s3.get_object(Bucket=self.bucket, Key="v/del.txt")["Body"].read(), b"new")


class EncryptionTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    @classmethod
    def setUpClass(cls):
        cls.aes = FX.register("sse_s3", "sse-s3", sse="AES256", part_size=PART)
        cls.kms = FX.register("sse_kms", "sse-kms", sse="aws:kms", sse_kms_key_id="alias/documents")
        cls.ssec = FX.register("sse_c", "sse-c", sse_customer_key=SSE_C_KEY_B64, part_size=PART)
        cls.plain = FX.register("sse_plain", "plain")
        FX.secrets.append(SSE_C_KEY_B64)

    def test_store_managed_keys_on_every_write(self):
        value = json.loads(FX.value("SELECT so_put('sse_s3', 'a.txt', 'a')::text"))
        self.assertEqual(value["attributes"]["sse"], "AES256")
        self.assertEqual(FX.head(self.aes + "a.txt")["ServerSideEncryption"], "AES256")
        FX.value("SELECT so_put('sse_s3', 'big.bin', %s)", (os.urandom(PART + 1),))
        self.assertEqual(FX.head(self.aes + "big.bin")["ServerSideEncryption"], "AES256")
        FX.value("SELECT so_put('sse_s3', 'a.txt', 'again', overwrite => true)")
        self.assertEqual(FX.head(self.aes + "a.txt")["ServerSideEncryption"], "AES256")
        kms = json.loads(FX.value("SELECT so_put('sse_kms', 'k.txt', 'k')::text"))
        head = FX.head(self.kms + "k.txt")
        # S3 reports the key as an ARN; the value records what it reported.
        self.assertEqual(head["ServerSideEncryption"], "aws:kms")
        self.assertTrue(head["SSEKMSKeyId"].endswith("alias/documents"), head["SSEKMSKeyId"])
        self.assertEqual((kms["attributes"]["sse"], kms["attributes"]["sse_kms_key_id"]),
                         ("aws:kms", head["SSEKMSKeyId"]))
        stat = json.loads(FX.value("SELECT so_attributes(so_stat('sse_kms', 'k.txt'))::text"))
        self.assertEqual(stat["sse"], "aws:kms")

    def test_customer_key_objects(self):
        value = FX.value("SELECT so_put('sse_c', 'secret.txt', 'for your eyes')::text")
        self.assertEqual(json.loads(value)["attributes"]["sse"], "SSE-C")
        key = self.ssec + "secret.txt"
        # boto3 reads it with the key, and is refused without it, as by S3.
        got = FX.s3.get_object(Bucket=BUCKET, Key=key, SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY)
        self.assertEqual(got["Body"].read(), b"for your eyes")
        self.assertEqual(client_error(FX.s3.get_object, Bucket=BUCKET, Key=key), (400, "InvalidRequest"))
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (value,))), b"for your eyes")
        self.assertEqual(FX.value("SELECT so_size(so_stat('sse_c', 'secret.txt'))"), 13)
        self.assertTrue(FX.value("SELECT so_exists(%s::stored_object)", (value,)))
        # Multipart: every part carries the key.
        content = os.urandom(PART + 10)
        FX.value("SELECT so_put('sse_c', 'big.bin', %s)", (content,))
        got = FX.s3.get_object(Bucket=BUCKET, Key=self.ssec + "big.bin", SSECustomerAlgorithm="AES256",
                               SSECustomerKey=SSE_C_KEY)
        self.assertEqual(got["Body"].read(), content)
        # What boto3 wrote with the key, so_stat adopts and so_get reads.
        FX.s3.put_object(Bucket=BUCKET, Key=self.ssec + "boto.txt", Body=b"from boto3",
                         SSECustomerAlgorithm="AES256", SSECustomerKey=SSE_C_KEY)
        self.assertEqual(bytes(FX.value("SELECT so_get(so_stat('sse_c', 'boto.txt'))")), b"from boto3")

    def test_customer_key_urls_need_the_key_headers(self):
        url = FX.value("SELECT so_sign(so_put('sse_c', 'url.txt', 'signed'))")
        self.assertNotIn(SSE_C_KEY_B64, url)
        self.assertIn("x-amz-server-side-encryption-customer-key", url)  # in X-Amz-SignedHeaders
        status, _, body = curl(url, headers=SSE_C_HEADERS)
        self.assertEqual((status, body), (200, b"signed"))
        status, _, _ = curl(url)
        self.assertIn(status, (400, 403))

    def test_copy_out_of_a_customer_key_backend(self):
        FX.value("SELECT so_put('sse_c', 'tocopy.txt', 'copied')")
        FX.value("SELECT so_copy(so_stat('sse_c', 'tocopy.txt'), 'sse_plain')")
        self.assertEqual(FX.get_bytes(self.plain + "tocopy.txt"), b"copied")
        self.assertNotIn("ServerSideEncryption", FX.head(self.plain + "tocopy.txt"))


class StatisticsTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    def test_retries_are_counted(self):
        FX.register("stats", "stats")
        value = FX.value("SELECT so_put('stats', 's.txt', 'x')::text")
        FX.sql("SELECT so_operation_stats_reset()")
        FX.control.add_fault({"mode": "error", "status": 503, "count": 2, "method": "GET"})
        self.assertEqual(bytes(FX.value("SELECT so_get(%s::stored_object)", (value,))), b"x")
        row = FX.sql("SELECT calls, errors, retries, bytes_read FROM so_operation_stats "
                     "WHERE backend = 'stats' AND operation = 'get' AND datname = current_database()")
        self.assertEqual(row, [(1, 0, 2, 1)])


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [AttributesTest, VersionsTest, EncryptionTest, StatisticsTest]))
