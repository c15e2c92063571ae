#!/usr/bin/python3
"""System test: the privilege matrix of 0.3.0's access control.

Run by scripts/test.sh as

    /usr/bin/python3 tests/system/test_privileges.py

with PGHOST/PGPORT/PGUSER naming a running cluster (stored_object installed
and preloaded) and the S3 fixture's variables exported (see
tests/system/s3support.py).

One S3 backend "vault" on the loopback fixture, owned by a plain role, and a
backend "scratch" on which PUBLIC holds every privilege (source and target
of copies). Each role below gets its own connection (LOGIN, trust) and acts
as "alice" the way PostgREST sets it (request.jwt.claims); every cell of
role x operation x value is asserted, by SQLSTATE, and a refusal by the
extension must name the backend. boto3 is the witness of what a write, a
delete or a delete through a managed row really did to the bucket.

  roles      superuser, storage administrator (so_grant_admin), backend
             owner, read grantee, member of the read grantee, write grantee,
             row-only reader (RLS on app_docs, no backend privilege), a role
             with nothing
  values     a_row        read from alice's row of app_docs as the role
             b_alice      typed by hand: alice's object
             b_bob        typed by hand: bob's object (a row alice cannot see)
             b_loose      typed by hand: an object no row references
             b_missing    typed by hand: a key that does not exist
             c_managed    bob's object laundered through the role's own table
                          under so_manage_column (the INSERT is a cell too)
             c_unmanaged  the same through a table without the trigger
             (and launder_update: bob's object written into alice's row of
             app_docs by UPDATE, rolled back)
  operations on values: get, exists, stat, sign, copy_from, sign_upload,
             delete (in a rolled-back transaction); and "no-leak": a refused
             read says the same for an existing and a missing key
  operations without values: put, overwrite, delete (committed, checked in
             the bucket after the worker), copy_to, delete_row (DELETE of a
             managed row of app_docs, checked in the bucket), orphans, gc,
             process_pending; and select_row / select_bob_row on app_docs.

Each role is one test method; it collects every mismatching cell and fails
once with the whole list. A grid of the outcomes is printed at the end.

The last line of output is "N passed, N failed"; the exit status is non-zero
on any failure.
"""

import collections
import json
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ beside the tests
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import s3support  # noqa: E402

import psycopg2  # noqa: E402

BACKEND = "vault"
SCRATCH = "scratch"
APP_OWNER = "m_app"
JWT_ALICE = '{"sub":"alice"}'

# label, role name (None: the connecting superuser), what it holds.
#   read/write/delete  privileges on the backend "vault"
#   admin              storage administrator (orphans, gc, process_pending)
#   select/tdelete/tupdate  SELECT / DELETE / UPDATE on app_docs (its rows pass read on)
#   bypass             sees every row of app_docs (RLS does not apply)
NONE = dict(read=False, write=False, delete=False, admin=False, select=False, tdelete=False, tupdate=False,
            bypass=False)
ROLES = [
    ("superuser", None, dict(NONE, read=True, write=True, delete=True, admin=True, select=True, tdelete=True,
                             tupdate=True, bypass=True)),
    ("admin", "m_admin", dict(NONE, read=True, write=True, delete=True, admin=True, select=True, tdelete=True)),
    ("owner", "m_owner", dict(NONE, read=True, write=True, delete=True, select=True, tdelete=True)),
    ("reader", "m_reader", dict(NONE, read=True, select=True)),
    ("member", "m_member", dict(NONE, read=True, select=True)),
    ("writer", "m_writer", dict(NONE, write=True)),
    ("rowreader", "m_rowreader", dict(NONE, select=True, tdelete=True, tupdate=True)),
    ("nothing", "m_nothing", dict(NONE)),
]
TEST_ROLES = [APP_OWNER] + [name for _, name, _ in ROLES if name]

ALICE_KEY, BOB_KEY, LOOSE_KEY, MISSING_KEY = "alice/doc.txt", "bob/doc.txt", "loose/doc.txt", "missing/none.txt"
CONTENT = {ALICE_KEY: b"alice's document", BOB_KEY: b"bob's document, a secret",
           LOOSE_KEY: b"referenced by no row"}
ALICE_ROW, BOB_ROW = 1, 2

READ_OPS = ["get", "exists", "stat", "sign", "copy_from"]
VALUE_OPS = READ_OPS + ["sign_upload", "delete"]
VALUE_KINDS = ["a_row", "b_alice", "b_bob", "b_loose", "b_missing", "c_managed", "c_unmanaged"]
ALICE_KINDS = ("a_row", "b_alice")  # values a row alice may read references
KIND_KEY = {"a_row": ALICE_KEY, "b_alice": ALICE_KEY, "b_bob": BOB_KEY, "b_loose": LOOSE_KEY,
            "b_missing": MISSING_KEY, "c_managed": BOB_KEY, "c_unmanaged": BOB_KEY}

# Expected outcomes.
OK = "ok"                  # allowed
DENY = "42501"             # refused by the extension, naming the backend
DENY_ANON = "42501 (no backend)"  # refused; the function names no backend (so_process_pending)
DENY_PG = "42501 (PostgreSQL)"    # refused by PostgreSQL's own privileges (table, RLS)
NOT_FOUND = "58P01"
NA = "n/a"


def hand_typed(key):
    return json.dumps({"backend": BACKEND, "filename": key})


FX_NAME = "privileges"


class PrivilegeFixture(s3support.Fixture):
    """Fixture plus the cluster-wide test roles (dropped after the database)
    and the grid of outcomes printed before the last line."""

    def __init__(self, name):
        super().__init__(name)
        self.grid = collections.OrderedDict()   # row label -> {role label: text}
        self.cells = 0
        self.mismatches = 0
        self.not_applicable = 0

    def start(self):
        self.drop_roles()  # leftovers of an interrupted run
        super().start()

    def stop(self):
        super().stop()
        try:
            self.drop_roles()
        except Exception as e:  # noqa: B902 - reported, cleanup goes on
            print("could not drop the test roles: %s" % e)
        self.print_grid()

    def drop_roles(self):
        c = psycopg2.connect(dbname="postgres")
        c.autocommit = True
        try:
            with c.cursor() as cur:
                for role in reversed(TEST_ROLES):
                    cur.execute("DROP ROLE IF EXISTS %s" % role)
        finally:
            c.close()

    def print_grid(self):
        if not self.grid:
            return
        labels = [label for label, _, _ in ROLES]
        width = max(len(k) for k in self.grid) + 1
        print()
        print("privilege matrix (\"!\": differs from the spec; pg: refused by PostgreSQL; n/a: not applicable)")
        print("%-*s %s" % (width, "", " ".join("%-9s" % lbl[:9] for lbl in labels)))
        for row, cells in self.grid.items():
            print("%-*s %s" % (width, row, " ".join("%-9s" % cells.get(lbl, "")[:9] for lbl in labels)))
        print("%d cells asserted, %d differ from the spec, %d not applicable"
              % (self.cells, self.mismatches, self.not_applicable))


FX = PrivilegeFixture(FX_NAME)


class World:
    """What setUpClass builds once: connections, values, keys."""
    conns = {}       # role label -> connection
    kp = None        # key prefix of "vault" in the bucket
    kp_scratch = None
    values = {}      # name -> full stored_object text of objects put during setup
    owner_setup = []  # problems while making m_owner the backend's owner


def short(outcome):
    if outcome[0] == "ok":
        return "ok"
    e = outcome[1]
    return e.pgcode or "error"


def describe(outcome):
    if outcome[0] == "ok":
        rows = outcome[1]
        if rows == []:
            return "no error, but no row either (the row is not visible: the function never ran)"
        text = repr(rows if rows is None or len(rows) != 1 else rows[0])
        return "allowed (result %s)" % (text if len(text) < 160 else text[:157] + "...")
    e = outcome[1]
    msg = (e.diag.message_primary or str(e)).strip()
    return "SQLSTATE %s: %s" % (e.pgcode, msg)


def execute(conn, sql, args=None, rollback=False):
    """("ok", rows, rowcount) or ("error", exception). rollback: inside
    BEGIN ... ROLLBACK (autocommit connection)."""
    with conn.cursor() as cur:
        try:
            if rollback:
                cur.execute("BEGIN")
            cur.execute(sql, args)
            rows = cur.fetchall() if cur.description else None
            return ("ok", rows, cur.rowcount)
        except psycopg2.Error as e:
            return ("error", e)
        finally:
            if rollback or conn.get_transaction_status() != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
                cur.execute("ROLLBACK")


def normalized(e):
    """An error's texts with every key of the test replaced, to compare the
    refusal of an existing object with that of a missing one."""
    out = []
    for text in (e.pgcode, e.diag.message_primary, e.diag.message_detail, e.diag.message_hint):
        text = text or ""
        for key in (BOB_KEY, LOOSE_KEY, MISSING_KEY, ALICE_KEY):
            text = text.replace(key, "<key>")
        out.append(text)
    return tuple(out)


class PrivilegeMatrixTest(s3support.SqlAssertions, unittest.TestCase):
    FX = FX

    # ---- the world ---------------------------------------------------------------

    @classmethod
    def setUpClass(cls):
        su = FX.conn
        for role in TEST_ROLES:
            FX.sql("CREATE ROLE %s LOGIN" % role)
        FX.sql("GRANT m_reader TO m_member")
        # The backend will belong to a plain role: its connections are
        # restricted, and the fixture is on loopback.
        FX.sql("ALTER DATABASE %s SET stored_object.allowed_internal_networks = '127.0.0.0/8'" % FX.dbname)
        su.close()
        FX.conn = su = FX.connect()
        assert FX.value("SHOW stored_object.allowed_internal_networks") == "127.0.0.0/8"

        FX.sql("SELECT so_grant_admin('m_admin')")
        World.kp = FX.register(BACKEND, "vault")
        World.kp_scratch = FX.register(SCRATCH, "scratch")
        try:
            FX.sql("UPDATE so_backends SET owner = 'm_owner' WHERE key = %s", (BACKEND,))
        except psycopg2.Error as e:
            # Another legitimate way: an administrator registers it, then stops being one.
            World.owner_setup.append("UPDATE so_backends SET owner = 'm_owner' as superuser was refused: "
                                     "SQLSTATE %s: %s" % (e.pgcode, e.diag.message_primary))
            FX.sql("SELECT so_unregister_backend(%s)", (BACKEND,))
            FX.sql("SELECT so_grant_admin('m_owner')")
            owner = FX.connect()
            FX.sql("SET ROLE m_owner", conn=owner)
            FX.register(BACKEND, "vault", conn=owner)
            owner.close()
            FX.sql("SELECT so_revoke_admin('m_owner')")
        got = FX.value("SELECT owner FROM so_backend_info WHERE key = %s", (BACKEND,))
        if got != "m_owner":
            World.owner_setup.append("so_backend_info says the owner of %s is %r, not m_owner" % (BACKEND, got))
        FX.sql("SELECT so_grant(%s, 'read', 'm_reader')", (BACKEND,))
        FX.sql("SELECT so_grant(%s, 'write', 'm_writer')", (BACKEND,))
        FX.sql("SELECT so_grant(%s, 'all', %s)", (BACKEND, APP_OWNER))
        FX.sql("SELECT so_grant(%s, 'all', 'PUBLIC')", (SCRATCH,))
        FX.sql("GRANT CREATE ON SCHEMA public TO %s" % ", ".join(TEST_ROLES))

        # The application: alice's and bob's rows, RLS as PostgREST uses it.
        app = FX.connect()
        FX.sql("SET ROLE %s" % APP_OWNER, conn=app)
        FX.sql("CREATE TABLE app_docs (id integer PRIMARY KEY, owner text NOT NULL, f stored_object)", conn=app)
        FX.sql("CREATE INDEX ON app_docs (f)", conn=app)
        FX.sql("SELECT so_manage_column('app_docs', 'f')", conn=app)
        FX.sql("ALTER TABLE app_docs ENABLE ROW LEVEL SECURITY", conn=app)
        FX.sql("CREATE POLICY docs_of_the_caller ON app_docs "
               "USING (owner = current_setting('request.jwt.claims', true)::json->>'sub')", conn=app)
        FX.sql("GRANT SELECT ON app_docs TO m_admin, m_owner, m_reader", conn=app)
        FX.sql("GRANT SELECT, UPDATE, DELETE ON app_docs TO m_rowreader", conn=app)
        FX.sql("GRANT DELETE ON app_docs TO m_admin, m_owner", conn=app)
        put = "so_put(%s, %s, %s, 'text/plain')"
        FX.sql("INSERT INTO app_docs VALUES (%s, 'alice', " + put + "), (%s, 'bob', " + put + ")",
               (ALICE_ROW, BACKEND, ALICE_KEY, psycopg2.Binary(CONTENT[ALICE_KEY]),
                BOB_ROW, BACKEND, BOB_KEY, psycopg2.Binary(CONTENT[BOB_KEY])), conn=app)
        # One row of alice per role, for the delete through so_manage.
        for i, (label, _, _) in enumerate(ROLES):
            FX.sql("INSERT INTO app_docs VALUES (%s, 'alice', so_put(%s, %s, %s))",
                   (100 + i, BACKEND, "rowdel/%s.txt" % label, psycopg2.Binary(b"row of " + label.encode())),
                   conn=app)
        app.close()

        # Objects no row references, put by the superuser.
        def put_su(name, backend, key, content):
            World.values[name] = FX.value("SELECT so_put(%s, %s, %s)::text",
                                          (backend, key, psycopg2.Binary(content)))
        put_su("loose", BACKEND, LOOSE_KEY, CONTENT[LOOSE_KEY])
        put_su("source", SCRATCH, "source/src.txt", b"source of copies")
        for label, _, _ in ROLES:
            put_su("over/" + label, BACKEND, "over/%s.txt" % label, b"original")
            put_su("victim/" + label, BACKEND, "victim/%s.txt" % label, b"to be deleted")

        for label, role, _ in ROLES:
            conn = FX.connect() if role is None else cls.connect_as(role)
            FX.sql("SET request.jwt.claims = %s", (JWT_ALICE,), conn=conn)
            World.conns[label] = conn

    @staticmethod
    def connect_as(role):
        c = psycopg2.connect(dbname=FX.dbname, user=role)
        c.autocommit = True
        FX.connections.append(c)
        return c

    # ---- recording -------------------------------------------------------------------

    def setUp(self):
        self.problems = []

    def record(self, label, row, expected, outcome, check=None, named=BACKEND):
        """Judges one cell; returns the problem (or None) and fills the grid."""
        FX.cells += 1
        problem = None
        if outcome[0] == "error":
            e = outcome[1]
            for text in s3support.error_texts(e):
                for secret in FX.secrets:
                    if secret in text:
                        problem = "an error text carries a secret"
        if problem:
            pass  # reported as it is
        elif expected == OK:
            if outcome[0] == "error":
                problem = "expected allowed, got " + describe(outcome)
            elif check:
                problem = check(outcome)
        elif expected in (DENY, DENY_ANON, DENY_PG, NOT_FOUND):
            code = "58P01" if expected == NOT_FOUND else "42501"
            if outcome[0] == "ok":
                problem = "expected %s, got %s" % (expected, describe(outcome))
            elif outcome[1].pgcode != code:
                problem = "expected %s, got %s" % (expected, describe(outcome))
            elif expected == DENY:
                msg = outcome[1].diag.message_primary or ""
                if not re.search(r"\b%s\b" % re.escape(named), msg):
                    problem = "42501 as expected, but the message does not name the backend %r: %s" % (named, msg)
        else:
            raise AssertionError("unknown expectation %r" % expected)
        text = short(outcome)
        if expected == DENY_PG and text == "42501":
            text = "pg"
        self.grid(label, row, text, problem)
        if problem:
            self.problems.append("%-9s | %-28s | %s" % (label, row, problem))
        return problem

    def grid(self, label, row, text, problem=False):
        FX.grid.setdefault(row, {})[label] = text + ("!" if problem else "")
        if problem:
            FX.mismatches += 1

    def late_problem(self, label, row, problem):
        """A problem found after the cell ran (the bucket, after the worker)."""
        self.problems.append("%-9s | %-28s | %s" % (label, row, problem))
        cell = FX.grid.setdefault(row, {})
        if not cell.get(label, "").endswith("!"):
            cell[label] = cell.get(label, "") + "!"
            FX.mismatches += 1

    def not_applicable(self, label, row, why):
        FX.not_applicable += 1
        FX.grid.setdefault(row, {})[label] = NA

    # ---- expectations ---------------------------------------------------------------

    @staticmethod
    def expected_value_op(can, op, kind):
        if kind == "a_row" and not can["select"]:
            return DENY_PG  # the SELECT of the row itself
        if op in READ_OPS:
            allowed = can["read"] or (can["select"] and kind in ALICE_KINDS)
            if not allowed:
                return DENY
            if kind == "b_missing":
                return {"exists": OK, "sign": OK}.get(op, NOT_FOUND)
            return OK
        if op == "sign_upload":
            return OK if can["write"] else DENY
        if op == "delete":
            return OK if can["delete"] else DENY
        raise AssertionError(op)

    # ---- value sources -------------------------------------------------------------

    @staticmethod
    def source(label, kind):
        """(FROM clause, value expression, args) of a value kind."""
        if kind == "a_row":
            return "FROM app_docs WHERE id = %d" % ALICE_ROW, "f", ()
        if kind.startswith("b_"):
            return "", "%s::stored_object", (hand_typed(KIND_KEY[kind]),)
        table = "own_%s_%s" % (label, "m" if kind == "c_managed" else "u")
        return "FROM %s" % table, "f", ()

    def value_op_sql(self, label, op, kind):
        frm, v, args = self.source(label, kind)
        if op == "get":
            sql = "SELECT so_get({v}) {frm}"
        elif op == "exists":
            sql = "SELECT so_exists({v}) {frm}"
        elif op == "stat":
            sql = "SELECT so_stat(so_backend({v}), so_filename({v}))::text {frm}"
            args = args * 2
        elif op == "sign":
            sql = "SELECT so_sign({v}) {frm}"
        elif op == "sign_upload":
            sql = "SELECT so_sign({v}, for_upload => true) {frm}"
        elif op == "copy_from":
            sql = "SELECT so_copy({v}, %s, %s)::text {frm}"
            args = args + (SCRATCH, "copied/%s/%s.txt" % (label, kind))
        elif op == "delete":
            sql = "SELECT so_delete({v}) {frm}"
        return sql.format(v=v, frm=frm), args

    def check_value_result(self, label, op, kind):
        key = KIND_KEY[kind]

        def one_row(outcome):
            rows = outcome[1]
            if rows is None or len(rows) != 1:
                return "expected one row, got %r" % (rows,)
            return None

        def check(outcome):
            problem = one_row(outcome)
            if problem:
                return problem
            value = outcome[1][0][0]
            if op == "get":
                if bytes(value) != CONTENT[key]:
                    return "so_get returned %r, not the content of %s" % (bytes(value)[:60], key)
            elif op == "exists":
                if value is not (kind != "b_missing"):
                    return "so_exists returned %r" % (value,)
            elif op == "stat":
                meta = json.loads(value)
                if meta["filename"] != key or meta["size"] != len(CONTENT[key]):
                    return "so_stat returned %s" % value
            elif op in ("sign", "sign_upload"):
                if not (value or "").startswith("http") or "X-Amz-Signature=" not in value:
                    return "not a presigned URL: %r" % (value,)
            elif op == "copy_from":
                meta = json.loads(value)
                target = "copied/%s/%s.txt" % (label, kind)
                if meta["backend"] != SCRATCH or meta["filename"] != target:
                    return "so_copy returned %s" % value
                head = FX.head(World.kp_scratch + target)
                if head is None or head["ContentLength"] != len(CONTENT[key]):
                    return "the copy %s is not in the bucket with %d bytes" % (target, len(CONTENT[key]))
            return None
        return check

    # ---- one role's row of the matrix ------------------------------------------------

    def run_role(self, label):
        role, can = next((r, c) for lbl, r, c in ROLES if lbl == label)
        conn = World.conns[label]
        if World.owner_setup:
            self.problems += ["setup     | owner of the backend         | " + p for p in World.owner_setup]

        # Sanity of the application's privileges and policy.
        self.record(label, "select_row (alice)", OK if can["select"] else DENY_PG,
                    execute(conn, "SELECT count(*) FROM app_docs WHERE id = %s", (ALICE_ROW,)),
                    lambda o: None if o[1][0][0] == 1 else "alice's row is not visible")
        self.record(label, "select_bob_row (RLS)", OK if can["select"] else DENY_PG,
                    execute(conn, "SELECT count(*) FROM app_docs WHERE id = %s", (BOB_ROW,)),
                    lambda o: None if o[1][0][0] == (1 if can["bypass"] else 0)
                    else "bob's row visible: %r" % (o[1][0][0],))

        # Laundering: bob's object typed by hand, stored in the role's own tables.
        laundered = {}
        bob = hand_typed(BOB_KEY)
        for kind, managed in (("c_managed", True), ("c_unmanaged", False)):
            table = "own_%s_%s" % (label, "m" if managed else "u")
            setup = execute(conn, "CREATE TABLE %s (id serial PRIMARY KEY, f stored_object)" % table)
            if setup[0] == "ok" and managed:
                setup = execute(conn, "SELECT so_manage_column(%s, 'f')", (table,))
            if setup[0] != "ok":
                self.problems.append("%-9s | %-28s | setup of %s failed: %s"
                                     % (label, "launder_insert " + kind, table, describe(setup)))
                laundered[kind] = False
                continue
            expected = (OK if can["write"] else DENY) if managed else OK
            outcome = execute(conn, "INSERT INTO %s (f) VALUES (%%s::stored_object)" % table, (bob,))
            self.record(label, "launder_insert " + kind, expected, outcome)
            if outcome[0] == "ok":
                back = execute(conn, "SELECT f::text FROM %s" % table)
                laundered[kind] = (back[0] == "ok" and len(back[1]) == 1
                                   and json.loads(back[1][0][0])["filename"] == BOB_KEY)
            else:
                laundered[kind] = False

        # Operations on values.
        refusals = {}
        for op in VALUE_OPS:
            for kind in VALUE_KINDS:
                row = "%s %s" % (op, kind)
                if kind.startswith("c_") and not laundered.get(kind):
                    self.not_applicable(label, row, "the laundering INSERT was refused")
                    continue
                if kind.startswith("c_"):
                    # The role's own table: no row of it passes read on.
                    expected = self.expected_value_op(dict(can, select=False), op, "b_bob")
                else:
                    expected = self.expected_value_op(can, op, kind)
                sql, args = self.value_op_sql(label, op, kind)
                outcome = execute(conn, sql, args, rollback=(op == "delete"))
                self.record(label, row, expected, outcome, self.check_value_result(label, op, kind))
                if expected == DENY and outcome[0] == "error" and outcome[1].pgcode == "42501":
                    refusals[(op, kind)] = outcome[1]

        # A refused read says nothing about whether the object exists.
        for op in READ_OPS:
            for existing in ("b_bob", "b_loose"):
                if self.expected_value_op(can, op, existing) != DENY:
                    continue
                if self.expected_value_op(can, op, "b_missing") != DENY:
                    continue
                row = "no-leak %s %s/missing" % (op, existing[2:])
                FX.cells += 1
                a, b = refusals.get((op, existing)), refusals.get((op, "b_missing"))
                if a is None or b is None:
                    problem = "cannot compare: the cells themselves differ from the spec"
                elif normalized(a) != normalized(b):
                    problem = "the refusal differs for an existing and a missing key: %r vs %r" % (
                        normalized(a), normalized(b))
                else:
                    problem = None
                self.grid(label, row, "same" if not problem else "differs", problem)
                if problem:
                    self.problems.append("%-9s | %-28s | %s" % (label, row, problem))

        # Operations without values; the bucket is checked after the worker ran.
        w = OK if can["write"] else DENY
        put_key = "put/%s.txt" % label
        put = execute(conn, "SELECT so_put(%s, %s, 'new object'::bytea)::text", (BACKEND, put_key))
        self.record(label, "put", w, put)
        over_key = "over/%s.txt" % label
        over = execute(conn, "SELECT so_put(%s, %s, 'overwritten'::bytea, overwrite => true)::text",
                       (BACKEND, over_key))
        self.record(label, "overwrite", w, over)
        victim_key = "victim/%s.txt" % label
        delete = execute(conn, "SELECT so_delete(%s::stored_object)", (World.values["victim/" + label],))
        self.record(label, "delete (committed)", OK if can["delete"] else DENY, delete)
        copy_key = "copied-in/%s.txt" % label
        copy_to = execute(conn, "SELECT so_copy(%s::stored_object, %s, %s)::text",
                          (World.values["source"], BACKEND, copy_key))
        self.record(label, "copy_to", w, copy_to)
        row_id = 100 + [lbl for lbl, _, _ in ROLES].index(label)
        rowdel_key = "rowdel/%s.txt" % label
        # Laundering through a row of app_docs the role may update (rolled back).
        self.record(label, "launder_update app_docs",
                    (OK if can["write"] else DENY) if can["tupdate"] else DENY_PG,
                    execute(conn, "UPDATE app_docs SET f = %s::stored_object WHERE id = %s", (bob, row_id),
                            rollback=True),
                    lambda o: None if o[2] == 1 else "UPDATE changed %d rows, not alice's one" % o[2])
        rowdel = execute(conn, "DELETE FROM app_docs WHERE id = %s", (row_id,))
        self.record(label, "delete_row (so_manage)", OK if can["tdelete"] else DENY_PG, rowdel,
                    lambda o: None if o[2] == 1 else "DELETE removed %d rows, not alice's one" % o[2])

        admin = OK if can["admin"] else DENY
        self.record(label, "orphans", admin, execute(conn, "SELECT count(*) FROM so_orphans(%s)", (BACKEND,)))
        self.record(label, "gc (dry run)", admin,
                    execute(conn, "SELECT count(*) FROM so_gc(%s, dry_run => true)", (BACKEND,)))
        self.record(label, "process_pending", OK if can["admin"] else DENY_ANON,
                    execute(conn, "SELECT * FROM so_process_pending()"))

        # What the bucket says, once the worker (and so_process_pending) ran.
        FX.wait_for_worker()
        for obj, attempts, error in FX.sql("SELECT object::text, attempts, last_error FROM so_pending_deletes "
                                           "WHERE last_error IS NOT NULL"):
            self.late_problem(label, "worker", "the worker failed to delete %s (%d attempts): %s"
                              % (obj, attempts, error))
        FX.sql("SELECT * FROM so_process_pending()")
        head = lambda key: FX.head(World.kp + key)  # noqa: E731
        if put[0] == "ok" and head(put_key) is None:
            self.late_problem(label, "put", "allowed, but %s is not in the bucket" % put_key)
        if put[0] != "ok" and head(put_key) is not None:
            self.late_problem(label, "put", "refused, but %s is in the bucket" % put_key)
        now = FX.get_bytes(World.kp + over_key)
        if over[0] == "ok" and now != b"overwritten":
            self.late_problem(label, "overwrite", "allowed, but the bucket holds %r" % now)
        if over[0] != "ok" and now != b"original":
            self.late_problem(label, "overwrite", "refused, but the bucket holds %r" % now)
        if delete[0] == "ok" and head(victim_key) is not None:
            self.late_problem(label, "delete (committed)", "committed, but %s is still in the bucket" % victim_key)
        if delete[0] != "ok" and head(victim_key) is None:
            self.late_problem(label, "delete (committed)", "refused, but %s is gone" % victim_key)
        if copy_to[0] == "ok" and head(copy_key) is None:
            self.late_problem(label, "copy_to", "allowed, but %s is not in the bucket" % copy_key)
        if copy_to[0] != "ok" and head(copy_key) is not None:
            self.late_problem(label, "copy_to", "refused, but %s is in the bucket" % copy_key)
        row_left = FX.value("SELECT count(*) FROM app_docs WHERE id = %s", (row_id,))
        if rowdel[0] == "ok" and rowdel[2] == 1 and head(rowdel_key) is not None:
            self.late_problem(label, "delete_row (so_manage)",
                              "row deleted and committed, but %s is still in the bucket" % rowdel_key)
        if (rowdel[0] != "ok" or rowdel[2] == 0) and (row_left != 1 or head(rowdel_key) is None):
            self.late_problem(label, "delete_row (so_manage)", "refused, but the row or %s is gone" % rowdel_key)

        if self.problems:
            self.fail("%d cells of %s differ from the spec:\n  " % (len(self.problems), label)
                      + "\n  ".join(self.problems))

    def test_1_superuser(self):
        self.run_role("superuser")

    def test_2_admin(self):
        self.run_role("admin")

    def test_3_owner(self):
        self.run_role("owner")

    def test_4_read_grantee(self):
        self.run_role("reader")

    def test_5_member_of_read_grantee(self):
        self.run_role("member")

    def test_6_write_grantee(self):
        self.run_role("writer")

    def test_7_row_only_reader(self):
        self.run_role("rowreader")

    def test_8_role_with_nothing(self):
        self.run_role("nothing")


if __name__ == "__main__":
    sys.exit(s3support.main(FX, [PrivilegeMatrixTest]))
