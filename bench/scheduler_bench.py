"""scheduler_bench.py URL ENDPOINT DATA_DIR PID SOURCES EVERY SECONDS CLIENTS — the work of bench/scheduler.sh:
deploys project "bench" (SOURCES sources on `refresh: {every: EVERYs}`, each a one-row Data API query) with
explicit prod keys for the emulator at ENDPOINT, samples the server process PID's CPU time and RSS while the
schedule runs for SECONDS, reads the runs from DATA_DIR/store.db (read-only), then runs CLIENTS concurrent
clients against the query API for 10 s. The token comes from REDDUCK_TOKEN (never argv)."""
import http.client
import io
import json
import os
import sqlite3
import sys
import tarfile
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def proc_sample(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) // 1024
    return cpu, rss, hwm


def archive(sources, every):
    files = {
        "redduck.yaml": "name: bench\nparallel: 4\nrefresh:\n  every: %ds\n" % every,
        "connectors/rs.yaml": "type: redshift\nworkgroup: demo\ndatabase: dev\nregion: us-east-1\n"
                              "output_location: s3://redduck-staging/bench/\n",
    }
    for i in range(sources):
        files["sources/s%03d.yaml" % i] = ("connector: rs\nvia: data-api\n"
                                            "sql: select %d as n, count(*) as sales from sales\n" % i)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def main():
    url, endpoint, data_dir, pid = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    sources, every, seconds, clients = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
    token = os.environ["REDDUCK_TOKEN"]
    u = urllib.parse.urlparse(url)
    auth = {"Authorization": "Bearer " + token}

    def call(method, path, body=None, ctype="application/json"):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        h = dict(auth)
        if body is not None:
            h["Content-Type"] = ctype
        c.request(method, path, body, h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if r.status >= 300:
            raise SystemExit("%s %s -> %d %s" % (method, path, r.status, data[:300]))
        return json.loads(data) if data else None

    call("POST", "/v1/projects/bench/deployments?environment=prod", archive(sources, every), "application/gzip")
    call("PATCH", "/v1/projects/bench/variables/prod", json.dumps({"set": {
        "connector.rs.aws_access_key_id": "test", "connector.rs.aws_secret_access_key": "test",
        "connector.rs.endpoint_url": endpoint}}))
    t_start_ms = int(time.time() * 1000)
    cpu0, _, _ = proc_sample(pid)
    rss_samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(1)
        rss_samples.append(proc_sample(pid)[1])
    cpu1, rss, hwm = proc_sample(pid)
    t_end_ms = int(time.time() * 1000)

    db = sqlite3.connect("file:%s/store.db?mode=ro" % data_dir, uri=True)
    rows = db.execute("select r.state, r.\"trigger\", r.queued_at, r.started_at, r.finished_at from runs r "
                      "join projects p on p.id = r.project_id where p.name = 'bench' "
                      "and r.queued_at >= ? and r.queued_at <= ?", (t_start_ms, t_end_ms)).fetchall()
    states = {}
    queued_late, started_late, durations = [], [], []
    period = every * 1000
    for state, trig, q, s, f in rows:
        states[state] = states.get(state, 0) + 1
        if trig != "schedule":
            continue
        slot = (q // period) * period
        queued_late.append((q - slot) / 1000.0)
        if s:
            started_late.append((s - slot) / 1000.0)
        if s and f:
            durations.append((f - s) / 1000.0)
    expected = sources * (seconds * 1000 // period)
    print("schedule: %d sources every %d s for %.0f s: %d runs recorded (about %d slots due), by state %s"
          % (sources, every, seconds, len(rows), expected, json.dumps(states, sort_keys=True)))
    print("lateness queued after slot: p50 %.3f s  p99 %.3f s   started after slot: p50 %.3f s  p99 %.3f s"
          % (pct(queued_late, 50), pct(queued_late, 99), pct(started_late, 50), pct(started_late, 99)))
    print("run duration: p50 %.3f s  p99 %.3f s" % (pct(durations, 50), pct(durations, 99)))
    print("server: CPU %.1f s over %.0f s (%.0f%% of one core), RSS %d MiB now, max %d MiB (peak sampled %d MiB)"
          % (cpu1 - cpu0, seconds, 100.0 * (cpu1 - cpu0) / seconds, rss, hwm, max(rss_samples or [0])))

    lat, errors = [], []
    stop = time.monotonic() + 10
    body = json.dumps({"sql": "select count(*) as n from s001", "format": "json"})

    def client(i):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        mine = []
        h = dict(auth)
        h["Content-Type"] = "application/json"
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            c.request("POST", "/v1/projects/bench/query", body, h)
            r = c.getresponse()
            r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 200:
                errors.append(r.status)
        lat.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("query API: %d clients for 10 s: %d queries (%.0f/s), p50 %.1f ms  p99 %.1f ms, %d not 200 %s"
          % (clients, len(lat), len(lat) / 10.0, pct(lat, 50) * 1000, pct(lat, 99) * 1000, len(errors),
             sorted(set(errors))[:5]))


if __name__ == "__main__":
    main()
