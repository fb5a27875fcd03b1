"""The measurement behind bench/ingest.sh (see there). Loopback only; the emulator stops by itself."""
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config

ROWS, SLICES = int(sys.argv[1]), int(sys.argv[2])
BIN = os.environ["REDDUCK_BIN"]
work = tempfile.mkdtemp(prefix="rd-bench-")
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update(HOME=work, AWS_CONFIG_FILE=os.path.join(work, "none"), AWS_SHARED_CREDENTIALS_FILE=os.path.join(work, "none"),
           AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
           AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")


def duckdb_load(db_path, files_glob):
    """CREATE TABLE AS SELECT * FROM read_parquet(...) with DuckDB's defaults, as a user would; seconds."""
    lib = ctypes.CDLL(os.environ["RD_DUCKDB_LIB"])
    db, con = ctypes.c_void_p(), ctypes.c_void_p()
    res = ctypes.create_string_buffer(256)
    assert lib.duckdb_open(db_path.encode(), ctypes.byref(db)) == 0
    assert lib.duckdb_connect(db, ctypes.byref(con)) == 0
    t0 = time.monotonic()
    rc = lib.duckdb_query(con, ("CREATE TABLE t AS SELECT * FROM read_parquet('%s')" % files_glob).encode(), res)
    dt = time.monotonic() - t0
    lib.duckdb_destroy_result(res)
    lib.duckdb_disconnect(ctypes.byref(con))
    lib.duckdb_close(ctypes.byref(db))
    assert rc == 0, "duckdb load failed"
    return dt


def main():
    log = open(os.path.join(work, "emulator.log"), "w")
    t0 = time.monotonic()
    emu = subprocess.Popen([BIN, "emulator", "--port", "0", "--data-dir", os.path.join(work, "data"), "--lifetime",
                            "3600", "--slices", str(SLICES), "--threads", "32", "--sample", "sales:rows=%d" % ROWS],
                           stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        line = emu.stdout.readline()
        endpoint = line.strip().rsplit(" ", 1)[1]
        print("emulator ready with %d rows in %.1fs (%s)" % (ROWS, time.monotonic() - t0, endpoint), flush=True)
        env["AWS_ENDPOINT_URL"] = endpoint
        kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                  aws_secret_access_key="test")
        s3 = boto3.client("s3", config=botocore.config.Config(signature_version="s3v4"), **kw)
        rsd = boto3.client("redshift-data", **kw)

        # (a) redduck ingest, with DuckDB's full compression (default) and with --compression fast
        runs = {}
        for name, extra in (("auto", []), ("fast", ["--compression", "fast"])):
            cmd = ["/usr/bin/time", "-f", "%M", BIN, "ingest", "--workgroup", "demo", "--staging",
                   "s3://redduck-staging/bench", "--sql", "select * from sales", "--into",
                   os.path.join(work, "a-%s.duckdb" % name), "--json"] + extra
            p = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if p.returncode != 0:
                sys.exit("redduck ingest failed: " + p.stderr)
            out = json.loads(p.stdout)
            out["rss_mb"] = int(p.stderr.strip().splitlines()[-1]) / 1024
            out["after"] = out["seconds"]["total"] - out["seconds"]["unload"] - out["seconds"]["probe"]
            out["file_mb"] = os.path.getsize(os.path.join(work, "a-%s.duckdb" % name)) / 1e6
            runs[name] = out
        a = runs["auto"]

        # the same UNLOAD again, to a prefix the by-hand paths use
        text = rsd.describe_statement(Id=a["statement_id"])["QueryString"]
        text = re.sub(r"s3://redduck-staging/bench/redduck-[0-9a-f-]+/", "s3://redduck-staging/hand/", text)
        sid = rsd.execute_statement(WorkgroupName="demo", Database="dev", Sql=text)["Id"]
        while rsd.describe_statement(Id=sid)["Status"] not in ("FINISHED", "FAILED", "ABORTED"):
            time.sleep(0.1)
        keys = [o["Key"] for pg in s3.get_paginator("list_objects_v2").paginate(Bucket="redduck-staging",
                                                                               Prefix="hand/")
                for o in pg.get("Contents", []) if o["Key"].endswith(".parquet")]
        total = sum(o["Size"] for pg in s3.get_paginator("list_objects_v2").paginate(Bucket="redduck-staging",
                                                                                    Prefix="hand/")
                    for o in pg.get("Contents", []) if o["Key"].endswith(".parquet"))

        # (b) by hand: aws s3 cp --recursive, then DuckDB
        b_dir = os.path.join(work, "b")
        t = time.monotonic()
        subprocess.run(["aws", "s3", "cp", "--recursive", "--quiet", "--exclude", "*manifest",
                        "s3://redduck-staging/hand/", b_dir], check=True, env=env)
        b_copy = time.monotonic() - t
        b_load = duckdb_load(os.path.join(work, "b.duckdb"), os.path.join(b_dir, "*.parquet"))
        b = b_copy + b_load

        # (c) floor: bare parallel curl download; DuckDB load alone
        c_dir = os.path.join(work, "c")
        os.makedirs(c_dir)
        cfg = os.path.join(work, "curl.cfg")
        with open(cfg, "w") as f:
            for i, k in enumerate(keys):
                url = s3.generate_presigned_url("get_object", Params={"Bucket": "redduck-staging", "Key": k},
                                                ExpiresIn=3600)
                f.write('url = "%s"\noutput = "%s/%d.parquet"\n' % (url, c_dir, i))
        t = time.monotonic()
        subprocess.run(["curl", "-sSf", "--no-progress-meter", "--parallel", "--parallel-max", "16", "-K", cfg], check=True)
        c_curl = time.monotonic() - t
        c_load = duckdb_load(os.path.join(work, "c.duckdb"), os.path.join(c_dir, "*.parquet"))
        c = max(c_curl, c_load)

        mb = total / 1e6
        print("rows %d, %d files, %.1f MB of Parquet" % (a["rows"], len(keys), mb))
        for name, r in runs.items():
            print("(a) redduck ingest --compression %s: %.2fs total (probe %.2f, unload %.2f, download+load %.2f, "
                  "commit %.2f, cleanup %.2f); after the UNLOAD %.2fs; peak RSS %.0f MB; file %.0f MB"
                  % (name, r["seconds"]["total"], r["seconds"]["probe"], r["seconds"]["unload"],
                     r["seconds"]["download"], r["seconds"]["commit"], r["seconds"]["cleanup"], r["after"],
                     r["rss_mb"], r["file_mb"]))
        print("(b) by hand: aws s3 cp %.2fs + DuckDB load %.2fs = %.2fs; file %.0f MB"
              % (b_copy, b_load, b, os.path.getsize(os.path.join(work, "b.duckdb")) / 1e6))
        print("(c) floor: max(curl --parallel %.2fs, DuckDB load %.2fs) = %.2fs" % (c_curl, c_load, c))
        for name, r in runs.items():
            print("ratios, --compression %s (after the UNLOAD): a/b = %.2f (target <= 0.5), a/c = %.2f (target "
                  "<= 1.25); peak RSS %.0f MB (target < 300)" % (name, r["after"] / b, r["after"] / c, r["rss_mb"]))
    finally:
        emu.terminate()
        try:
            emu.wait(timeout=60)
        except subprocess.TimeoutExpired:
            emu.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


main()
