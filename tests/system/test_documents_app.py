#!/usr/bin/python3
"""System test: the documents example app (examples/documents/) in a real browser.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_documents_app.py

with PGHOST/PGPORT/PGUSER naming a running cluster (the stored_object
extension installed), SO_TEST_TMPDIR a directory the postgres user owns and
the S3 fixture's S3_* variables. Needs Debian's chromium, chromium-driver,
python3-selenium and nginx.

For each kind of backend, with its own database, app process and headless
Chromium page:

- S3 (the fixture; the bucket's CORS lets the app's origin POST);
- local (nginx_secure_link), nginx serving the app (proxy_pass) and the
  signed /files/ downloads and PUT uploads from one origin, running as
  www-data in a throwaway group that owns the backend directory;

it does what a person would: chooses files and uploads a small one through
the app, a large one straight to the store (the progress bar fills, the row
appears), follows the download links (the bytes are what was uploaded),
sees refusals (too large, wrong type) in the page, and deletes a document
(the row goes, and after the worker ran the object is gone from the store).
Screenshots go to $SO_TEST_ARTIFACTS, else build/artifacts/documents/.
Everything it started or created is removed again, whatever happens.

The last line of output is "N passed, N failed".
"""

import os

os.environ["BOTO_DISABLE_CRT"] = "true"

import grp  # noqa: E402
import json  # noqa: E402
import pwd  # noqa: E402
import secrets  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import unittest  # noqa: E402
import urllib.request  # noqa: E402

import boto3  # noqa: E402
import psycopg2  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

import nginxsupport  # noqa: E402
import runner  # noqa: E402
from nginxsupport import free_port, stop_process, wait_port  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
APP = os.path.join(REPO, "examples", "documents", "app.py")
ARTIFACTS = os.environ.get("SO_TEST_ARTIFACTS") or os.path.join(REPO, "build", "artifacts", "documents")
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"
BUCKET = "test-bucket"
MIB = 1024 * 1024
MAX_SIZE = 6 * MIB                     # the backends' max_size
ALLOWED = ["application/pdf", "image/*", "text/plain"]
WAIT = 90                              # seconds for any browser condition: a loaded 2-core machine


class Fixture:
    """The browser, a scratch directory, and a stack of cleanups that every
    site (database, app, nginx, group, CORS rule) pushes onto: stop() runs
    what is left of it, so a failed setUpClass leaves nothing behind."""

    def __init__(self):
        self.cleanups = []
        self.tmp = None
        self.driver = None
        self.databases = []
        self.groups = []
        self.processes = []
        self.dirs = []

    def defer(self, fn, *args):
        self.cleanups.append((fn, args))
        return len(self.cleanups)

    def unwind(self, down_to=0):
        while len(self.cleanups) > down_to:
            fn, args = self.cleanups.pop()
            try:
                fn(*args)
            except Exception:
                traceback.print_exc(file=sys.stdout)

    def start(self):
        os.makedirs(ARTIFACTS, exist_ok=True)
        # Under SO_TEST_TMPDIR: the server (postgres) and nginx (www-data) reach the backend directory.
        self.tmp = tempfile.mkdtemp(prefix="so-documents-", dir=os.environ.get("SO_TEST_TMPDIR") or None)
        os.chmod(self.tmp, 0o755)
        self.dirs.append(self.tmp)
        self.defer(shutil.rmtree, self.tmp, True)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,700",
                    "--user-data-dir=" + os.path.join(self.tmp, "chromium"), "--no-first-run",
                    "--disable-gpu", "--disable-extensions"):
            opts.add_argument(arg)
        service = Service(CHROMEDRIVER, log_path=os.path.join(self.tmp, "chromedriver.log"))
        self.driver = webdriver.Chrome(service=service, options=opts)
        self.defer(self.quit_browser, service)
        self.driver.set_page_load_timeout(WAIT)
        # A 1000x700 page: the window's frame on top of that.
        frame = self.driver.execute_script("return window.outerHeight - window.innerHeight")
        self.driver.set_window_size(1000, 700 + max(0, int(frame)))
        self.driver.set_script_timeout(WAIT)

    def quit_browser(self, service):
        try:
            self.driver.quit()
        finally:
            service.stop()

    def stop(self):
        self.unwind()

    def leftovers(self):
        left = [d for d in self.dirs if os.path.exists(d)]
        left += ["group " + g for g in self.groups if group_exists(g)]
        left += ["process %d" % p.pid for p in self.processes if p.poll() is None]
        if self.databases:
            conn = psycopg2.connect(dbname="postgres")
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (self.databases,))
                    left += ["database " + r[0] for r in cur.fetchall()]
            finally:
                conn.close()
        return left


def group_exists(name):
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


FX = Fixture()


class Site:
    """One backend's database, app process (and, for local, nginx)."""

    def __init__(self, kind):
        self.kind = kind
        self.dbname = "so_documents_%s_%d" % (kind, os.getpid())
        self.dir = tempfile.mkdtemp(prefix=kind + "-", dir=FX.tmp)
        os.chmod(self.dir, 0o755)
        self.conn = None

    def create_database(self):
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE %s" % self.dbname)
        finally:
            admin.close()
        FX.databases.append(self.dbname)
        FX.defer(self.drop_database)
        self.conn = psycopg2.connect(dbname=self.dbname)
        self.conn.autocommit = True
        self.sql("CREATE EXTENSION stored_object")

    def drop_database(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        admin = psycopg2.connect(dbname="postgres")
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.dbname)
        finally:
            admin.close()

    def sql(self, query, args=None):
        with self.conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else None

    def start_app(self, backend):
        self.app_port = free_port()
        env = dict(os.environ, PGDATABASE=self.dbname, DOCUMENTS_BACKEND=backend,
                   DOCUMENTS_HOST="127.0.0.1", DOCUMENTS_PORT=str(self.app_port))
        self.app_log = os.path.join(self.dir, "app.log")
        with open(self.app_log, "wb") as log:
            proc = subprocess.Popen(["/usr/bin/python3", APP], env=env, stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, preexec_fn=nginxsupport.die_with_parent)
        FX.processes.append(proc)
        FX.defer(self.save_log, self.app_log, "app")
        FX.defer(stop_process, proc)
        wait_port(self.app_port, proc, "app.py")

    def save_log(self, path, name):
        if os.path.exists(path):
            shutil.copy(path, os.path.join(ARTIFACTS, "%s-%s.log" % (self.kind, name)))


class S3Site(Site):
    def start(self):
        self.endpoint = os.environ["S3_ENDPOINT"].rstrip("/")
        assert self.endpoint.startswith(("http://127.0.0.1:", "http://localhost:")), "loopback only"
        self.s3 = boto3.client(
            "s3", endpoint_url=self.endpoint, region_name=os.environ.get("S3_REGION") or "us-east-1",
            aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
            aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
        self.prefix = "so_systest/documents-%d-%s/" % (os.getpid(), secrets.token_hex(4))
        FX.defer(self.remove_objects)
        self.create_database()
        self.sql("SELECT so_register_backend('documents', %s, %s)", (
            "s3://%s/%s" % (BUCKET, self.prefix.rstrip("/")),
            json.dumps({"endpoint": self.endpoint, "region": os.environ.get("S3_REGION") or "us-east-1",
                        "allow_http": True, "access_key_id": os.environ["S3_ACCESS_KEY_ID"],
                        "secret_access_key": os.environ["S3_SECRET_ACCESS_KEY"],
                        "max_size": MAX_SIZE, "allowed_content_types": ALLOWED})))
        self.start_app("documents")
        self.origin = "http://127.0.0.1:%d" % self.app_port
        # The page (another origin) posts forms to the bucket: a CORS rule for it,
        # added to whatever the bucket had and taken out again at the end.
        try:
            before = self.s3.get_bucket_cors(Bucket=BUCKET)["CORSRules"]
        except ClientError:
            before = None
        rule = {"ID": "documents-%d" % os.getpid(), "AllowedOrigins": [self.origin],
                "AllowedMethods": ["POST", "GET"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 600}
        self.s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": (before or []) + [rule]})
        FX.defer(self.restore_cors, before)

    def restore_cors(self, before):
        if before:
            self.s3.put_bucket_cors(Bucket=BUCKET, CORSConfiguration={"CORSRules": before})
        else:
            self.s3.delete_bucket_cors(Bucket=BUCKET)

    def remove_objects(self):
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.prefix):
            for o in page.get("Contents", []):
                self.s3.delete_object(Bucket=BUCKET, Key=o["Key"])

    def control(self, method, body=None):
        req = urllib.request.Request(self.endpoint + "/__fixture/faults", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=30).close()

    def break_store(self):
        """The store answers the next browser upload with 503 SlowDown."""
        FX.defer(self.control, "DELETE")
        self.control("POST", {"mode": "error", "status": 503, "count": 1, "operation": "PostObject"})
        return "503 SlowDown"

    def mend_store(self):
        self.control("DELETE")

    def direct_uploads(self):
        """How many browser POST uploads (and their CORS preflights) the fixture has taken."""
        with urllib.request.urlopen(self.endpoint + "/__fixture/stats", timeout=30) as resp:
            ops = json.load(resp)["operations"]
        return ops.get("PostObject", 0), ops.get("PreflightRequest", 0)

    def stored(self, key):
        try:
            self.s3.head_object(Bucket=BUCKET, Key=self.prefix + key)
            return True
        except ClientError as e:
            if e.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise


class LocalSite(Site):
    def start(self):
        self.secret = "docs-" + secrets.token_hex(20)
        self.group = "so-docs-%d" % os.getpid()
        subprocess.run(["groupadd", self.group], check=True)
        FX.groups.append(self.group)
        FX.defer(subprocess.run, ["groupdel", self.group])
        # The backend directory: the server's and the group's, set-group-ID.
        self.root = os.path.join(self.dir, "files")
        os.mkdir(self.root)
        os.chown(self.root, pwd.getpwnam("postgres").pw_uid, grp.getgrnam(self.group).gr_gid)
        os.chmod(self.root, 0o2750)
        self.create_database()
        self.port = free_port()
        self.origin = "http://127.0.0.1:%d" % self.port
        self.sql("SELECT so_register_backend('documents', %s, %s)", (
            "file://" + self.root,
            json.dumps({"base_url": self.origin + "/files", "sign_scheme": "nginx_secure_link",
                        "signing_secret": self.secret, "group_access": True,
                        "max_size": MAX_SIZE, "allowed_content_types": ALLOWED})))
        self.start_app("documents")
        self.start_nginx()

    def start_nginx(self):
        d = os.path.join(self.dir, "nginx")
        os.mkdir(d)
        self.access_log = os.path.join(d, "access.log")
        # The app (small uploads go through it), then the README's locations.
        locations = f"""
        location / {{
            proxy_pass http://127.0.0.1:{self.app_port};
            proxy_http_version 1.1;
            client_max_body_size 20m;
        }}""" + nginxsupport.file_locations(self.root, self.secret, MAX_SIZE)
        proc = nginxsupport.start(d, self.port, locations, self.group)
        FX.processes.append(proc)
        FX.defer(self.save_log, os.path.join(d, "error.log"), "nginx-error")
        FX.defer(stop_process, proc)

    def break_store(self):
        """The database signs with a secret nginx does not know: nginx answers 403."""
        self.sql("SELECT so_alter_backend('documents', options => %s)",
                 (json.dumps({"signing_secret": "not-" + self.secret}),))
        return "403 Forbidden"

    def mend_store(self):
        self.sql("SELECT so_alter_backend('documents', options => %s)",
                 (json.dumps({"signing_secret": self.secret}),))

    def direct_uploads(self):
        """The PUTs nginx took into the upload area (status 2xx)."""
        if not os.path.exists(self.access_log):
            return (0,)
        with open(self.access_log) as f:
            return (sum(1 for line in f if '"PUT /files/.so-uploads/' in line and '" 20' in line),)

    def stored(self, key):
        return os.path.exists(os.path.join(self.root, key))


class DocumentsApp:
    """The user's walk through the app; S3 and local subclasses."""

    SITE = None

    @classmethod
    def setUpClass(cls):
        cls.mark = len(FX.cleanups)
        try:
            cls.site = cls.SITE()
            cls.site.start()
        except BaseException:
            FX.unwind(cls.mark)
            raise
        cls.driver = FX.driver
        d = os.path.join(cls.site.dir, "upload")
        os.mkdir(d)
        cls.files = {}
        for name, content in (
                ("notes.txt", b"minutes of the meeting\n" * 100),
                ("photo.png", b"\x89PNG\r\n\x1a\n" + os.urandom(5000)),
                ("report.pdf", b"%PDF-1.4\n" + os.urandom(3 * MIB)),      # large: straight to the store
                ("huge.pdf", b"%PDF-1.4\n" + os.urandom(MAX_SIZE)),       # beyond max_size
                ("program.bin", os.urandom(2000))):                       # a type not allowed
            path = os.path.join(d, name)
            with open(path, "wb") as f:
                f.write(content)
            cls.files[name] = (path, content)
        cls.driver.get(cls.site.origin + "/")
        cls.wait_refreshed(0)

    @classmethod
    def tearDownClass(cls):
        FX.unwind(cls.mark)

    # ---- helpers ---------------------------------------------------------

    @classmethod
    def wait(cls, condition, what):
        return WebDriverWait(cls.driver, WAIT, poll_frequency=0.1).until(
            lambda d: condition(), "timed out waiting for " + what)

    @classmethod
    def refreshes(cls):
        return int(cls.driver.execute_script("return +document.body.dataset.refreshes || 0"))

    @classmethod
    def wait_refreshed(cls, after):
        cls.wait(lambda: cls.refreshes() > after, "the document list")

    def rows(self):
        return self.driver.execute_script("""
            return [...document.querySelectorAll('#documents tbody tr')].map(tr => ({
                id: tr.dataset.id, name: tr.cells[0].textContent, type: tr.cells[1].textContent,
                size: +tr.cells[2].dataset.bytes, url: tr.querySelector('a.download').href}));""")

    def row(self, name):
        for r in self.rows():
            if r["name"] == name:
                return r
        return None

    def message(self):
        m = self.driver.find_element(By.ID, "message")
        return m.get_attribute("class"), m.text

    def screenshot(self, step):
        path = os.path.join(ARTIFACTS, "%s-%s.png" % (self.site.kind, step))
        self.assertTrue(self.driver.save_screenshot(path), path)

    def choose(self, form, name, title=""):
        box = self.driver.find_element(By.CSS_SELECTOR, "#%s input[name=name]" % form)
        box.clear()
        if title:
            box.send_keys(title)
        self.driver.find_element(By.CSS_SELECTOR, "#%s input[type=file]" % form).send_keys(self.files[name][0])

    def submit(self, form):
        before = self.refreshes()
        self.driver.find_element(By.CSS_SELECTOR, "#%s button[type=submit]" % form).click()
        return before

    def upload_small(self, name, title=""):
        self.choose("small-upload", name, title)
        before = self.submit("small-upload")
        self.wait_refreshed(before)

    def fetch(self, url):
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read(), resp.headers

    # ---- the walk ----------------------------------------------------------

    def test_1_small_uploads_through_the_app(self):
        self.upload_small("notes.txt", "Meeting notes")
        self.assertEqual(self.message(), ("ok", "Uploaded notes.txt"))
        self.upload_small("photo.png")
        row = self.row("Meeting notes")
        self.assertIsNotNone(row, self.rows())
        self.assertEqual((row["type"], row["size"]), ("text/plain", len(self.files["notes.txt"][1])))
        row = self.row("photo.png")
        self.assertEqual((row["type"], row["size"]), ("image/png", len(self.files["photo.png"][1])))
        self.screenshot("1-small-uploads")

    def test_2_large_upload_straight_to_the_store(self):
        content = self.files["report.pdf"][1]
        uploads = self.site.direct_uploads()
        self.choose("direct-upload", "report.pdf", "Annual report")
        self.submit("direct-upload")
        self.wait(lambda: self.driver.execute_script(
            "return document.getElementById('progress').dataset.state") in ("done", "failed", "refused"),
            "the direct upload to end")
        self.assertEqual(self.message(), ("ok", "Uploaded report.pdf"))
        # It went from the browser to the store (S3: a POST form after a CORS preflight).
        for was, now in zip(uploads, self.site.direct_uploads()):
            self.assertGreaterEqual(now, was + 1, (uploads, self.site.direct_uploads()))
        bar = self.driver.execute_script(
            "const p = document.getElementById('progress'); return [p.value, p.max, +p.dataset.events];")
        self.assertEqual(bar[0], bar[1])
        self.assertGreaterEqual(bar[1], len(content))  # S3's form adds its fields around the file
        self.assertGreaterEqual(bar[2], 1, "upload.onprogress never fired")
        self.wait(lambda: self.row("Annual report") is not None, "the uploaded row")
        row = self.row("Annual report")
        self.assertEqual((row["type"], row["size"]), ("application/pdf", len(content)))
        key = self.site.sql("SELECT so_filename(file) FROM documents WHERE name = 'Annual report'")[0][0]
        self.assertTrue(key.endswith("/report.pdf"), key)
        self.assertTrue(self.site.stored(key))
        self.screenshot("2-direct-upload")

    def test_3_download_links_give_the_bytes(self):
        for title, name in (("Meeting notes", "notes.txt"), ("photo.png", "photo.png"),
                            ("Annual report", "report.pdf")):
            with self.subTest(name=name):
                row = self.row(title)
                self.assertIsNotNone(row, self.rows())
                body, headers = self.fetch(row["url"])
                self.assertEqual(body, self.files[name][1])
                if self.site.kind == "s3":  # download_as: the original name
                    self.assertIn('filename="%s"' % name, headers.get("Content-Disposition", ""))

    def test_4_refusals_are_shown(self):
        count = len(self.rows())
        # Wrong type through the app (so_put: 22023).
        self.upload_small("program.bin")
        cls, text = self.message()
        self.assertEqual(cls, "error")
        self.assertIn("not allowed", text)
        self.assertIn("22023", text)
        self.screenshot("4-refused-type-app")
        # Too large through the app (so_put: 54000).
        self.upload_small("huge.pdf")
        cls, text = self.message()
        self.assertEqual(cls, "error")
        self.assertIn("54000", text)
        self.assertIn("larger", text)
        self.screenshot("4-refused-size-app")
        # Too large and wrong type straight to the store (so_sign_upload: 54000, 22023).
        for name, state, step in (("huge.pdf", "54000", "size"), ("program.bin", "22023", "type")):
            with self.subTest(name=name):
                self.driver.execute_script("document.getElementById('message').textContent = ''")
                self.choose("direct-upload", name)
                self.submit("direct-upload")
                self.wait(lambda: self.driver.execute_script(
                    "return document.getElementById('progress').dataset.state") == "refused"
                    and self.message()[1], "the refusal of " + name)
                cls, text = self.message()
                self.assertEqual(cls, "error")
                self.assertIn(state, text)
                self.screenshot("4-refused-%s-direct" % step)
        self.assertEqual(len(self.rows()), count)
        self.assertEqual(self.site.sql("SELECT count(*) FROM documents")[0][0], count)

    def test_4b_store_refusal_is_shown(self):
        count = len(self.rows())
        expected = self.site.break_store()
        try:
            self.choose("direct-upload", "notes.txt", "Refused by the store")
            self.submit("direct-upload")
            self.wait(lambda: self.driver.execute_script(
                "return document.getElementById('progress').dataset.state") == "failed",
                "the store's refusal")
        finally:
            self.site.mend_store()
        cls, text = self.message()
        self.assertEqual(cls, "error")
        self.assertTrue(text.startswith("Upload refused by the store: " + expected), text)
        self.screenshot("4-refused-by-store")
        self.assertEqual(len(self.rows()), count)

    def test_5_delete_removes_row_and_file(self):
        key = self.site.sql("SELECT so_filename(file) FROM documents WHERE name = 'photo.png'")[0][0]
        self.assertTrue(self.site.stored(key))
        row = self.row("photo.png")
        before = self.refreshes()
        self.driver.find_element(By.CSS_SELECTOR, "tr[data-id='%s'] button.delete" % row["id"]).click()
        self.wait_refreshed(before)
        self.assertIsNone(self.row("photo.png"))
        self.assertEqual(self.message(), ("ok", "Deleted photo.png"))
        self.assertEqual(self.site.sql("SELECT count(*) FROM documents WHERE name = 'photo.png'")[0][0], 0)
        self.assertTrue(self.site.sql("SELECT so_wait_for_worker('1 minute')")[0][0])
        self.assertFalse(self.site.stored(key), key)
        self.screenshot("5-after-delete")


class S3DocumentsTest(DocumentsApp, unittest.TestCase):
    SITE = lambda: S3Site("s3")  # noqa: E731


class LocalDocumentsTest(DocumentsApp, unittest.TestCase):
    SITE = lambda: LocalSite("local")  # noqa: E731


if __name__ == "__main__":
    sys.exit(runner.run("documents_app", FX, (S3DocumentsTest, LocalDocumentsTest), FX.leftovers))
