"""server_bench.py URL SECONDS CLIENTS [KEYS] — CLIENTS threads, each with its own keep-alive connection,
alternating a variable write (PUT .../variables/dev/NAME, one of the client's KEYS names, default 1) and a read
of the whole environment (GET .../variables/dev, every other time ?names=1) on project "bench" for SECONDS;
prints reads/s, writes/s and p50/p99 latency of each. The token comes from REDDUCK_TOKEN (never argv)."""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def main():
    url, seconds, clients = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    keys = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    token = os.environ["REDDUCK_TOKEN"]
    u = urllib.parse.urlparse(url)
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def conn():
        return http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    c = conn()
    c.request("POST", "/v1/projects", json.dumps({"name": "bench"}), headers)
    c.getresponse().read()
    reads, writes, errors = [], [], []
    stop = time.monotonic() + seconds

    def client(i):
        h = conn()
        r, w = [], []
        n = 0
        while time.monotonic() < stop:
            body = json.dumps({"value": "value-%d-%d" % (i, n)})
            t0 = time.perf_counter()
            h.request("PUT", "/v1/projects/bench/variables/dev/K%02d_%d" % (i, n % keys), body, headers)
            resp = h.getresponse()
            resp.read()
            w.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors.append(resp.status)
            t0 = time.perf_counter()
            h.request("GET", "/v1/projects/bench/variables/dev?names=1" if n % 2 else "/v1/projects/bench/variables/dev",
                      headers=headers)
            resp = h.getresponse()
            resp.read()
            r.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors.append(resp.status)
            n += 1
        reads.extend(r)
        writes.extend(w)

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(len(xs) * p))] * 1000 if xs else float("nan")

    print("clients %d, %d variables, %.1f s, errors %d" % (clients, clients * keys, elapsed, len(errors)))
    print("reads/s  %8.0f   p50 %6.2f ms   p99 %6.2f ms" % (len(reads) / elapsed, pct(reads, .5), pct(reads, .99)))
    print("writes/s %8.0f   p50 %6.2f ms   p99 %6.2f ms" % (len(writes) / elapsed, pct(writes, .5), pct(writes, .99)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
