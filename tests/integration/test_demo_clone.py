"""`make demo` from a clean clone: the README's first command works on what is committed, with nothing but
the machine's packages (the pinned DuckDB packages are taken from this checkout's verified npm cache when
present, so the test needs no network; bootstrap still checks their sha512)."""
import glob
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class DemoFromCleanClone(unittest.TestCase):
    def test_make_demo(self):
        tmp = tempfile.mkdtemp(prefix="rd-clone-")
        try:
            clone = os.path.join(tmp, "redduck")
            subprocess.run(["git", "clone", "--quiet", ROOT, clone], check=True, timeout=120)
            packs = glob.glob(os.path.join(ROOT, ".cache", "npm-packs", "*.tgz"))
            if packs:
                os.makedirs(os.path.join(clone, ".cache", "npm-packs"))
                for p in packs:
                    shutil.copy(p, os.path.join(clone, ".cache", "npm-packs"))
            env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
            env.update(HOME=tmp, AWS_EC2_METADATA_DISABLED="true")
            p = subprocess.run(["make", "demo"], cwd=clone, capture_output=True, text=True, env=env, timeout=1200)
            self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
            self.assertIn("3 of 3 sources succeeded", p.stdout)
            self.assertIn("USD,", p.stdout)  # revenue by currency, queried from the local file
            self.assertTrue(os.path.exists(os.path.join(clone, "examples", "demo", "data", "demo.duckdb")))
            # the clean clone stays clean: everything the demo made is ignored by git
            st = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True)
            self.assertEqual(st.stdout.strip(), "")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
