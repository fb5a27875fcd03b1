"""An ingest target's lifecycle against the emulator: a DuckDB file held by another process is waited for
(bounded by --lock-timeout, the holder's PID named) before any Redshift statement, for `redduck ingest` and
`redduck run`; `kill -9` leftovers (staging prefixes, download directories) are swept by the next run of the
same target; `redduck gc` deletes old redduck-* prefixes (and --dry-run only lists them); the files
ingest and run create are 0600. (Failed loads not growing the file, existing files keeping their mode and
the ledger itself: tests/unit/ingest/test_target.c.)"""
import glob
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest

import boto3

from emulator_fixture import REDDUCK, Emulator, finish, in_parallel, wait_until

BUCKET = "redduck-staging"


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def locked_by(pid, path):
    """1 if process pid holds a POSIX lock on path (/proc/locks: "1: POSIX ADVISORY WRITE pid maj:min:inode ...")."""
    try:
        ino = str(os.stat(path).st_ino)
        with open("/proc/locks") as f:
            return any(len(w) > 5 and w[4] == str(pid) and w[5].split(":")[-1] == ino
                       for w in (line.split() for line in f))
    except OSError:
        return False


EMULATORS = {}  # the emulator of each TargetBase class, by class name


def start_emulator(cls):
    """(class name, its Emulator or the exception starting it raised): for in_parallel."""
    try:
        return cls.__name__, Emulator(args=cls.emu_args)
    except Exception as e:  # noqa: BLE001 - raised by setUpModule once every start has ended
        return cls.__name__, e


def setUpModule():
    # each class's emulator generates its sample at start (seconds under ASan): start them side by side
    started = dict(in_parallel(start_emulator, [TestLock, TestLeftovers]))
    failures = [e for e in started.values() if isinstance(e, Exception)]
    EMULATORS.update({k: v for k, v in started.items() if not isinstance(v, Exception)})
    if failures:
        tearDownModule()
        raise failures[0]


def tearDownModule():
    for emu in EMULATORS.values():
        emu.cleanup()
    EMULATORS.clear()


class TargetBase(unittest.TestCase):
    emu_args = []

    @classmethod
    def setUpClass(cls):
        cls.emu = EMULATORS[cls.__name__]
        cls.work = tempfile.mkdtemp(prefix="rd-target-")

    @classmethod
    def tearDownClass(cls):
        cls.emu.cleanup()
        shutil.rmtree(cls.work, ignore_errors=True)

    def client(self, service):
        return boto3.client(service, endpoint_url=self.emu.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def args(self, db, staging, *extra, sql="select * from sales"):
        return [REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://%s/%s" % (BUCKET, staging), "--sql",
                sql, "--into", db, "--concurrency", "1", *extra]

    def ingest(self, db, staging, *extra, check=True, sql="select * from sales"):
        p = subprocess.run(self.args(db, staging, *extra, sql=sql), capture_output=True, text=True,
                           env=self.emu.env(), timeout=300)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def start(self, db, staging, *extra):
        return subprocess.Popen(self.args(db, staging, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=self.emu.env())

    def finish(self, proc):
        return finish(proc)

    def keys(self, prefix):
        s3 = self.client("s3")
        keys = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def statements(self):
        c = self.client("redshift-data")
        out, token = [], None
        while True:
            kw = {"Status": "ALL", "MaxResults": 100}
            if token:
                kw["NextToken"] = token
            page = c.list_statements(**kw)
            out += [s.get("QueryString", "") for s in page.get("Statements", [])]
            token = page.get("NextToken")
            if not token:
                return out

    def tmpdirs(self):
        return glob.glob(os.path.join(self.work, ".redduck-tmp-*"))


class TestLock(TargetBase):
    # slow enough that an ingest holds its file for seconds
    emu_args = ["--sample", "sales:rows=20000", "--slices", "12", "--faults", "latency.ms=200"]

    def hold(self, db, staging):
        """An ingest into db, returned once it holds the file's lock."""
        proc = self.start(db, staging)
        wait_until(lambda: locked_by(proc.pid, db) or proc.poll() is not None, timeout=60, interval=0.02)
        if proc.poll() is not None:
            self.fail("the holding ingest ended early: %s" % (proc.stderr.read(),))
        return proc

    def small(self, db, *extra, marker="small"):
        """A Data API ingest (few requests) into db."""
        return [REDDUCK, "ingest", "--workgroup", "demo", "--sql", "select 4242 as %s" % marker, "--into", db,
                *extra]

    def project(self, db):
        proj = os.path.join(self.work, "proj-held")
        for sub in ("sources", "connectors"):
            os.makedirs(os.path.join(proj, sub), exist_ok=True)
        with open(os.path.join(proj, "redduck.yaml"), "w") as f:
            f.write("name: held\nduckdb: %s\n" % db)
        with open(os.path.join(proj, "connectors", "wh.yaml"), "w") as f:
            f.write("type: redshift\nworkgroup: demo\ndatabase: dev\nregion: us-east-1\n")
        with open(os.path.join(proj, "sources", "m.yaml"), "w") as f:
            f.write("connector: wh\nsql: select 4343 as lock_marker_run\nvia: data-api\n")
        return proj

    def test_a_held_file_is_waited_for_then_refused_naming_the_pid_before_any_statement(self):
        db = os.path.join(self.work, "held.duckdb")
        proj = self.project(db)
        holder = self.hold(db, "held-a")

        def timed(args):
            t0 = time.monotonic()
            p = subprocess.run(args, capture_output=True, text=True, env=self.emu.env(), timeout=60)
            return p, time.monotonic() - t0
        try:
            # an ingest and the project runner (which takes the same lock before any source starts) each
            # wait out their --lock-timeout: side by side
            (p, took), (run, _) = in_parallel(timed, [
                self.small(db + ":b", "--lock-timeout", "1", marker="lock_marker_b"),
                [REDDUCK, "run", proj, "--lock-timeout", "1"]])
            self.assertIsNone(holder.poll(), "the holder finished too soon for this test to mean anything")
        finally:
            holder.send_signal(signal.SIGINT)
            self.finish(holder)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("is in use by PID %d" % holder.pid, p.stderr)
        self.assertIn("close it or raise --lock-timeout", p.stderr)
        self.assertLess(took, 10)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("is in use by PID %d" % holder.pid, run.stderr)
        sqls = self.statements()
        self.assertTrue(any("from sales" in s for s in sqls))  # the listing does show the holder's statements
        self.assertEqual([s for s in sqls if "lock_marker" in s], [])

    def test_waits_for_the_holder_to_exit_then_succeeds(self):
        db = os.path.join(self.work, "wait.duckdb")
        holder = self.hold(db, "wait-a")
        err_path = os.path.join(self.work, "waiter.err")
        try:
            with open(err_path, "w") as err_file:
                waiter = subprocess.Popen(self.small(db + ":b", "--lock-timeout", "60"), stdout=subprocess.PIPE,
                                          stderr=err_file, text=True, env=self.emu.env())

            def waiter_err():
                with open(err_path) as f:
                    return f.read()
            # the waiter has found the file held once it says so
            wait_until(lambda: "waiting up to 60s" in waiter_err() or waiter.poll() is not None, timeout=60,
                       interval=0.02)
            self.assertIsNone(holder.poll(), "the holder finished too soon for this test to mean anything")
            self.assertIsNone(waiter.poll(), "the waiter ended before the holder did: %s" % waiter_err())
        finally:
            holder.send_signal(signal.SIGINT)  # the holder exits well within the waiter's timeout
            self.finish(holder)
        self.finish(waiter)
        err = waiter_err()
        self.assertEqual(waiter.returncode, 0, err)
        self.assertEqual(err.count("is in use by PID %d" % holder.pid), 1, err)
        self.assertIn("waiting up to 60s", err)
        q = subprocess.run([REDDUCK, "query", db, "select small from b", "--json"], capture_output=True,
                           text=True, env=self.emu.env(), timeout=60)
        self.assertEqual(json.loads(q.stdout), [{"small": 4242}])


class TestLeftovers(TargetBase):
    emu_args = ["--sample", "sales:rows=20000", "--slices", "12", "--faults", "latency.ms=40"]

    def interrupt_mid_download(self, db, staging):
        before = set(self.tmpdirs())
        proc = self.start(db, staging, "--max-local-bytes", "1M")
        found = wait_until(lambda: [d for d in self.tmpdirs() if d not in before and os.listdir(d)]
                           or proc.poll() is not None, timeout=60, interval=0.01)
        self.assertIsNone(proc.poll(), "the ingest ended before its download")
        self.assertTrue(found)
        proc.send_signal(signal.SIGKILL)
        self.finish(proc)

    def test_killed_runs_leave_nothing_behind_after_the_next_run(self):
        # (a failed load giving its space back, and an existing file keeping its mode: test_target.c)
        db = os.path.join(self.work, "left.duckdb")
        self.ingest(db + ":t", "left")
        clean = os.path.getsize(db)
        self.assertEqual(mode(db), 0o600)  # created private
        # kill -9 mid-download leaves staged files and a download directory...
        for _ in range(2):
            self.interrupt_mid_download(db + ":t", "left")
            if os.path.exists(db + ".wal"):
                self.assertEqual(mode(db + ".wal"), 0o600)
        self.assertTrue(self.keys("left/"), "the killed runs left no staged files: the test proves nothing")
        left = self.tmpdirs()
        self.assertTrue(left)
        for d in left:
            self.assertEqual(mode(d), 0o700)
        self.assertEqual(mode(db + ".redduck-ledger"), 0o600)
        # ...which the next run of the same target sweeps
        p = self.ingest(db + ":t", "left")
        self.assertIn("cleaned up after an interrupted earlier run", p.stderr)
        self.assertEqual(self.keys("left/"), [])
        self.assertEqual(self.tmpdirs(), [])
        self.assertFalse(os.path.exists(db + ".redduck-ledger"))
        self.assertLessEqual(os.path.getsize(db), 3 * clean)
        self.assertEqual(mode(db), 0o600)

    def test_run_creates_its_project_file_private(self):
        proj = os.path.join(self.work, "proj-mode")
        for sub in ("sources", "connectors"):
            os.makedirs(os.path.join(proj, sub))
        with open(os.path.join(proj, "redduck.yaml"), "w") as f:
            f.write("name: m\nduckdb: data/m.duckdb\n")
        with open(os.path.join(proj, "connectors", "wh.yaml"), "w") as f:
            f.write("type: redshift\nworkgroup: demo\ndatabase: dev\nregion: us-east-1\n")
        with open(os.path.join(proj, "sources", "s.yaml"), "w") as f:
            f.write("connector: wh\nsql: select 1 as x\nvia: data-api\n")
        p = subprocess.run([REDDUCK, "run", proj], capture_output=True, text=True, env=self.emu.env(), timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(mode(os.path.join(proj, "data", "m.duckdb")), 0o600)

    def test_gc_deletes_old_prefixes_and_dry_run_only_lists(self):
        # what killed runs leave: redduck-<uuid>/ prefixes of UNLOAD files (and their manifest)
        s3 = self.client("s3")
        for u in ("0d7c8f42-5b1e-4b7a-9a51-3f0e2c9d8a10", "9e41a0b3-77c2-4e0f-8d6b-1c2a3b4c5d6e"):
            for name in ("0000_part_00.parquet", "0001_part_00.parquet", "manifest"):
                s3.put_object(Bucket=BUCKET, Key="gc/redduck-%s/%s" % (u, name), Body=b"x" * 100)
        s3.put_object(Bucket=BUCKET, Key="gc/not-ours.txt", Body=b"x")
        staged = [k for k in self.keys("gc/") if k.startswith("gc/redduck-")]
        self.assertEqual(len({k.split("/")[1] for k in staged}), 2)

        def gc(*args):
            return subprocess.run([REDDUCK, "gc", "--staging", "s3://%s/gc" % BUCKET, *args], capture_output=True,
                                  text=True, env=self.emu.env(), timeout=60)
        p = gc()  # default: older than 24h, and these are young
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted 0 prefixes", p.stdout)
        self.assertIn("2 newer prefixes kept", p.stdout)
        p = gc("--older-than", "0s", "--dry-run")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.count("would delete "), 3, p.stdout)  # two prefixes and the summary
        self.assertIn("would delete 2 prefixes, %d objects" % len(staged), p.stdout)
        self.assertEqual(len(self.keys("gc/")), len(staged) + 1)
        p = gc("--older-than", "0s")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("deleted 2 prefixes, %d objects" % len(staged), p.stdout)
        self.assertEqual(self.keys("gc/"), ["gc/not-ours.txt"])
        self.assertEqual(gc("--older-than", "soon").returncode, 2)


if __name__ == "__main__":
    unittest.main()
