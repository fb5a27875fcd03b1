"""test_schedule_oracle.py — `redduck run --check`'s next three runs of cron schedules in time zones, against an
independent oracle: Python's zoneinfo and a brute-force walk over UTC time in 5-minute steps. Ten cron expressions in four
zones (Europe/Berlin, America/New_York, Australia/Lord_Howe with its 30-minute DST, Asia/Kathmandu at +05:45),
counted from instants just before and a day before each zone's DST changes of 2026 (REDDUCK_NOW). The oracle's
rules are schedule.h's, written from scratch here: a minute runs when its local wall-clock time matches and is
that time's first occurrence (clocks going back repeat an hour); when the clocks jump forward, a matching local
time in the skipped stretch runs at the first instant after it. The local column of the output is checked too."""
import datetime
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from zoneinfo import ZoneInfo

from emulator_fixture import REDDUCK, clean_env, write_file

UTC = datetime.timezone.utc
MINUTE = datetime.timedelta(minutes=1)
# The walk's step: every minute of CRONS is a multiple of 5 and so is every UTC offset and transition instant
# of ZONES (+05:45, +10:30, ...), so a walk over the 5-minute grid sees every minute that can run (checked
# below); the skipped stretch of a DST change is still walked minute by minute.
STEP = 5 * MINUTE

CRONS = [
    "30 2 * * *",
    "0 3 * * *",
    "*/15 * * * *",
    "45 1-3 * * *",
    "0 */6 * * *",
    "10-50/20 2 * * *",
    "0 9 * * mon-fri",
    "0 0 1,15 * sun",     # both day fields restricted: either one
    "15 2 * mar,apr,oct,nov *",
    "0 12 * * 3,7",
]
ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
# Just before each change (and a day before it): EU 01:00Z, US 07:00Z / 06:00Z, Lord Howe 15:00Z / 15:30Z.
STARTS = [
    "2026-03-28T00:00:00Z", "2026-03-29T00:30:00Z", "2026-10-24T00:00:00Z", "2026-10-25T00:20:00Z",
    "2026-03-07T00:00:00Z", "2026-03-08T06:40:00Z", "2026-10-31T00:00:00Z", "2026-11-01T05:10:00Z",
    "2026-04-03T00:00:00Z", "2026-04-04T14:30:00Z", "2026-10-02T00:00:00Z", "2026-10-03T15:00:00Z",
]
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def parse_field(text, lo, hi, names=None):
    """The set of values a cron field allows (Vixie cron's syntax)."""
    def value(v):
        if names and v.lower() in names:
            return names.index(v.lower()) + (1 if names is MONTHS else 0)
        return int(v)
    out = set()
    for item in text.split(","):
        part, _, step = item.partition("/")
        if part == "*":
            a, b = lo, hi
        elif "-" in part:
            a, b = (value(x) for x in part.split("-"))
        else:
            a = value(part)
            b = hi if step else a
        out.update(range(a, b + 1, int(step) if step else 1))
    return out


class Cron:
    def __init__(self, expr):
        f = expr.split()
        self.minute = parse_field(f[0], 0, 59)
        self.hour = parse_field(f[1], 0, 23)
        self.dom = parse_field(f[2], 1, 31)
        self.month = parse_field(f[3], 1, 12, MONTHS)
        self.dow = {d % 7 for d in parse_field(f[4], 0, 6, DAYS)}
        self.dom_star, self.dow_star = f[2].startswith("*"), f[4].startswith("*")

    def matches(self, t):
        if t.minute not in self.minute or t.hour not in self.hour or t.month not in self.month:
            return False
        dom, dow = t.day in self.dom, (t.weekday() + 1) % 7 in self.dow
        return (dom and dow) if (self.dom_star or self.dow_star) else (dom or dow)


_LOCAL = {}


def local_of(zone, u):
    """(wall-clock time without zone, fold, UTC offset) of the UTC instant u in zone; cached, as every cron
    walks the same minutes."""
    key = (zone, u)
    r = _LOCAL.get(key)
    if r is None:
        t = u.astimezone(ZoneInfo(zone))
        r = _LOCAL[key] = (t.replace(tzinfo=None), t.fold, t.utcoffset())
    return r


def oracle(cron, zone, start, n=3, days=40):
    """The first n run instants strictly after start (UTC), walking UTC time (STEP by STEP)."""
    assert all(m % 5 == 0 for m in cron.minute) and start.minute % 5 == 0
    out = []
    u = start + STEP
    prev = local_of(zone, start)
    while len(out) < n and u < start + datetime.timedelta(days=days):
        local = local_of(zone, u)
        fires = local[1] == 0 and cron.matches(local[0])
        if local[2] > prev[2]:  # clocks jumped forward: the skipped local minutes
            w = prev[0] + MINUTE
            while w < local[0] and not fires:
                fires = cron.matches(w)
                w += MINUTE
        if fires:
            out.append(u)
        prev = local
        u += STEP
    return out


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleOracleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-sched-oracle-")
        cls.dir = os.path.join(cls.tmp, "proj")
        cls.env = clean_env(os.path.join(cls.tmp, "home"), AWS_ENDPOINT_URL="http://127.0.0.1:9")
        write_file(os.path.join(cls.dir, "redduck.yaml"), "name: oracle\n")
        write_file(os.path.join(cls.dir, "connectors", "wh.yaml"), "type: redshift\nworkgroup: demo\n")
        cls.sources = {}
        for i, expr in enumerate(CRONS):
            for j, zone in enumerate(ZONES):
                name = "s%02d_%d" % (i, j)
                cls.sources[name] = (expr, zone)
                write_file(os.path.join(cls.dir, "sources", name + ".yaml"),
                           "table: public.t\ntable_name: %s\nrefresh:\n  cron: \"%s\"\n  tz: %s\n" % (name, expr, zone))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check(self, now):
        env = dict(self.env, REDDUCK_NOW=now)
        p = subprocess.run([REDDUCK, "run", self.dir, "--check"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("oracle: ok", p.stdout)
        runs, current = {}, None
        for line in p.stdout.splitlines():
            m = re.match(r"^  (s\d\d_\d): cron (.*) (\S+)$", line)
            if m:
                current = m.group(1)
                self.assertEqual((m.group(2), m.group(3)), self.sources[current])
                runs[current] = []
                continue
            m = re.match(r"^    next (\S+)  (\S+) (\S+)$", line)
            if m:
                self.assertIsNotNone(current, line)
                runs[current].append((m.group(1), m.group(2), m.group(3)))
        self.assertEqual(sorted(runs), sorted(self.sources))
        return runs

    def test_next_runs_match_the_oracle(self):
        compiled = {expr: Cron(expr) for expr in CRONS}
        compared = 0
        for now in STARTS:
            start = datetime.datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            runs = self.check(now)
            for name, (expr, zone) in self.sources.items():
                with self.subTest(now=now, cron=expr, zone=zone):
                    want = oracle(compiled[expr], zone, start)
                    self.assertEqual(len(want), 3)
                    self.assertEqual([r[0] for r in runs[name]], [iso(t) for t in want])
                    # the local column: the same instant in the zone, with its offset
                    self.assertEqual([r[1] for r in runs[name]],
                                     [t.astimezone(ZoneInfo(zone)).isoformat() for t in want])
                    self.assertEqual({r[2] for r in runs[name]}, {zone})
                    compared += 3
        self.assertEqual(compared, 3 * len(STARTS) * len(self.sources))

    def test_the_oracle_sees_the_dst_rules(self):
        # the oracle's own premises, so a wrong oracle cannot agree with a wrong binary by accident
        start = datetime.datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
        self.assertEqual([iso(t) for t in oracle(Cron("30 2 * * *"), "Europe/Berlin", start, 2)],
                         ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"])
        start = datetime.datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
        self.assertEqual([iso(t) for t in oracle(Cron("30 2 * * *"), "Europe/Berlin", start, 2)],
                         ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"])

    def test_every_and_manual_sources(self):
        d = os.path.join(self.tmp, "every")
        write_file(os.path.join(d, "redduck.yaml"), "name: ev\nrefresh: {every: 90m}\n")
        write_file(os.path.join(d, "connectors", "wh.yaml"), "type: redshift\nworkgroup: demo\n")
        write_file(os.path.join(d, "sources", "a.yaml"), "table: public.a\n")
        write_file(os.path.join(d, "sources", "b.yaml"), "table: public.b\nrefresh: {disabled: true}\n")
        env = dict(self.env, REDDUCK_NOW="2026-12-01T10:10:00Z")
        p = subprocess.run([REDDUCK, "run", d, "--check"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # multiples of 5400 s since the epoch
        epoch = datetime.datetime(1970, 1, 1, tzinfo=UTC)
        start = int((datetime.datetime(2026, 12, 1, 10, 10, tzinfo=UTC) - epoch).total_seconds())
        want = [iso(epoch + datetime.timedelta(seconds=(start // 5400 + k) * 5400)) for k in (1, 2, 3)]
        self.assertIn("  a: every 1h30m\n" + "".join("    next %s\n" % w for w in want), p.stdout)
        self.assertIn("  b: disabled, manual only\n", p.stdout)
        env["REDDUCK_NOW"] = "yesterday"
        p = subprocess.run([REDDUCK, "run", d, "--check"], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("REDDUCK_NOW", p.stderr)


if __name__ == "__main__":
    unittest.main()
