"""test_project_hostile.py — hostile project files against the real binary, no AWS: a YAML alias bomb under a
1 GiB address-space limit fails at once with a message (it was expanded to gigabytes, or reported "ok" when
the allocation failed), NUL characters and bytes, a second YAML document, and S3 locations with `..` segments
in a project's output_location and in `redduck ingest --staging` (refused before any request)."""
import os
import resource
import shutil
import subprocess
import tempfile
import time
import unittest

from emulator_fixture import REDDUCK, clean_env, write_file

LIMIT = 1 << 30
# ten lines, 9**9 (387 million) strings once expanded
BOMB = "".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'] +
    ["%s: &%s [%s]\n" % (c, c, ",".join(["*" + p] * 9)) for p, c in zip("abcdefgh", "bcdefghi")] +
    ["name: *i\n"])


def limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


write = write_file


class HostileProjectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="rd-hostile-")
        cls.env = clean_env(os.path.join(cls.tmp, "home"))
        cls.env.update({"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "x",
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:9"})  # nothing listens: no request may be made
        # A sanitizer build reserves terabytes of address space and cannot start under the limit; it runs the
        # same test without it (the bomb is refused before anything is expanded either way).
        p = subprocess.run([REDDUCK, "--version"], capture_output=True, preexec_fn=limit_memory, timeout=30)
        cls.limited = p.returncode == 0

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="proj-", dir=self.tmp)
        write(os.path.join(self.dir, "redduck.yaml"), "name: t\n")
        write(os.path.join(self.dir, "connectors", "wh.yaml"), "type: redshift\nworkgroup: demo\n")

    def check(self):
        return subprocess.run([REDDUCK, "run", self.dir, "--check"], capture_output=True, text=True, env=self.env,
                              preexec_fn=limit_memory if self.limited else None, timeout=60)

    def assertRefused(self, p, where, *phrases):
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertNotIn("ok", p.stdout)
        self.assertIn(os.path.join(self.dir, where), p.stderr)
        for phrase in phrases:
            self.assertIn(phrase, p.stderr)

    def test_alias_bomb_fails_fast_under_a_memory_limit(self):
        write(os.path.join(self.dir, "redduck.yaml"), BOMB)
        t0 = time.monotonic()
        p = self.check()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertRefused(p, "redduck.yaml:1:", "YAML anchors (`&name`) are not allowed")
        self.assertEqual(p.returncode, 1, p.stderr)

    def test_nul_in_a_value_is_refused_not_truncated(self):
        write(os.path.join(self.dir, "sources", "a.yaml"), 'table_name: a\nsql: "select 1 \\0 and false"\n')
        p = self.check()
        self.assertRefused(p, "sources/a.yaml:2:", "`sql` holds a NUL character")
        self.assertNotIn("and false", p.stderr)

    def test_nul_byte_and_second_document(self):
        write(os.path.join(self.dir, "redduck.yaml"), b"name: t\n\x00\nparallel: 99\n")
        self.assertRefused(self.check(), "redduck.yaml:2:", "NUL byte in the file")
        write(os.path.join(self.dir, "redduck.yaml"), "name: t\n---\nparallel: 99\n")
        self.assertRefused(self.check(), "redduck.yaml:2:", "a second YAML document")

    def test_dot_dot_in_output_location_is_refused_up_front(self):
        write(os.path.join(self.dir, "connectors", "wh.yaml"),
              "type: redshift\nworkgroup: demo\noutput_location: s3://redduck-staging/a/../b/\n")
        self.assertRefused(self.check(), "connectors/wh.yaml:3:", "`output_location`", "'..' segment")

    def test_dot_dot_in_ingest_staging_is_refused(self):
        p = subprocess.run([REDDUCK, "ingest", "--workgroup", "demo", "--staging", "s3://redduck-staging/a/../b",
                            "--sql", "select 1", "--into", os.path.join(self.dir, "x.duckdb")],
                           capture_output=True, text=True, env=self.env, timeout=60)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--staging: 's3://redduck-staging/a/../b' has a '..' segment", p.stderr)


if __name__ == "__main__":
    unittest.main()
