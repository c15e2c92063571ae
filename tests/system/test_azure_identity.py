"""Azure backends with Entra tokens of the server's own, end to end.

Azurite runs here over HTTPS with a throwaway certificate and its "basic"
OAuth check (a token must be a JWT for Azure Storage's audience, from an
Entra issuer, in its validity window; Azurite does not check the
signature). The loopback fake of the token endpoints
(tests/fakes/credential_endpoints.py) hands out such tokens, as the
instance metadata service (managed identity), as the local endpoint of App
Service and Container Apps (managed identity there, IDENTITY_ENDPOINT) and
as the Entra token endpoint (workload identity, for a federated token
file; a service principal, for AZURE_CLIENT_SECRET and for
AZURE_CLIENT_CERTIFICATE_PATH, whose JWT it verifies with the certificate). A cluster of this
test's own is started with the environment AKS and Azure VMs give, and
backends registered with "credentials" and "ca_file" (the certificate)
write, read, copy, sign URLs with a user delegation key, and renew their
token before it expires. The official SDK (with the account key) reads
back what they wrote.

Run as root (the cluster runs as postgres), from scripts/test.sh or alone.
"""

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))
import runner  # noqa: E402

import psycopg2  # noqa: E402
from credential_endpoints import CredentialEndpoints  # noqa: E402

AZURE = os.path.join(REPO, "tests", "azure")
AZURITE_MAIN = os.path.join(AZURE, "node_modules", "azurite", "dist", "src", "blob", "main.js")
SDK_CLIENT = os.path.join(AZURE, "sdkclient.mjs")
CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")
PG_BIN = subprocess.run(["pg_config", "--bindir"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==")
TENANT = "00000000-0000-0000-0000-00000000000a"
CLIENT = "00000000-0000-0000-0000-00000000000c"
ASSERTION = "federated-token-of-the-pod"
CONTAINER = "identity-container"
APP_SERVICE_SECRET = "identity-header-of-the-app"
CLIENT_SECRET = "client-secret-of-the-service-principal"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(n, lifetime):
    """An unsigned-looking JWT Azurite's basic check accepts; n tells tokens apart."""
    now = int(time.time())
    header = {"alg": "RS256", "typ": "JWT"}
    payload = {"aud": "https://storage.azure.com", "iss": "https://sts.windows.net/%s/" % TENANT,
               "iat": now, "nbf": now - 60, "exp": now + lifetime, "oid": "11111111-2222-3333-4444-55555555555%d" % n,
               "tid": TENANT, "appid": CLIENT, "n": n}
    return ".".join([b64url(json.dumps(header).encode()), b64url(json.dumps(payload).encode()), b64url(b"sig")])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_postgres(args, env=None):
    cmd = ["runuser", "-u", "postgres", "--", "env"] + ["%s=%s" % kv for kv in (env or {}).items()] + list(args)
    out = subprocess.run(cmd, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=120)
    if out.returncode != 0:
        raise RuntimeError("%s failed:\n%s" % (" ".join(args), out.stdout.decode(errors="replace")))


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for " + what)
        time.sleep(0.05)


class Fixture:
    name = "test_azure_identity"

    def __init__(self):
        self.dir = self.azurite = self.fake = self.port = None

    def start(self):
        if not os.path.exists(AZURITE_MAIN):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=AZURE, check=True)
        self.dir = tempfile.mkdtemp(prefix="so_azid_", dir=os.environ.get("SO_TEST_TMPDIR"))
        os.chmod(self.dir, 0o755)
        self.cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out",
                        self.cert], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(self.cert, 0o644)
        self.azurite_port = free_port()
        self.endpoint = "https://127.0.0.1:%d/%s" % (self.azurite_port, ACCOUNT)
        log = open(os.path.join(self.dir, "azurite.log"), "wb")
        self.azurite = subprocess.Popen(
            ["node", AZURITE_MAIN, "--blobHost", "127.0.0.1", "--blobPort", str(self.azurite_port), "--location",
             os.path.join(self.dir, "azurite"), "--oauth", "basic", "--cert", self.cert, "--key", key,
             "--skipApiVersionCheck", "--disableTelemetry", "--disableProductStyleUrl"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        context = ssl.create_default_context(cafile=self.cert)

        def answers():
            try:
                urllib.request.urlopen(self.endpoint + "?comp=list", context=context, timeout=1)
            except urllib.error.HTTPError:
                return True  # any HTTP answer: it listens
            except OSError:
                return False
            return True
        wait_until(answers, 60, "Azurite over HTTPS")
        self.sdk(["create-container", CONTAINER])

        self.fake = CredentialEndpoints({"lifetime_seconds": 3600,
                                         "azure": {"tenant_id": TENANT, "client_id": CLIENT,
                                                   "client_assertion": ASSERTION,
                                                   "identity_header": APP_SERVICE_SECRET,
                                                   "client_secret": CLIENT_SECRET,
                                                   "access_tokens": [jwt(n, 3600) for n in range(1, 9)]}})
        self.fake.start()
        token_file = os.path.join(self.dir, "federated-token")
        with open(token_file, "w") as f:
            f.write(ASSERTION + "\n")
        os.chmod(token_file, 0o644)

        out = subprocess.run([CLUSTER_SH, "start", os.path.join(self.dir, "cluster")], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError("cluster.sh start failed:\n" + out.stdout.decode(errors="replace"))
        self.port = int(out.stdout.decode().split()[-1])
        # Again, with the environment AKS (workload identity) and Azure VMs
        # (the metadata service) give.
        self.environment = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": self.fake.url,
                            "AZURE_AUTHORITY_HOST": self.fake.url, "AZURE_TENANT_ID": TENANT,
                            "AZURE_CLIENT_ID": CLIENT, "AZURE_FEDERATED_TOKEN_FILE": token_file}
        self.restart()
        with self.connect() as conn:
            conn.cursor().execute("CREATE EXTENSION stored_object")

    def restart(self, more_environment=None):
        """The server again, with this environment (and more)."""
        cluster = os.path.join(self.dir, "cluster")
        data = os.path.join(cluster, "data")
        as_postgres([PG_BIN + "/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
        options = ("-p %d -k %s/sock -c listen_addresses='' -c fsync=off "
                   "-c shared_preload_libraries=stored_object" % (self.port, cluster))
        as_postgres([PG_BIN + "/pg_ctl", "-D", data, "-l", os.path.join(cluster, "server.log"), "-w",
                     "-o", options, "start"],
                    env=dict(self.environment, **(more_environment or {})))

    def stop(self):
        if self.port:
            subprocess.run([CLUSTER_SH, "stop", os.path.join(self.dir, "cluster")], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        if self.azurite:
            self.azurite.terminate()
            self.azurite.wait(30)
        if self.fake:
            self.fake.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def sdk(self, args):
        env = dict(os.environ, AZURE_ENDPOINT=self.endpoint, AZURE_ACCOUNT=ACCOUNT, AZURE_ACCOUNT_KEY=ACCOUNT_KEY,
                   NODE_EXTRA_CA_CERTS=self.cert)
        out = subprocess.run(["node", SDK_CLIENT] + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             timeout=60)
        if out.returncode != 0:
            raise AssertionError("sdkclient %s failed: %s" % (" ".join(args), out.stderr.decode(errors="replace")))
        return json.loads(out.stdout or b"null")

    def connect(self):
        conn = psycopg2.connect(host=os.path.join(self.dir, "cluster", "sock"), port=self.port, user="postgres",
                                dbname="postgres")
        conn.autocommit = True
        return conn

    def register(self, conn, key, credentials):
        conn.cursor().execute(
            "SELECT so_register_backend(%s, %s, jsonb_build_object('account', %s::text, 'endpoint', %s::text, "
            "'credentials', %s::text, 'ca_file', %s::text))",
            (key, "az://%s/%s" % (CONTAINER, key), ACCOUNT, self.endpoint, credentials, self.cert))

    def token_requests(self, service):
        return [r for r in self.fake.requests() if r["service"] == service and r["status"] == 200]


FX = Fixture()


class IdentityBase(unittest.TestCase):
    def roundtrip(self, key, credentials, service):
        FX.fake.clear_requests()
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register(conn, key, credentials)
        cur = conn.cursor()
        cur.execute("SELECT so_put(%s, 'a.txt', convert_to('with a token of the server''s own', 'UTF8'), "
                    "metadata => '{\"owner\": \"pod\"}')::text", (key,))
        value = json.loads(cur.fetchone()[0])
        self.assertEqual(value["size"], 32)
        cur.execute("SELECT convert_from(so_get(so_stat(%s, 'a.txt')), 'UTF8')", (key,))
        self.assertEqual(cur.fetchone()[0], "with a token of the server's own")
        # The SDK, with the account key, reads what the token wrote.
        out = os.path.join(FX.dir, key + ".out")
        props = FX.sdk(["get", CONTAINER, key + "/a.txt", out])
        with open(out, "rb") as f:
            self.assertEqual(f.read(), b"with a token of the server's own")
        self.assertEqual(props["metadata"], {"owner": "pod"})
        # One token for all of it.
        self.assertEqual(len(FX.token_requests(service)), 1)
        return conn

    def put_refused(self, key, credentials):
        """Registers key with these credentials; the error of its first put."""
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register(conn, key, credentials)
        with self.assertRaises(psycopg2.Error) as caught:
            conn.cursor().execute("SELECT so_put(%s, 'x.txt', 'x')", (key,))
        return caught.exception


class AzureIdentityTest(IdentityBase):
    def test_managed_identity(self):
        self.roundtrip("az_mi", "managed_identity", "azure_imds")
        (imds,) = FX.token_requests("azure_imds")
        self.assertEqual(imds["expected_headers"].get("Metadata"), True)

    def test_workload_identity(self):
        self.roundtrip("az_wi", "workload_identity", "entra")
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["method"], "POST")
        self.assertEqual(entra["path"], "/%s/oauth2/v2.0/token" % TENANT)

    def test_default_takes_workload_identity_first(self):
        self.roundtrip("az_default", "default", "entra")
        self.assertEqual(FX.token_requests("azure_imds"), [])
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["secrets"], {"client_assertion": "match"})

    def test_client_secret_without_its_variable(self):
        e = self.put_refused("az_no_secret", "client_secret")
        self.assertEqual(e.pgcode, "55000", e.pgerror)
        self.assertEqual(e.diag.message_primary, 'storage backend "az_no_secret" found no Azure credentials')
        self.assertIn("tried client_secret: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not all set",
                      e.diag.message_detail or e.diag.message_hint or "")

    def test_user_delegation_sas_and_server_side_copy(self):
        conn = self.roundtrip("az_sas", "managed_identity", "azure_imds")
        cur = conn.cursor()
        cur.execute("SELECT so_sign(so_stat('az_sas', 'a.txt'), download_as => 'report.txt')")
        url = cur.fetchone()[0]
        self.assertIn("skoid=", url)
        self.assertIn("sig=", url)
        context = ssl.create_default_context(cafile=FX.cert)
        with urllib.request.urlopen(url, context=context, timeout=10) as r:
            self.assertEqual(r.read(), b"with a token of the server's own")
            self.assertIn("report.txt", r.headers["Content-Disposition"])
        # A tampered URL is refused.
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(url.replace("sp=r", "sp=rw"), context=context, timeout=10)
        self.assertEqual(caught.exception.code, 403)
        # A second URL needs no second delegation key request (one per week of URLs).
        cur.execute("SELECT so_sign(so_stat('az_sas', 'a.txt'))")
        cur.execute("SELECT so_copy(so_stat('az_sas', 'a.txt'), 'az_sas', 'copy.txt')::text")
        cur.execute("SELECT convert_from(so_get(so_stat('az_sas', 'copy.txt')), 'UTF8')")
        self.assertEqual(cur.fetchone()[0], "with a token of the server's own")

    def test_token_renewed_before_it_expires(self):
        FX.fake.configure({"lifetime_seconds": 8})
        self.addCleanup(FX.fake.configure, {"lifetime_seconds": 3600})
        FX.fake.clear_requests()
        conn = FX.connect()
        self.addCleanup(conn.close)
        FX.register(conn, "az_renew", "managed_identity")
        cur = conn.cursor()
        cur.execute("SELECT so_put('az_renew', 'one.txt', 'one')::text")
        first = time.time()
        self.assertEqual(len(FX.token_requests("azure_imds")), 1)
        cur.execute("SELECT so_put('az_renew', 'two.txt', 'two')::text")
        self.assertEqual(len(FX.token_requests("azure_imds")), 1)
        # Under a quarter of the 8 s lifetime left (expiry rounded up to a second).
        while time.time() < first + 7:
            time.sleep(0.1)
        cur.execute("SELECT so_put('az_renew', 'three.txt', 'three')::text")
        self.assertEqual(len(FX.token_requests("azure_imds")), 2)

    def test_refused_token_is_named_without_secrets(self):
        FX.fake.add_fault({"path_prefix": "/metadata/identity", "status": 400, "count": -1})
        self.addCleanup(FX.fake.clear_faults)
        e = self.put_refused("az_refused", "managed_identity")
        self.assertEqual(e.pgcode, "42501", e.pgerror)
        self.assertIn("az_refused", e.diag.message_primary)
        self.assertIn("managed_identity token provider", e.diag.message_primary)
        self.assertNotIn("eyJ", e.pgerror)  # no token

    def test_only_a_superuser_uses_the_servers_identity(self):
        conn = FX.connect()
        self.addCleanup(conn.close)
        cur = conn.cursor()
        cur.execute("CREATE ROLE so_azid_admin LOGIN")
        self.addCleanup(lambda: FX.connect().cursor().execute("DROP ROLE so_azid_admin"))
        cur.execute("SELECT so_grant_admin('so_azid_admin')")
        self.addCleanup(lambda: FX.connect().cursor().execute("SELECT so_revoke_admin('so_azid_admin')"))
        admin = psycopg2.connect(host=os.path.join(FX.dir, "cluster", "sock"), port=FX.port, user="so_azid_admin",
                                 dbname="postgres")
        admin.autocommit = True
        self.addCleanup(admin.close)
        with self.assertRaises(psycopg2.Error) as caught:
            FX.register(admin, "az_admin", "managed_identity")
        self.assertEqual(caught.exception.pgcode, "42501")
        self.assertIn("\"credentials\": \"managed_identity\"", caught.exception.diag.message_detail)



class AppServiceIdentityTest(IdentityBase):
    """The server as App Service, Functions and Container Apps run it:
    IDENTITY_ENDPOINT and IDENTITY_HEADER come before the metadata service."""

    @classmethod
    def setUpClass(cls):
        FX.restart({"IDENTITY_ENDPOINT": FX.fake.url + "/msi/token", "IDENTITY_HEADER": APP_SERVICE_SECRET})

    @classmethod
    def tearDownClass(cls):
        FX.restart()

    def test_managed_identity_asks_the_hosting_service(self):
        self.roundtrip("az_app", "managed_identity", "azure_app_service")
        self.assertEqual(FX.token_requests("azure_imds"), [])
        (asked,) = FX.token_requests("azure_app_service")
        self.assertEqual(asked["secrets"], {"X-IDENTITY-HEADER": "match"})
        self.assertEqual(asked["query"]["api-version"], "2019-08-01")

    def test_wrong_secret_is_refused_without_showing_it(self):
        FX.fake.configure({"azure": {"identity_header": "another-secret"}})
        self.addCleanup(FX.fake.configure, {"azure": {"identity_header": APP_SERVICE_SECRET}})
        e = self.put_refused("az_app_refused", "managed_identity")
        self.assertEqual(e.pgcode, "42501", e.pgerror)
        self.assertIn("managed_identity token provider was refused a token: HTTP 401", e.diag.message_primary)
        self.assertNotIn(APP_SERVICE_SECRET, e.pgerror + (e.diag.message_detail or ""))


class ClientSecretTest(IdentityBase):
    """A service principal's secret in AZURE_CLIENT_SECRET: "client_secret",
    and first in "default", as in the SDKs' DefaultAzureCredential."""

    @classmethod
    def setUpClass(cls):
        FX.restart({"AZURE_CLIENT_SECRET": CLIENT_SECRET})

    @classmethod
    def tearDownClass(cls):
        FX.restart()

    def test_client_secret(self):
        self.roundtrip("az_secret", "client_secret", "entra")
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["secrets"], {"client_secret": "match"})
        self.assertEqual(entra["form"]["client_secret"], "<redacted>")

    def test_default_takes_the_secret_first(self):
        self.roundtrip("az_secret_default", "default", "entra")
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["secrets"], {"client_secret": "match"})

    def test_wrong_secret_is_refused_without_showing_it(self):
        FX.fake.configure({"azure": {"client_secret": "another-secret"}})
        self.addCleanup(FX.fake.configure, {"azure": {"client_secret": CLIENT_SECRET}})
        e = self.put_refused("az_secret_refused", "default")
        # The chain stops at a provider that is set up and fails, as the SDKs' does.
        self.assertEqual(e.pgcode, "42501", e.pgerror)
        self.assertIn("client_secret token provider was refused a token: HTTP 401 invalid_client",
                      e.diag.message_primary)
        self.assertEqual(FX.token_requests("azure_imds"), [])
        self.assertNotIn(CLIENT_SECRET, e.pgerror + (e.diag.message_detail or ""))


class ClientCertificateTest(IdentityBase):
    """A service principal's certificate in AZURE_CLIENT_CERTIFICATE_PATH (a
    PEM file with the key and the certificate): "client_certificate", and in
    "default" after a client secret, as EnvironmentCredential takes them."""

    @classmethod
    def setUpClass(cls):
        cls.path = os.path.join(FX.dir, "service-principal.pem")
        cls.pem, cls.certificate = cls.make_certificate("service-principal")
        cls.write(cls.pem)
        FX.fake.configure({"azure": {"client_certificate": cls.certificate}})
        FX.restart({"AZURE_CLIENT_CERTIFICATE_PATH": cls.path})

    @classmethod
    def tearDownClass(cls):
        FX.fake.configure({"azure": {"client_certificate": None}})
        FX.restart()

    @staticmethod
    def make_certificate(name):
        """(key and certificate, certificate), both PEM."""
        key, cert = os.path.join(FX.dir, name + ".key"), os.path.join(FX.dir, name + ".crt")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=" + name, "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with open(key) as k, open(cert) as c:
            key_pem, cert_pem = k.read(), c.read()
        os.unlink(key)
        return key_pem + cert_pem, cert_pem

    @classmethod
    def write(cls, content):
        """The file as the server's OS user alone may read it."""
        with open(cls.path, "w") as f:
            f.write(content)
        os.chmod(cls.path, 0o600)
        shutil.chown(cls.path, "postgres", "postgres")

    def test_client_certificate(self):
        self.roundtrip("az_cert", "client_certificate", "entra")
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["secrets"], {"client_certificate": "match"})
        self.assertEqual(entra["form"]["client_assertion_type"],
                         "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")

    def test_default_takes_the_certificate_before_workload_identity(self):
        self.roundtrip("az_cert_default", "default", "entra")
        (entra,) = FX.token_requests("entra")
        self.assertEqual(entra["secrets"], {"client_certificate": "match"})

    def test_another_certificate_is_refused(self):
        _, other = self.make_certificate("another-principal")
        FX.fake.configure({"azure": {"client_certificate": other}})
        self.addCleanup(FX.fake.configure, {"azure": {"client_certificate": self.certificate}})
        e = self.put_refused("az_cert_refused", "client_certificate")
        self.assertEqual(e.pgcode, "42501", e.pgerror)
        self.assertIn("client_certificate token provider was refused a token: HTTP 401 invalid_client",
                      e.diag.message_primary)
        self.assertNotIn("PRIVATE KEY", e.pgerror + (e.diag.message_detail or ""))

    def test_a_file_without_its_certificate_or_key(self):
        self.addCleanup(self.write, self.pem)
        split = self.pem.index("-----BEGIN CERTIFICATE-----")
        for n, (content, message) in enumerate(
                ((self.pem[:split], "holds no certificate in PEM beside its key"),
                 (self.pem[split:], "is not an RSA private key in PEM"))):
            with self.subTest(message=message):
                self.write(content)
                e = self.put_refused("az_cert_broken_%d" % n, "client_certificate")
                self.assertEqual(e.pgcode, "55000", e.pgerror)
                self.assertIn('AZURE_CLIENT_CERTIFICATE_PATH ("%s") %s' % (self.path, message),
                              e.diag.message_primary)
                self.assertNotIn("PRIVATE KEY", e.pgerror)

if __name__ == "__main__":
    sys.exit(runner.run(FX.name, FX, [AzureIdentityTest, AppServiceIdentityTest, ClientSecretTest,
                                      ClientCertificateTest]))
