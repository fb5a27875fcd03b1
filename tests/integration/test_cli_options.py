"""test_cli_options.py — the option parser every command shares, through the real binary: one message per
mistake (an unknown option, a missing value, a second project folder) in every command, --name=value as well as
--name value, --help on stdout with exit 0, and the shared AWS options. No AWS call is made: each case stops at
the parser or at a check before any request."""
import os
import subprocess
import tempfile
import unittest

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")
COMMANDS = ["gc", "whoami", "ingest", "sign", "run", "doctor", "init", "query", "emulator", "refresh", "status", "logs"]
AWS_COMMANDS = ["gc", "whoami", "ingest", "sign"]


class CliOptions(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp.name,
                    "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.path.join(self.tmp.name, "config"),
                    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(self.tmp.name, "credentials"),
                    "AWS_ENDPOINT_URL": "http://127.0.0.1:9"}

    def tearDown(self):
        self.tmp.cleanup()

    def run_redduck(self, *args):
        return subprocess.run([REDDUCK, *args], cwd=self.tmp.name, env=self.env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    def assertUsage(self, args, cmd, message):
        p = self.run_redduck(*args)
        self.assertEqual(p.returncode, 2, (args, p.stderr))
        self.assertEqual(p.stderr, "redduck %s: %s (see `redduck %s --help`)\n" % (cmd, message, cmd), args)
        self.assertEqual(p.stdout, "", args)

    def test_unknown_option_reads_the_same_everywhere(self):
        for cmd in COMMANDS:
            with self.subTest(cmd=cmd):
                self.assertUsage([cmd, "--bogus"], cmd, "unknown option '--bogus'")
                self.assertUsage([cmd, "--bogus=x"], cmd, "unknown option '--bogus=x'")
        for sub in ("show", "configure"):
            self.assertUsage(["env", sub, "--bogus"], "env", "unknown option '--bogus'")
        # sign used to say "--bogus needs a value" when the unknown option came last
        self.assertUsage(["sign", "--method", "GET", "--bogus"], "sign", "unknown option '--bogus'")
        # a flag takes no value
        self.assertUsage(["whoami", "--json=1"], "whoami", "unknown option '--json=1'")
        self.assertUsage(["query", "x.duckdb", "select 1", "--csv=1"], "query", "unknown option '--csv=1'")

    def test_missing_value_reads_the_same_everywhere(self):
        for args in (["gc", "--staging"], ["ingest", "--sql"], ["sign", "--url"], ["run", "--parallel"],
                     ["run", "--lock-timeout"], ["doctor", "--connector"], ["init", "--workgroup"],
                     ["init", "--workgroup="], ["query", "x.duckdb", "select 1", "--max-rows"],
                     ["emulator", "--port"], ["env", "configure", "--keys"]):
            with self.subTest(args=args):
                self.assertUsage(args, args[0], "%s needs a value" % args[-1].rstrip("="))
        for cmd in AWS_COMMANDS:
            for opt in ("--profile", "--region", "--endpoint-url"):
                with self.subTest(cmd=cmd, opt=opt):
                    self.assertUsage([cmd, opt], cmd, "%s needs a value" % opt)

    def test_both_spellings_of_a_value(self):
        for form in (["--older-than", "soon"], ["--older-than=soon"]):
            self.assertUsage(["gc", "--staging", "s3://b/p", *form], "gc",
                             "--older-than is an age such as 90s, 30m, 24h or 7d, not 'soon'")
        for form in (["--port", "x"], ["--port=x"]):
            self.assertUsage(["emulator", *form], "emulator", "--port takes a number from 0 to 65535, not 'x'")
        for form in (["--lock-timeout", "x"], ["--lock-timeout=x"]):
            self.assertUsage(["run", *form], "run", "--lock-timeout is a number of seconds, not 'x'")
            self.assertUsage(["ingest", "--workgroup", "demo", "--sql", "select 1", "--into", "x.duckdb", *form],
                             "ingest", "--lock-timeout is a number of seconds, not 'x'")
        for form in (["--max-rows", "-1"], ["--max-rows=-1"]):
            self.assertUsage(["query", "x.duckdb", "select 1", *form], "query", "--max-rows: '-1' is not a row count")
        # the value after a space is taken as it is, even when it starts with '-'
        self.assertUsage(["query", "x.duckdb", "select 1", "--max-rows", "--json"], "query",
                         "--max-rows: '--json' is not a row count")

    def test_shared_aws_options_in_both_spellings(self):
        for form in (["--region", "not a region"], ["--region=not a region"]):
            p = self.run_redduck("whoami", "--local", *form)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("not a valid AWS region name", p.stderr)
        # the first mistake counts: an unknown option before a bad region is reported as such
        self.assertUsage(["whoami", "--bogus", "--region", "not a region"], "whoami", "unknown option '--bogus'")

    def test_one_project_folder(self):
        for args, cmd in ((["init", "a", "b"], "init"), (["doctor", "a", "b"], "doctor"),
                          (["env", "show", "a", "b"], "env"), (["env", "configure", "a", "b"], "env")):
            with self.subTest(args=args):
                self.assertUsage(args, cmd, "one project folder only ('a' and 'b')")
        self.assertEqual(os.listdir(self.tmp.name), [])

    def test_help(self):
        for cmd in COMMANDS + ["env"]:
            for flag in ("--help", "-h"):
                with self.subTest(cmd=cmd, flag=flag):
                    p = self.run_redduck(cmd, flag)
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(p.stdout.startswith("usage: redduck %s" % cmd), p.stdout[:80])
                    self.assertEqual(p.stderr, "")
        p = self.run_redduck("gc", "--help")
        self.assertIn("AWS options:\n  --profile NAME", p.stdout)
        self.assertTrue(p.stdout.endswith("\nExit codes: 0 ok, 1 failure, 2 usage, 3 no credentials found, 4 refused "
                                          "by AWS.\n"))
        # after a mistake, --help is not reached; as a value it is a value
        self.assertUsage(["gc", "--bogus", "--help"], "gc", "unknown option '--bogus'")
        self.assertUsage(["query", "x.duckdb", "select 1", "--max-rows", "--help"], "query",
                         "--max-rows: '--help' is not a row count")

    def test_dashes(self):
        # query: "--" ends the options, so a file name may start with '-'
        p = self.run_redduck("query", "--", "-x.duckdb", "select 1")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertEqual(p.stderr, "redduck: -x.duckdb: no such DuckDB file\n")
        # run takes no "--": it is an unknown option there
        self.assertUsage(["run", "--"], "run", "unknown option '--'")
        # env set never repeats an argument that looks like an option (it may be a secret)
        p = self.run_redduck("env", "set", "K", "-s3cr3t-value")
        self.assertEqual(p.returncode, 2)
        self.assertNotIn("s3cr3t", p.stderr)
        self.assertIn("set has no options", p.stderr)


if __name__ == "__main__":
    unittest.main()
