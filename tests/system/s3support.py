"""Shared helpers of the S3 system tests (tests/system/test_s3_*.py).

Not a test itself (scripts/test.sh runs only test_*.py). Each test file

    FX = s3support.Fixture("clients")
    ...
    sys.exit(s3support.main(FX, [SomeTest, OtherTest]))

gets its own database (CREATE EXTENSION stored_object; dropped at the end),
its own key prefix in the fixture's bucket (so_systest/<name>-<pid>-<random>/,
every object under it removed at the end), a boto3 client, the fixture's
control endpoint (faults reset at the end, whatever happens) and the
"N passed, N failed" last line.

Environment (exported by scripts/test.sh): PGHOST/PGPORT/PGUSER, and from
the S3 fixture's fixture.env S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID,
S3_SECRET_ACCESS_KEY. The fixture also knows the temporary credential
temp-access-key:temp-secret-key with session token temp-session-token.
Run with Debian's /usr/bin/python3 (python3-psycopg2, python3-boto3).
"""

import os

# Pure-Python botocore: no CRT signer swapped in behind our back.
os.environ["BOTO_DISABLE_CRT"] = "true"

import json  # noqa: E402
import secrets  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
import urllib.parse  # noqa: E402

import boto3  # noqa: E402
import botocore.compat  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

import runner  # noqa: E402
from storesupport import (Background, Control, DatabaseFixture, SqlAssertions, curl, delta,  # noqa: E402,F401
                          env, error_texts)

BUCKET = "test-bucket"
TEMP_ACCESS_KEY = "temp-access-key"
TEMP_SECRET_KEY = "temp-secret-key"
TEMP_SESSION_TOKEN = "temp-session-token"
AWS = "/usr/bin/aws"
CURL = "/usr/bin/curl"
MIB = 1024 * 1024


class Fixture(DatabaseFixture):
    """The database, key prefix, clients and cleanup of one test file."""

    def __init__(self, name):
        self.name = name
        super().__init__("so_s3_%s_%d" % (name, os.getpid()))
        self.prefix = "so_systest/%s-%d-%s" % (name, os.getpid(), secrets.token_hex(4))
        self.control = None
        self.s3 = None

    # ---- setup / teardown ---------------------------------------------------

    def start(self):
        assert not botocore.compat.HAS_CRT, "BOTO_DISABLE_CRT=true must disable the CRT signer"
        self.endpoint = env("S3_ENDPOINT").rstrip("/")
        parts = urllib.parse.urlsplit(self.endpoint)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only: " + self.endpoint
        self.authority = parts.netloc
        self.region = os.environ.get("S3_REGION") or "us-east-1"
        self.access_key = env("S3_ACCESS_KEY_ID")
        self.secret_key = env("S3_SECRET_ACCESS_KEY")
        self.secrets = [self.secret_key, TEMP_SECRET_KEY, TEMP_SESSION_TOKEN]
        self.control = Control(self.endpoint)
        self.control.wait_healthy()
        self.control.reset_faults()
        self.s3 = self.boto3_client()

        self.create_database()

    def stop(self):
        for step in (self.reset_faults, self.close_connections, self.drop_database, self.remove_objects):
            try:
                step()
            except Exception:
                traceback.print_exc(file=sys.stdout)
        if self.control is not None:
            self.control.close()

    def reset_faults(self):
        if self.control is not None:
            self.control.reset_faults()

    def remove_objects(self):
        """Every object and multipart upload under this file's prefix."""
        if self.s3 is None:
            return
        prefix = self.prefix + "/"
        for upload in self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []):
            self.s3.abort_multipart_upload(Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"])
        for key in self.list_keys(""):
            self.s3.delete_object(Bucket=BUCKET, Key=key)

    # ---- PostgreSQL -----------------------------------------------------------

    def wait_for_worker(self):
        """Waits until the background worker has carried out what committed
        and aborted transactions left it (deletes after commit, the undo of
        aborted writes)."""
        assert self.value("SELECT so_wait_for_worker('1 minute')"), "the worker did not catch up in a minute"

    def register(self, key, subprefix, conn=None, **options):
        """Registers an S3 backend on s3://test-bucket/<prefix>/<subprefix>
        with the fixture's endpoint and credentials (overridable by options;
        a None value leaves an option out). Returns the full key prefix of its
        objects in the bucket."""
        opts = {"endpoint": self.endpoint, "region": self.region, "allow_http": True,
                "access_key_id": self.access_key, "secret_access_key": self.secret_key}
        opts.update(options)
        opts = {k: v for k, v in opts.items() if v is not None}
        self.sql("SELECT so_register_backend(%s, %s, %s)",
                 (key, "s3://%s/%s/%s" % (BUCKET, self.prefix, subprefix), json.dumps(opts)), conn)
        return "%s/%s/" % (self.prefix, subprefix)

    # ---- S3 through independent clients -------------------------------------

    def boto3_client(self, access_key=None, secret_key=None, token=None):
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=token,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                          retries={"total_max_attempts": 1, "mode": "standard"},
                          connect_timeout=5, read_timeout=120))

    def head(self, key):
        """boto3 head_object, or None on 404."""
        try:
            return self.s3.head_object(Bucket=BUCKET, Key=key)
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def get_bytes(self, key):
        return self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

    def list_keys(self, subprefix):
        """Every key under <prefix>/<subprefix>, through paginated ListObjectsV2."""
        keys = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix="%s/%s" % (self.prefix, subprefix)):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def multipart_uploads(self, key_prefix):
        return self.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=key_prefix).get("Uploads", [])

    def aws(self, *args, access_key=None, secret_key=None, token=None):
        """Debian's AWS CLI against the fixture, with no configuration file."""
        e = dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
                 AWS_ACCESS_KEY_ID=access_key or self.access_key,
                 AWS_SECRET_ACCESS_KEY=secret_key or self.secret_key,
                 AWS_DEFAULT_REGION=self.region, AWS_PAGER="", AWS_EC2_METADATA_DISABLED="true")
        e.pop("AWS_SESSION_TOKEN", None)
        if token:
            e["AWS_SESSION_TOKEN"] = token
        result = subprocess.run([AWS, "--endpoint-url", self.endpoint] + list(args), env=e,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        if result.returncode != 0:
            raise AssertionError("aws %s failed (%d): %s" % (" ".join(args), result.returncode,
                                                             result.stderr.decode(errors="replace")))
        out = result.stdout.decode()
        return json.loads(out) if out.strip().startswith("{") else out


def main(fx, cases):
    """Runs the cases against fx (started first, stopped last, whatever
    happens); prints "N passed, N failed" last; returns the exit status."""
    return runner.run(fx.name, fx, cases,
                      lambda: ["database %s remains" % fx.dbname] if fx.created_db else [])
