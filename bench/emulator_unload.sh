#!/usr/bin/env bash
# emulator_unload.sh [ROWS] [SLICES] — how fast the emulator makes and unloads its sample (release build):
#   (a) generation: the emulator started with --sample sales:rows=ROWS (default 2000000), timed until it
#       listens, against the target of 30 s for 10M rows (scaled to ROWS);
#   (b) UNLOAD: `unload ('select <the Parquet-able columns> from sales') ... format parquet manifest` with
#       SLICES files (default 2) through the Data API (boto3), timed from ExecuteStatement to FINISHED, against
#       DuckDB's own COPY (same columns) TO one file (FORMAT PARQUET) on the emulator's warehouse file with
#       the emulator's settings (2 threads), once the emulator has stopped. Target: the ratio at most 2.
# Runs of at most 1M rows are repeated (REPEAT, default 5) and their medians taken. Prints the ratios of
# elapsed time, of CPU time (which other work on the machine does not inflate) and of the statement's own
# Duration, and the load average. Loopback only; the emulator stops by itself.
set -euo pipefail
rows="${1:-2000000}"
slices="${2:-2}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REDDUCK_BIN="${REDDUCK_BIN:-$here/build/redduck}"
export RD_DUCKDB_LIB="${RD_DUCKDB_LIB:-$here/third_party/duckdb/libduckdb.so}"
export AWS_EC2_METADATA_DISABLED=true
exec python3 - "$rows" "$slices" <<'PY'
import ctypes, json, os, shutil, subprocess, sys, tempfile, time
import boto3

ROWS, SLICES = int(sys.argv[1]), int(sys.argv[2])
REPEAT = int(os.environ.get("REPEAT", "5" if ROWS <= 1_000_000 else "1"))  # medians of small runs
BIN = os.environ["REDDUCK_BIN"]
COLS = ("sale_id, store_id, quantity, unit_price, total_amount, discount, tax_rate, is_online, currency, "
        "customer_name, sale_date, created_at, updated_at, attributes, note")  # TIME, TIMETZ, VARBYTE: not Parquet
work = tempfile.mkdtemp(prefix="rd-bench-unload-")
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update(HOME=work, AWS_CONFIG_FILE=os.path.join(work, "none"), AWS_SHARED_CREDENTIALS_FILE=os.path.join(work, "none"),
           AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
data = os.path.join(work, "data")


def duckdb_copy(db_path, out_path):
    """DuckDB's COPY of the same columns to one Parquet file, 2 threads as the emulator's warehouses; seconds."""
    lib = ctypes.CDLL(os.environ["RD_DUCKDB_LIB"])
    vp = ctypes.c_void_p
    lib.duckdb_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(vp)]
    lib.duckdb_connect.argtypes = [vp, ctypes.POINTER(vp)]
    lib.duckdb_query.argtypes = [vp, ctypes.c_char_p, ctypes.c_void_p]
    lib.duckdb_destroy_result.argtypes = [ctypes.c_void_p]
    lib.duckdb_disconnect.argtypes = [ctypes.POINTER(vp)]
    lib.duckdb_close.argtypes = [ctypes.POINTER(vp)]
    db, con = vp(), vp()
    assert lib.duckdb_open(db_path.encode(), ctypes.byref(db)) == 0, "cannot open " + db_path
    assert lib.duckdb_connect(db, ctypes.byref(con)) == 0

    def q(sql):
        res = ctypes.create_string_buffer(256)
        rc = lib.duckdb_query(con, sql.encode(), res)
        lib.duckdb_destroy_result(res)
        assert rc == 0, "failed: " + sql

    q("SET threads = 2")
    q("SET search_path = 'public,main'")
    t0 = time.monotonic()
    q("COPY (SELECT %s FROM public.sales) TO '%s' (FORMAT PARQUET)" % (COLS, out_path))
    dt = time.monotonic() - t0
    lib.duckdb_disconnect(ctypes.byref(con))
    lib.duckdb_close(ctypes.byref(db))
    return dt


def cpu_of(pid):
    """CPU seconds (user + system) a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    t0 = time.monotonic()
    emu = subprocess.Popen([BIN, "emulator", "--port", "0", "--data-dir", data, "--lifetime", "3600", "--slices",
                            str(SLICES), "--sample", "sales:rows=%d" % ROWS],
                           stdout=subprocess.PIPE, stderr=open(os.path.join(work, "emulator.log"), "w"), text=True,
                           env=env)
    manifest, size = None, 0
    try:
        line = emu.stdout.readline()
        gen = time.monotonic() - t0
        gen_cpu = cpu_of(emu.pid)
        if "listening on" not in line:
            raise SystemExit("the emulator did not start: " + open(os.path.join(work, "emulator.log")).read())
        endpoint = line.strip().rsplit(" ", 1)[1]
        target = 30.0 * ROWS / 10_000_000
        print("generation: %d rows in %.1f s, %.1f s of CPU (target %.1f s = 30 s per 10M rows): ratio %.2f"
              % (ROWS, gen, gen_cpu, target, gen / target), flush=True)
        rsd = boto3.client("redshift-data", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        times = []
        for i in range(REPEAT):  # small runs are repeated: their medians, not one noisy sample
            sql = ("unload ('select %s from sales') to 's3://redduck-staging/bench/run%d/' iam_role default "
                   "format parquet manifest" % (COLS, i))
            c1, t1 = cpu_of(emu.pid), time.monotonic()
            sid = rsd.execute_statement(WorkgroupName="demo", Database="dev", Sql=sql)["Id"]
            while True:
                d = rsd.describe_statement(Id=sid)
                if d["Status"] in ("FINISHED", "FAILED", "ABORTED"):
                    break
                time.sleep(0.02)
            if d["Status"] != "FINISHED":
                raise SystemExit("UNLOAD %s: %s" % (d["Status"], d.get("Error")))
            # the statement's own time (ns) is without the client's polling
            times.append((d.get("Duration", 0) / 1e9, time.monotonic() - t1, cpu_of(emu.pid) - c1))
        stmt, unload, unload_cpu = sorted(times)[len(times) // 2]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
        manifest = json.loads(s3.get_object(Bucket="redduck-staging", Key="bench/run0/manifest")["Body"].read())
        size = sum(e["meta"]["content_length"] for e in manifest["entries"])
        assert sum(e["meta"]["record_count"] for e in manifest["entries"]) == ROWS, "the manifest's rows differ"
    finally:
        emu.terminate()
        emu.wait()
    db = os.path.join(data, "warehouses", "workgroup-demo", "dev.duckdb")
    r0 = os.times()
    copies = [duckdb_copy(db, os.path.join(work, "reference.parquet")) for _ in range(REPEAT)]
    r1 = os.times()
    copy = sorted(copies)[len(copies) // 2]
    copy_cpu = ((r1.user - r0.user) + (r1.system - r0.system)) / REPEAT
    ref_size = os.path.getsize(os.path.join(work, "reference.parquet"))
    print("unload: %d rows in %d files in %.2f s, %.2f s of CPU (%.0f MB); DuckDB COPY of the same rows: %.2f s, "
          "%.2f s of CPU (%.0f MB): ratio %.2f, of CPU %.2f (target <= 2)"
          % (ROWS, len(manifest["entries"]), unload, unload_cpu, size / 1e6, copy, copy_cpu, ref_size / 1e6,
             unload / copy, unload_cpu / copy_cpu), flush=True)
    print("unload, the statement's own Duration: %.3f s against COPY's %.3f s: ratio %.2f (target <= 2)"
          % (stmt, copy, stmt / copy), flush=True)
    print("load average during the run: %.1f (on %d CPUs)" % (os.getloadavg()[0], os.cpu_count()), flush=True)


try:
    main()
finally:
    shutil.rmtree(work, ignore_errors=True)
PY
