"""S3 and GCS credentials the database server finds by itself, end to end.

A cluster of this test's own is started with the environment of an ECS
task: AWS_CONTAINER_CREDENTIALS_FULL_URI and its authorization token point
at the loopback fake of the container credentials endpoint
(tests/fakes/credential_endpoints.py), which hands out the S3 fixture's
temporary credentials with a short lifetime. A backend registered with
"credentials": "default" then writes to the S3 fixture (which verifies the
signatures and the session token), renews its credentials before they
expire, and names the provider when the endpoint refuses, with no secret in
the message. The same cluster has GCE_METADATA_HOST pointing at the fake's
metadata server, and gs:// backends with "credentials": "metadata" or
"service_account" (a key file whose token_uri is the fake's Google token
endpoint, which checks the JWT's signature) write to the S3 fixture in its
GCS mode, which takes those tokens as OAuth bearer tokens. The providers
one by one are tested in tests/unit/aws_credential_chain_test.cpp and
tests/unit/gcs_credentials_test.cpp.

Environment: the S3 fixture's (S3_ENDPOINT, ...; see s3support.py), set by
scripts/test.sh. Run as root (the cluster runs as postgres).
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
import runner  # noqa: E402
import s3support  # noqa: E402

import psycopg2  # noqa: E402
from credential_endpoints import CredentialEndpoints  # noqa: E402

CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")
RUN_FIXTURE = os.path.join(REPO, "tests", "s3", "run-fixture.sh")
SERVICE_ACCOUNT = os.path.join(REPO, "tests", "unit", "data", "gcs_test_service_account.json")
GCS_TOKENS = ["gce-token-one", "gce-token-two"]
GCS_BUCKET = "gcs-bucket"
PG_BIN = subprocess.run(["pg_config", "--bindir"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
TOKEN = "Bearer ecs-task-token"
LIFETIME = 8  # seconds: renewed once under a quarter of it (2 s) is left


def as_postgres(args, env=None):
    cmd = ["runuser", "-u", "postgres", "--", "env"] + ["%s=%s" % kv for kv in (env or {}).items()] + list(args)
    out = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(args), out.stdout.decode(errors="replace")))


class Fixture:
    name = "test_ambient_credentials"

    def __init__(self):
        self.fake = None
        self.dir = None
        self.port = None
        self.prefix = "so_systest/ambient-%d/" % os.getpid()

    def start(self):
        self.endpoint = s3support.env("S3_ENDPOINT")
        self.dir = tempfile.mkdtemp(prefix="so_ambient_", dir=os.environ.get("SO_TEST_TMPDIR"))
        os.chmod(self.dir, 0o755)
        with open(SERVICE_ACCOUNT) as f:
            account = json.load(f)
        public_key = subprocess.run(["openssl", "pkey", "-pubout"], input=account["private_key"].encode(),
                                    stdout=subprocess.PIPE, check=True).stdout.decode()
        self.fake = CredentialEndpoints({
            "lifetime_seconds": LIFETIME,
            "reuse_until_expiry": True,
            "credentials": [{"access_key_id": s3support.TEMP_ACCESS_KEY,
                             "secret_access_key": s3support.TEMP_SECRET_KEY,
                             "session_token": s3support.TEMP_SESSION_TOKEN}],
            "aws": {"container_authorization_token": TOKEN},
            "gce": {"service_account_email": account["client_email"], "access_tokens": GCS_TOKENS,
                    "service_account_public_key": public_key}})
        self.fake.start()
        # The service account's key file, for the server alone, pointing at
        # the fake's token endpoint.
        account["token_uri"] = self.fake.url + "/token"
        self.key_file = os.path.join(self.dir, "service-account.json")
        with open(self.key_file, "w") as f:
            json.dump(account, f)
        postgres = pwd.getpwnam("postgres")
        os.chown(self.key_file, postgres.pw_uid, postgres.pw_gid)
        os.chmod(self.key_file, 0o600)
        # The S3 fixture in its GCS mode, taking the fake's tokens.
        self.gcs_port = free_port()
        out = subprocess.run([RUN_FIXTURE, "start", os.path.join(self.dir, "gcs"), str(self.gcs_port), "--gcs",
                              "--gcs-bearer-tokens", ",".join(GCS_TOKENS)],
                             env=dict(os.environ, S3_FIXTURE_BUCKETS=GCS_BUCKET,
                                      S3_FIXTURE_CREDENTIALS="GOOG1UNUSEDHMACID:unused-secret"),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("the GCS-mode fixture did not start:\n" + out.stdout.decode(errors="replace"))
        out = subprocess.run([CLUSTER_SH, "start", self.dir], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("cluster.sh start failed:\n" + out.stdout.decode(errors="replace"))
        self.port = int(out.stdout.decode().split()[-1])
        # Again, with the environment an ECS task gives its containers.
        data = os.path.join(self.dir, "data")
        as_postgres([PG_BIN + "/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
        options = ("-p %d -k %s/sock -c listen_addresses='' -c fsync=off "
                   "-c shared_preload_libraries=stored_object" % (self.port, self.dir))
        as_postgres([PG_BIN + "/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "server.log"), "-w",
                     "-o", options, "start"],
                    env={"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.fake.url + "/v2/credentials/fake-task",
                         "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
                         "AWS_EC2_METADATA_DISABLED": "true",
                         "GCE_METADATA_HOST": self.fake.url[len("http://"):]})
        with self.connect() as conn:
            conn.cursor().execute("CREATE EXTENSION stored_object")

    def stop(self):
        try:
            if self.port:
                with self.connect() as conn:
                    cur = conn.cursor()
                    cur.execute("SELECT key FROM so_backends")
                    for (key,) in cur.fetchall():
                        cur.execute("SELECT so_delete(o) FROM so_list(%s) o", (key,))
        except Exception:
            pass
        if self.dir:
            subprocess.run([CLUSTER_SH, "stop", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.run([RUN_FIXTURE, "stop", os.path.join(self.dir, "gcs")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            shutil.rmtree(self.dir, ignore_errors=True)
        if self.fake:
            self.fake.stop()

    def connect(self):
        conn = psycopg2.connect(host=os.path.join(self.dir, "sock"), port=self.port, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        return conn

    def register(self, conn, key):
        conn.cursor().execute(
            "SELECT so_register_backend(%s, %s, jsonb_build_object('endpoint', %s::text, 'allow_http', true, "
            "'region', %s::text, 'credentials', 'default'))",
            (key, "s3://%s/%s%s" % (s3support.BUCKET, self.prefix, key), self.endpoint,
             os.environ.get("S3_REGION") or "us-east-1"))

    def register_gcs(self, conn, key, **options):
        options.update({"endpoint": "http://127.0.0.1:%d" % self.gcs_port, "allow_http": True})
        conn.cursor().execute("SELECT so_register_backend(%s, %s, %s)",
                              (key, "gs://%s/%s" % (GCS_BUCKET, key), json.dumps(options)))

    def token_requests(self, service):
        return [r for r in self.fake.requests() if r["service"] == service and r["status"] == 200]

    def container_requests(self):
        return [r for r in self.fake.requests() if r["service"] == "container"]


FX = Fixture()


class AmbientCredentialsTest(unittest.TestCase):
    def test_a_task_role_writes_and_renews_before_expiry(self):
        FX.fake.clear_requests()
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register(conn, "task_role")
        cur = conn.cursor()
        cur.execute("SELECT so_put('task_role', 'a.txt', 'written with the task''s role')::text")
        cur.execute("SELECT convert_from(so_get(so_stat('task_role', 'a.txt')), 'UTF8')")
        self.assertEqual(cur.fetchone()[0], "written with the task's role")
        requests = FX.container_requests()
        self.assertEqual(len(requests), 1)
        self.assertEqual(requests[0]["secrets"], {"Authorization": "match"})
        first = time.time()

        # Kept while they are fresh: no request for the next object.
        cur.execute("SELECT so_put('task_role', 'b.txt', 'b')::text")
        self.assertEqual(len(FX.container_requests()), 1)

        # Under a quarter of the lifetime left, before they expire: fetched
        # again, then used. The fake's expiry is the issue time plus the
        # lifetime, rounded up to a whole second.
        deadline = first + LIFETIME - LIFETIME // 4 + 1
        while time.time() < deadline:
            time.sleep(0.1)
        cur.execute("SELECT so_put('task_role', 'c.txt', 'c')::text")
        self.assertEqual(len(FX.container_requests()), 2)
        cur.execute("SELECT count(*) FROM so_list('task_role')")
        self.assertEqual(cur.fetchone()[0], 3)

    def test_a_refusing_endpoint_is_named_without_secrets(self):
        FX.fake.add_fault({"path_prefix": "/v2/credentials", "status": 403, "count": -1})
        self.addCleanup(FX.fake.clear_faults)
        conn = FX.connect()  # a new session: no credentials kept yet
        self.addCleanup(conn.close)
        FX.register(conn, "refused_role")
        with self.assertRaises(psycopg2.Error) as caught:
            conn.cursor().execute("SELECT so_put('refused_role', 'x.txt', 'x')")
        e = caught.exception
        self.assertEqual(e.pgcode, "42501", e.pgerror)
        self.assertIn("refused_role", e.diag.message_primary)
        self.assertIn("container credential provider", e.diag.message_primary)
        self.assertIn("HTTP 403", e.diag.message_primary)
        self.assertIn("passed over", e.diag.message_detail or "")
        for secret in (s3support.TEMP_SECRET_KEY, s3support.TEMP_SESSION_TOKEN, TOKEN):
            self.assertNotIn(secret, e.pgerror)


class GcsTokenTest(unittest.TestCase):
    def roundtrip(self, key, service, **options):
        FX.fake.clear_requests()
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register_gcs(conn, key, **options)
        cur = conn.cursor()
        cur.execute("SELECT so_put(%s, 'a.txt', 'with a Google token')::text", (key,))
        cur.execute("SELECT convert_from(so_get(so_stat(%s, 'a.txt')), 'UTF8')", (key,))
        self.assertEqual(cur.fetchone()[0], "with a Google token")
        cur.execute("SELECT so_delete(so_stat(%s, 'a.txt'))", (key,))
        self.assertEqual(len(FX.token_requests(service)), 1)  # one token for all of it
        return FX.token_requests(service)[0]

    def test_metadata_server_token(self):
        request = self.roundtrip("gcs_metadata", "gce_metadata", credentials="metadata")
        self.assertEqual(request["expected_headers"], {"Metadata-Flavor": True})

    def test_service_account_token(self):
        request = self.roundtrip("gcs_sa", "google_oauth", credentials="service_account",
                                 service_account_file=FX.key_file)
        self.assertEqual(request["secrets"], {"signature": "match"})

    def test_a_token_the_store_refuses(self):
        FX.fake.configure({"gce": {"access_tokens": ["a-token-the-store-does-not-know"]}})
        self.addCleanup(FX.fake.configure, {"gce": {"access_tokens": GCS_TOKENS}})
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register_gcs(conn, "gcs_refused", credentials="metadata")
        with self.assertRaises(psycopg2.Error) as caught:
            conn.cursor().execute("SELECT so_put('gcs_refused', 'x.txt', 'x')")
        self.assertEqual(caught.exception.pgcode, "42501", caught.exception.pgerror)
        self.assertNotIn("a-token-the-store-does-not-know", caught.exception.pgerror)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [AmbientCredentialsTest, GcsTokenTest]))
