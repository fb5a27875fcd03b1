"""`redduck ingest` with ranged parallel GETs and with downloads overlapping the running UNLOAD, against the
emulator: big files split into ranges come out identical with seeded faults on the ranged GETs; part files
that appear while the UNLOAD runs are fetched and loaded at once, and the manifest settles the end (a file it
does not name is dropped, even one already loaded); a kill -9 mid ranged download is swept by the next run; a
statement aborted by someone else, or Ctrl-C while files are in flight, commits nothing and leaves the
staging prefix empty; a run killed during its UNLOAD has that UNLOAD cancelled by the next run before the sweep
deletes its files."""
import glob
import json
import os
import signal
import subprocess
import threading
import time
import unittest

from emulator_fixture import REDDUCK, finish, wait_until
from test_ingest import CHECKSUM, IngestBase

BIG_ROWS = 150000  # three files of about 2 MB: several 1 MiB ranges each


class TestRangedDownloads(IngestBase):
    emu_args = ["--sample", "sales:rows=%d" % BIG_ROWS, "--slices", "3", "--seed", "5", "--faults",
                "s3.get.reset=0.15,s3.get.truncate=0.1,s3.get.slowdown=0.1"]

    def test_ranged_parts_with_faults_give_the_identical_table(self):
        ref = self.db("whole.duckdb")
        # the reference: files fetched whole (a part size above their size)
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/w", "--sql", "select * from sales",
                        "--into", ref + ":sales", "--part-size", "64MB", "--json")
        whole = json.loads(p.stdout)
        self.assertEqual(whole["ranged_files"], 0)
        want = self.query(ref, CHECKSUM.format("sales"))
        for n in range(2):
            db = self.db("ranged%d.duckdb" % n)
            p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/r", "--sql",
                            "select * from sales", "--into", db + ":sales", "--part-size", "1MB", "--concurrency", "8",
                            "--json")
            out = json.loads(p.stdout)
            self.assertEqual(out["rows"], BIG_ROWS)
            # (how many files the one-pass UNLOAD writes varies by a file or so between runs)
            self.assertGreater(out["ranged_files"], 0)
            # a file fetched in ranges takes two requests at least
            self.assertGreaterEqual(out["requests"], out["files"] + out["ranged_files"] + out["retries"])
            self.assertGreater(out["retries"], 0)  # the faults did fire on ranged GETs
            self.assertEqual(self.query(db, CHECKSUM.format("sales")), want)
        self.assertStagingEmpty()

    def test_part_size_bounds(self):
        for bad in ("512K", "0", "6GB", "x"):
            p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/b", "--sql", "select 1",
                            "--into", self.db("b.duckdb"), "--part-size", bad, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("--part-size must be 1MB..5GB", p.stderr)


class TestRangedCrash(IngestBase):
    # 2 MB/s per connection: a file's 1 MiB ranges take half a second each, so a kill finds them in flight
    emu_args = ["--sample", "sales:rows=%d" % BIG_ROWS, "--slices", "3", "--seed", "5", "--faults",
                "s3.get.bandwidth=2MB,s3.get.reset=0.1"]

    def tmpdirs(self):
        return glob.glob(os.path.join(self.work, ".redduck-tmp-*"))

    def test_kill_mid_ranged_download_then_the_next_run_sweeps_and_loads(self):
        db = self.db("crash.duckdb")
        proc = subprocess.Popen([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/c",
                                 "--sql", "select * from sales", "--into", db + ":sales", "--part-size", "1MB"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())
        try:
            found = wait_until(lambda: [d for d in self.tmpdirs() if os.listdir(d)] or proc.poll() is not None,
                               timeout=60, interval=0.01)
            self.assertIsNone(proc.poll(), "the ingest ended before its download")
            self.assertTrue(found)
            proc.send_signal(signal.SIGKILL)
        finally:
            finish(proc)
        self.assertTrue(self.staged_keys("c/"), "the killed run left no staged files: the test proves nothing")
        self.assertTrue(self.tmpdirs())
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/c", "--sql", "select * from sales",
                        "--into", db + ":sales", "--part-size", "1MB", "--json")
        self.assertIn("cleaned up after an interrupted earlier run", p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["rows"], BIG_ROWS)
        self.assertGreater(out["ranged_files"], 0)
        self.assertEqual(self.query(db, "select count(*) as n from sales"), [{"n": BIG_ROWS}])
        self.assertStagingEmpty()
        self.assertEqual(self.tmpdirs(), [])


OVERLAP_ROWS = 60000


class TestOverlap(IngestBase):
    # eight part files written at 1 MB/s: the UNLOAD lasts a few seconds, its files appearing one by one
    emu_args = ["--sample", "sales:rows=%d" % OVERLAP_ROWS, "--slices", "8", "--seed", "9", "--faults",
                "unload.mbps=1"]

    def run_ingest(self, prefix, db, *extra):
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/" + prefix, "--sql",
                        "select * from sales", "--into", db + ":sales", "--json", *extra)
        return json.loads(p.stdout)

    def test_files_are_loaded_while_the_unload_runs(self):
        seq = self.db("seq.duckdb")
        out = self.run_ingest("s", seq, "--no-overlap")
        self.assertEqual(out["early_files"], 0)
        want = self.query(seq, CHECKSUM.format("sales"))
        db = self.db("overlap.duckdb")
        out = self.run_ingest("o", db)
        self.assertEqual(out["rows"], OVERLAP_ROWS)
        self.assertGreater(out["early_files"], 0)
        self.assertFalse(out["reloaded"])
        self.assertEqual(self.query(db, CHECKSUM.format("sales")), want)
        self.assertStagingEmpty()

    def start_ingest(self, prefix, db):
        """An ingest of the sales table into db staging under prefix, running in the background."""
        return subprocess.Popen([REDDUCK, "ingest", "--workgroup", "demo", "--staging",
                                 "s3://redduck-staging/" + prefix, "--sql", "select * from sales", "--into", db],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env())

    def staging_prefix(self, under):
        """The redduck-<uuid>/ prefix an ingest is writing to (once its first part file is there)."""
        keys = wait_until(lambda: [k for k in self.staged_keys(under) if k.endswith(".parquet")], timeout=60,
                          interval=0.05)
        self.assertTrue(keys, "no part file appeared")
        return keys[0][:keys[0].rindex("/") + 1], keys[0]

    def test_a_file_the_manifest_does_not_name_is_dropped(self):
        db = self.db("stray.duckdb")
        s3 = self.client("s3")
        result = {}

        def run():
            result["p"] = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/x", "--sql",
                                      "select * from sales", "--into", db + ":sales", "--json", "-v", check=False)
        t = threading.Thread(target=run)
        t.start()
        try:
            prefix, first = self.staging_prefix("x/")
            # a valid Parquet file, written under the prefix by someone else while the UNLOAD runs
            body = s3.get_object(Bucket="redduck-staging", Key=first)["Body"].read()
            s3.put_object(Bucket="redduck-staging", Key=prefix + "zz_stray_part_00.parquet", Body=body)
        finally:
            t.join(timeout=300)
        p = result["p"]
        self.assertEqual(p.returncode, 0, p.stderr)
        out = json.loads(p.stdout)
        self.assertEqual(out["rows"], OVERLAP_ROWS)
        self.assertIn("zz_stray_part_00.parquet is not in the UNLOAD manifest", p.stderr)
        self.assertEqual(self.query(db, "select count(*) as n from sales"), [{"n": OVERLAP_ROWS}])
        self.assertStagingEmpty()

    def test_an_unload_aborted_by_someone_else_commits_nothing(self):
        db = self.db("aborted.duckdb")
        self.run_ingest("a0", db)  # the old table
        rsd = self.client("redshift-data")
        result = {}

        def run():
            result["p"] = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/a", "--sql",
                                      "select * from sales where sale_id <= 50000", "--into", db + ":sales",
                                      "--json", check=False)
        t = threading.Thread(target=run)
        t.start()
        try:
            self.staging_prefix("a/")
            running = wait_until(lambda: [s for s in rsd.list_statements(Status="STARTED")["Statements"]
                                          if "unload" in s["QueryString"].lower()], timeout=30, interval=0.05)
            self.assertTrue(running, "the UNLOAD was not running")
            rsd.cancel_statement(Id=running[0]["Id"])
        finally:
            t.join(timeout=300)
        p = result["p"]
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("aborted", p.stderr)
        self.assertEqual(self.query(db, "select count(*) as n from sales"), [{"n": OVERLAP_ROWS}])
        self.assertStagingEmpty()
        self.assertEqual(glob.glob(os.path.join(self.work, ".redduck-tmp-*")), [])

    def test_sigint_while_files_download_during_the_unload(self):
        db = self.db("int.duckdb")
        proc = self.start_ingest("i", db)
        try:
            self.staging_prefix("i/")
            time.sleep(0.5)  # a listing has seen it: its download runs or is done
            self.assertEqual([k for k in self.staged_keys("i/") if k.endswith("manifest")], [])
            self.assertIsNone(proc.poll())
            proc.send_signal(signal.SIGINT)
        finally:
            out, err = finish(proc, timeout=120)
        self.assertEqual(proc.returncode, 130, err)
        self.assertIn("interrupted", err)
        self.assertStagingEmpty()
        self.assertEqual(self.query(db, "select table_name from information_schema.tables"), [])
        self.assertEqual(glob.glob(os.path.join(self.work, ".redduck-tmp-*")), [])


    def test_kill_during_the_unload_then_the_next_run_stops_it_before_sweeping(self):
        db = self.db("killed.duckdb")
        proc = self.start_ingest("k", db)
        try:
            prefix, _ = self.staging_prefix("k/")
            self.assertIsNone(proc.poll())
            proc.send_signal(signal.SIGKILL)  # no clean-up: its UNLOAD goes on writing part files
        finally:
            finish(proc)
        rsd = self.client("redshift-data")
        killed = [s for s in rsd.list_statements(Status="ALL")["Statements"] if "/" + prefix in s["QueryString"]]
        self.assertEqual(len(killed), 1)
        self.assertIn(rsd.describe_statement(Id=killed[0]["Id"])["Status"], ("SUBMITTED", "PICKED", "STARTED"),
                      "the UNLOAD ended with its ingest: the test proves nothing")
        p = self.ingest("--workgroup", "demo", "--staging", "s3://redduck-staging/k", "--sql", "select * from sales",
                        "--into", db + ":sales", "--json")
        self.assertIn("still ran: cancelled it before deleting its files", p.stderr)
        self.assertIn("cleaned up after an interrupted earlier run", p.stderr)
        self.assertEqual(json.loads(p.stdout)["rows"], OVERLAP_ROWS)
        self.assertEqual(rsd.describe_statement(Id=killed[0]["Id"])["Status"], "ABORTED")
        time.sleep(1.5)  # at 1 MB/s a still-running UNLOAD would have added a file by now
        self.assertStagingEmpty()
        self.assertFalse(os.path.exists(db + ".redduck-ledger"), "the ledger kept entries of a finished run")

if __name__ == "__main__":
    unittest.main()
