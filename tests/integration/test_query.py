"""test_query.py — `redduck query FILE 'SQL'` against a DuckDB file made here through libduckdb's C API (ctypes:
Python's duckdb module is not a dependency). Checks the CSV, JSON and table outputs byte for byte or parsed,
--max-rows, read-only opening, and the error exits. A missing libduckdb fails the test: it is never skipped."""
import ctypes
import json
import os
import pty
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# id, name, price DECIMAL(10,2), ratio DOUBLE, ok BOOLEAN, big BIGINT: a NULL, a comma, a quote, a newline and a
# non-ASCII letter among the strings.
SETUP_SQL = [
    "CREATE TABLE t(id INTEGER, name VARCHAR, price DECIMAL(10,2), ratio DOUBLE, ok BOOLEAN, big BIGINT)",
    "INSERT INTO t VALUES"
    " (1, 'plain', 12.50, 0.5, true, 9007199254740993),"
    " (2, 'a,b', -0.05, NULL, false, -3),"
    " (30, 'say \"hi\"' || chr(10) || 'caf' || chr(233), NULL, 100.0, NULL, NULL)",
]


def duckdb_library():
    path = os.environ.get("RD_DUCKDB_LIB") or os.path.join(REPO, "third_party", "duckdb", "libduckdb.so")
    if not os.path.isfile(path):
        raise AssertionError(f"libduckdb not found at {path} (run scripts/bootstrap.sh or set RD_DUCKDB_LIB)")
    lib = ctypes.CDLL(path)
    vp = ctypes.c_void_p
    lib.duckdb_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(vp)]
    lib.duckdb_connect.argtypes = [vp, ctypes.POINTER(vp)]
    lib.duckdb_query.argtypes = [vp, ctypes.c_char_p, ctypes.c_void_p]
    lib.duckdb_result_error.argtypes = [ctypes.c_void_p]
    lib.duckdb_result_error.restype = ctypes.c_char_p
    lib.duckdb_destroy_result.argtypes = [ctypes.c_void_p]
    lib.duckdb_disconnect.argtypes = [ctypes.POINTER(vp)]
    lib.duckdb_close.argtypes = [ctypes.POINTER(vp)]
    return lib


def create_database(path, statements):
    lib = duckdb_library()
    db, conn = ctypes.c_void_p(), ctypes.c_void_p()
    if lib.duckdb_open(path.encode(), ctypes.byref(db)) != 0:
        raise AssertionError(f"duckdb_open({path}) failed")
    try:
        if lib.duckdb_connect(db, ctypes.byref(conn)) != 0:
            raise AssertionError("duckdb_connect failed")
        for sql in statements:
            result = ctypes.create_string_buffer(256)  # duckdb_result is smaller; its layout does not matter here
            state = lib.duckdb_query(conn, sql.encode(), result)
            error = lib.duckdb_result_error(result) if state != 0 else None
            lib.duckdb_destroy_result(result)
            if state != 0:
                raise AssertionError(f"{sql}: {error.decode() if error else 'failed'}")
    finally:
        lib.duckdb_disconnect(ctypes.byref(conn))
        lib.duckdb_close(ctypes.byref(db))


class QueryTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bin = os.environ.get("REDDUCK_BIN")
        if not cls.bin:
            raise AssertionError("REDDUCK_BIN is not set (run through ctest)")
        cls.tmp = tempfile.TemporaryDirectory()
        cls.db = os.path.join(cls.tmp.name, "t.duckdb")
        create_database(cls.db, SETUP_SQL)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def run_query(self, *args):
        return subprocess.run([self.bin, "query", *args], capture_output=True, timeout=120)

    def run_in_pty(self, *args):
        """Runs with stdout on a terminal; returns (exit code, stdout text with \\r\\n → \\n, stderr)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([self.bin, "query", *args], stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        chunks = []
        try:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO once the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
        finally:
            os.close(master)
        err = proc.stderr.read()
        proc.stderr.close()
        rc = proc.wait(timeout=120)
        return rc, b"".join(chunks).decode().replace("\r\n", "\n"), err.decode()

    def test_csv_exact(self):
        r = self.run_query(self.db, "SELECT * FROM t ORDER BY id", "--csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        expected = (
            'id,name,price,ratio,ok,big\n'
            '1,plain,12.50,0.5,true,9007199254740993\n'
            '2,"a,b",-0.05,,false,-3\n'
            '30,"say ""hi""\ncaf\u00e9",,100.0,,\n'
        )
        self.assertEqual(r.stdout.decode(), expected)
        self.assertEqual(r.stderr, b"")

    def test_csv_is_the_default_off_a_terminal(self):
        plain = self.run_query(self.db, "SELECT * FROM t ORDER BY id")
        csv = self.run_query(self.db, "SELECT * FROM t ORDER BY id", "--csv")
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertEqual(plain.stdout, csv.stdout)

    def test_csv_empty_string_differs_from_null(self):
        r = self.run_query(self.db, "SELECT '' AS e, NULL AS n, 'x\ry' AS cr", "--csv")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b'e,n,cr\n"",,"x\ry"\n')

    def test_json(self):
        r = self.run_query(self.db, "SELECT * FROM t ORDER BY id", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.endswith(b"]\n"))
        rows = json.loads(r.stdout)
        # integers and doubles are JSON numbers, DECIMAL a string (kept exact), NULL null
        self.assertEqual(rows, [
            {"id": 1, "name": "plain", "price": "12.50", "ratio": 0.5, "ok": True, "big": 9007199254740993},
            {"id": 2, "name": "a,b", "price": "-0.05", "ratio": None, "ok": False, "big": -3},
            {"id": 30, "name": 'say "hi"\ncaf\u00e9', "price": None, "ratio": 100.0, "ok": None, "big": None},
        ])
        self.assertIsInstance(rows[2]["ratio"], float)
        self.assertIsInstance(rows[0]["big"], int)

    def test_json_other_types_are_strings(self):
        sql = ("SELECT DATE '2024-01-02' AS d, [1, 2] AS l, 'inf'::DOUBLE AS i, 0.1::DOUBLE AS f, "
               "170141183460469231731687303715884105727::HUGEINT AS h, 3::HUGEINT AS small")
        r = self.run_query(self.db, sql, "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout), [{
            "d": "2024-01-02", "l": "[1, 2]", "i": "inf", "f": 0.1,
            "h": "170141183460469231731687303715884105727", "small": 3}])
        self.assertIn(b'"f":0.1,', r.stdout)  # shortest form, not 0.10000000000000001

    def test_json_empty_result(self):
        r = self.run_query(self.db, "SELECT * FROM t WHERE false", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"[]\n")

    def test_max_rows(self):
        r = self.run_query(self.db, "SELECT * FROM range(10) r(n)", "--csv", "--max-rows", "3")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, b"n\n0\n1\n2\n")
        self.assertIn(b"(showing first 3 of 10 rows)", r.stderr)
        r = self.run_query(self.db, "SELECT * FROM range(10) r(n)", "--json", "--max-rows", "2")
        self.assertEqual(json.loads(r.stdout), [{"n": 0}, {"n": 1}])
        r = self.run_query(self.db, "SELECT * FROM range(10) r(n)", "--csv")
        self.assertEqual(r.stdout.count(b"\n"), 11)  # unlimited by default off the table
        self.assertEqual(r.stderr, b"")

    def test_table_on_a_terminal(self):
        rc, out, err = self.run_in_pty(self.db, "SELECT id, name, price FROM t ORDER BY id")
        self.assertEqual(rc, 0, err)
        lines = out.split("\n")
        self.assertEqual(lines[-1], "")
        self.assertEqual(lines[-2], "(3 rows)")
        header, sep, rows = lines[0], lines[1], lines[2:-2]
        self.assertEqual(header, "id | " + "name".ljust(14) + " | price")
        self.assertEqual(set(sep.replace("+", "")), {"-"})
        # 3 rows, the newline shown as \n; the column bars line up in code points (é counts as one)
        self.assertEqual(len(rows), 3)
        self.assertEqual(rows[2], "30 | say \"hi\"\\ncaf\u00e9 |  NULL")
        bars = [i for i, ch in enumerate(header) if ch == "|"]
        self.assertEqual([i for i, ch in enumerate(sep) if ch == "+"], bars)
        for row in rows:
            self.assertEqual([i for i, ch in enumerate(row) if ch == "|"], bars, row)
        # numbers are right-aligned
        self.assertEqual([row.split(" | ")[0] for row in rows], [" 1", " 2", "30"])
        self.assertEqual([row.split(" | ")[2] for row in rows], ["12.50", "-0.05", " NULL"])

    def test_table_default_limit(self):
        rc, out, err = self.run_in_pty(self.db, "SELECT * FROM range(1500) r(n)")
        self.assertEqual(rc, 0, err)
        lines = out.strip("\n").split("\n")
        self.assertEqual(len(lines), 2 + 1000 + 1)
        self.assertIn("(showing first 1000 of 1500 rows)", err)

    def test_sql_error(self):
        r = self.run_query(self.db, "SELEC 1")
        self.assertEqual(r.returncode, 1)
        self.assertTrue(r.stderr.startswith(b"redduck query: "), r.stderr)
        self.assertIn(b"syntax error", r.stderr)
        self.assertEqual(r.stdout, b"")

    def test_opened_read_only(self):
        r = self.run_query(self.db, "CREATE TABLE x(a INTEGER)")
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"read-only", r.stderr)
        r = self.run_query(self.db, "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'x'")
        self.assertEqual(r.stdout, b"n\n0\n")

    def test_missing_file_is_not_created(self):
        path = os.path.join(self.tmp.name, "missing.duckdb")
        r = self.run_query(path, "SELECT 1")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.decode(), f"redduck: {path}: no such DuckDB file\n")
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + ".wal"))

    def test_usage_errors(self):
        for args in ([], [self.db], [self.db, "SELECT 1", "extra"], [self.db, "SELECT 1", "--csv", "--json"],
                     [self.db, "SELECT 1", "--max-rows"], [self.db, "SELECT 1", "--max-rows", "-1"],
                     [self.db, "SELECT 1", "--bogus"]):
            r = self.run_query(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertTrue(r.stderr.startswith(b"redduck query: "), (args, r.stderr))

    def test_help(self):
        r = self.run_query("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn(b"usage: redduck query FILE.duckdb 'SQL'", r.stdout)
        self.assertIn(b"DECIMAL", r.stdout)


if __name__ == "__main__":
    unittest.main()
