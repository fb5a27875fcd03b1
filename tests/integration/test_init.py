"""test_init.py — `redduck init`: the files and folders it lays out, .env at mode 0600 and never overwritten,
.gitignore created or completed, a second init refused (naming the file) unless --force, flags written as
real values and the generated YAML parsed by an independent parser (PyYAML)."""
import os
import stat
import subprocess
import tempfile
import unittest

import yaml

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
FILES = ["redduck.yaml", "connectors/redshift.yaml", "sources/example.yaml"]


def run(*args, cwd=None):
    return subprocess.run([REDDUCK, "init", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


class InitTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="rd_init_")
        self.dir = os.path.join(self.tmp.name, "proj")

    def tearDown(self):
        self.tmp.cleanup()

    def load(self, rel):
        with open(os.path.join(self.dir, rel)) as f:
            return yaml.safe_load(f)

    def test_layout(self):
        r = run(self.dir, "--workgroup", "wg-1", "--staging", "s3://bucket/stage/", "--region", "eu-west-1",
                "--database", "analytics")
        self.assertEqual(r.returncode, 0, r.stderr)
        for rel in FILES + [".env", ".gitignore"]:
            self.assertTrue(os.path.isfile(os.path.join(self.dir, rel)), rel)
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "data")))
        mode = stat.S_IMODE(os.stat(os.path.join(self.dir, ".env")).st_mode)
        self.assertEqual(mode, 0o600)
        with open(os.path.join(self.dir, ".gitignore")) as f:
            lines = f.read().splitlines()
        self.assertIn(".env", lines)
        self.assertIn("data/", lines)
        for rel in FILES:
            self.assertIn(os.path.join(self.dir, rel), r.stdout)
        self.assertIn("redduck env configure", r.stdout)
        self.assertIn("redduck run --check", r.stdout)

        project = self.load("redduck.yaml")
        self.assertEqual(project["duckdb"], "data/redduck.duckdb")
        self.assertEqual(project["parallel"], 2)
        connector = self.load("connectors/redshift.yaml")
        self.assertEqual(connector, {"type": "redshift", "workgroup": "wg-1", "database": "analytics",
                                     "output_location": "s3://bucket/stage/", "region": "eu-west-1"})
        source = self.load("sources/example.yaml")
        self.assertEqual(source["type"], "source")
        self.assertEqual(source["connector"], "redshift")
        self.assertIn("select", source["sql"])
        # every option is documented, as a comment
        with open(os.path.join(self.dir, "connectors/redshift.yaml")) as f:
            text = f.read()
        for key in ["cluster_identifier", "db_user", "secret_arn", "role_arn", "aws_access_key_id",
                    "aws_secret_access_key", "aws_session_token", "profile", "endpoint_url", "allow_host_access"]:
            self.assertIn("# " + key, text)
        with open(os.path.join(self.dir, "sources/example.yaml")) as f:
            text = f.read()
        for key in ["table:", "table_name:", "incremental:", "column:", "unique_key:", "via:", "iam_role:",
                    "kms_key:", "max_file_size_mb:", "concurrency:", "timeout:", "keep_staging:", "compression:"]:
            self.assertIn(key, text)

    def test_placeholders_without_flags(self):
        os.makedirs(self.dir)
        r = run(cwd=self.dir)
        self.assertEqual(r.returncode, 0, r.stderr)
        connector = self.load("connectors/redshift.yaml")
        self.assertEqual(connector, {"type": "redshift"})  # placeholders are comments only
        with open(os.path.join(self.dir, "connectors/redshift.yaml")) as f:
            self.assertIn("{{ .env.REDSHIFT_WORKGROUP }}", f.read())
        with open(os.path.join(self.dir, ".env")) as f:
            env = f.read()
        self.assertIn("AWS_ACCESS_KEY_ID".lower(), env.lower())
        self.assertTrue(all(line == "" or line.startswith("#") for line in env.splitlines()))

    def test_refuses_to_overwrite(self):
        self.assertEqual(run(self.dir, "--workgroup", "a").returncode, 0)
        with open(os.path.join(self.dir, ".env"), "w") as f:
            f.write("SECRET=keep-me\n")
        r = run(self.dir, "--workgroup", "b")
        self.assertEqual(r.returncode, 1)
        self.assertIn(os.path.join(self.dir, "redduck.yaml"), r.stderr)
        self.assertIn("--force", r.stderr)
        self.assertEqual(self.load("connectors/redshift.yaml")["workgroup"], "a")

        r = run(self.dir, "--cluster-id", "c1", "--force")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.load("connectors/redshift.yaml")["cluster_identifier"], "c1")
        with open(os.path.join(self.dir, ".env")) as f:
            self.assertEqual(f.read(), "SECRET=keep-me\n")  # .env is never overwritten

    def test_gitignore_completed(self):
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, ".gitignore"), "w") as f:
            f.write("*.log\n/data/")  # no trailing newline; data already ignored
        self.assertEqual(run(self.dir).returncode, 0)
        with open(os.path.join(self.dir, ".gitignore")) as f:
            self.assertEqual(f.read(), "*.log\n/data/\n.env\n")
        self.assertEqual(run(self.dir, "--force").returncode, 0)
        with open(os.path.join(self.dir, ".gitignore")) as f:
            self.assertEqual(f.read(), "*.log\n/data/\n.env\n")

    def test_usage_errors(self):
        for args in (["--workgroup", "a", "--cluster-id", "b"], ["--staging", "bucket/prefix"], ["--bogus"],
                     ["--region"], ["a", "b"]):
            r = run(*args, cwd=self.tmp.name)
            self.assertEqual(r.returncode, 2, args)
            self.assertIn("redduck init:", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "redduck.yaml")))

    def test_env_configure_asks_for_template_keys_not_comments(self):
        # the generated connector names {{ .env.REDSHIFT_WORKGROUP }} in a comment only
        self.assertEqual(run(self.dir).returncode, 0)
        with open(os.path.join(self.dir, "sources/example.yaml"), "a") as f:
            f.write('database: "{{ .env.SOURCE_DB }}"\n# region: "{{ .env.COMMENTED_OUT }}"\n')
        p = subprocess.run([REDDUCK, "env", "configure", self.dir], input="", capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        asked = p.stderr.split("keys the project needs: ", 1)[1].splitlines()[0].split(",")
        self.assertEqual(asked, ["connector.redshift.aws_access_key_id", "connector.redshift.aws_secret_access_key",
                                 "SOURCE_DB"])

    def test_values_are_quoted(self):
        r = run(self.dir, "--workgroup", 'we"ird: #wg', "--database", "a\\b")
        self.assertEqual(r.returncode, 0, r.stderr)
        connector = self.load("connectors/redshift.yaml")
        self.assertEqual(connector["workgroup"], 'we"ird: #wg')
        self.assertEqual(connector["database"], "a\\b")


if __name__ == "__main__":
    unittest.main()
