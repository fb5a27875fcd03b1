"""test_dotenv_oracle.py — python-dotenv is the witness for redduck's .env reader and writer.

* ~200 generated .env files (fixed seed: export prefixes, quoted keys, unquoted values with inline comments,
  single- and double-quoted values with escapes and raw newlines, comments, blank lines, duplicate keys, CRLF and
  CR line endings, UTF-8, and now and then one malformed statement): `redduck env dump-json FILE` must equal
  `dotenv_values(FILE, interpolate=False)` (redduck never expands ${VAR}); where python-dotenv skips a statement
  with a warning or reads a key without `=` as None, redduck must fail (exit 1) naming that statement's line.
* `redduck env set` with random tricky values: python-dotenv must read back exactly what was set; mode 0600.
* `env show` masking, `env configure` from a pipe, usage errors.
"""
import io
import json
import os
import random
import stat
import subprocess
import tempfile
import unittest

from dotenv import dotenv_values
from dotenv.parser import parse_stream

from emulator_fixture import in_parallel

BIN = os.environ.get("REDDUCK_BIN", "redduck")
SEED = 20261126


def run(*args, stdin=None):
    return subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=60)


def read_universal(path):
    with open(path, encoding="utf-8") as f:  # universal newlines, as dotenv_values reads a file
        return f.read()


def python_first_problem(path):
    """The line redduck must report (None if python-dotenv reads every statement): the first statement
    python-dotenv cannot parse or that has no `=`. python-dotenv names the line after the previous statement;
    redduck names the statement's own first non-blank line."""
    text = read_universal(path)
    lines = text.split("\n")
    for b in parse_stream(io.StringIO(text)):
        if b.error or (b.key is not None and b.value is None):
            line = b.original.line
            while line <= len(lines) and not lines[line - 1].strip():
                line += 1
            return line
    return None


# ---- the generator ----------------------------------------------------------------------------------------

KEY_POOL = ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "connector.rs.workgroup",
            "connector.rs.aws_session_token", "DB_PASSWORD", "A", "b_2", "x.y-z", "_UNDER", "CL\u00c9", "exportable"]
UNQUOTED_TOKENS = ["us-east-1", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY", "a#b", "$HOME", "${X}", "C:\\dir\\", "caf\u00e9",
                   "\u2615", "x=y", "\\n", "mid'quote", 'mid"dq', "\u65e5\u672c", "100%", "a\\'b", "#lead"]
SINGLE_PIECES = ["abc", " ", "#", '"', "\\'", "\\\\", "\\n", "\n", "$X", "\u00e9", "\t", "\\", "=", "x y"]
DOUBLE_PIECES = ["abc", " ", "#", "'", '\\"', "\\\\", "\\n", "\\t", "\\r", "\\a", "\\x41", "\\u00e9", "\n",
                 "\u00e9", "$X", "\\$", "\\'", "\\", "\u3000", "\\b\\f\\v"]
TAILS = ["", "", "", " ", "\t", " # comment", "#c", "  # it's \"quoted\"", " #"]
FILLER = ["", "   ", "\t", "# comment", "  # indented comment", "#=x", "# KEY='v'", "export # only a comment"]
BAD = ["JUSTKEY", "FOO BAR=1", "=x", "K='unterminated", 'K="unterminated', "K='x' junk", "export ", "'' = 1",
       "K=\"x\"y", "  lone_word # c"]


def gen_key(rng):
    r = rng.random()
    if r < 0.7:
        name = rng.choice(KEY_POOL)  # a small pool: duplicates happen
    else:
        name = rng.choice("ABCXYZ_abc") + "".join(rng.choice("ABCdef019_.-") for _ in range(rng.randint(0, 8)))
    r = rng.random()
    if r < 0.15:
        return "export " + name
    if r < 0.2:
        return "export\t" + name
    if r < 0.28:
        return "'" + name + rng.choice(["", " with space", "#hash", "=eq"]) + "'"
    return name


def gen_value(rng):
    r = rng.random()
    if r < 0.35:
        words = [rng.choice(UNQUOTED_TOKENS) for _ in range(rng.randint(1, 3))]
        value = "".join(w + rng.choice([" ", "  ", "\t"]) for w in words[:-1]) + words[-1]
        return value + rng.choice(TAILS + ["  ", " \u00a0"])
    if r < 0.6:
        body = "".join(rng.choice(SINGLE_PIECES) for _ in range(rng.randint(0, 6)))
        return "'" + body + "'" + rng.choice(TAILS)
    if r < 0.9:
        body = "".join(rng.choice(DOUBLE_PIECES) for _ in range(rng.randint(0, 6)))
        return '"' + body + '"' + rng.choice(TAILS)
    return rng.choice(["", " ", " # empty", "''", '""', "'' # c"])


def gen_file(rng):
    lines = []
    for _ in range(rng.randint(1, 14)):
        if rng.random() < 0.25:
            lines.append(rng.choice(FILLER))
            continue
        indent = rng.choice(["", "", "", "  ", "\t"])
        before_eq = rng.choice(["", "", "", " ", "\t"])
        after_eq = rng.choice(["", "", "", " ", "\t"])
        lines.append(indent + gen_key(rng) + before_eq + "=" + after_eq + gen_value(rng))
    if rng.random() < 0.15:
        lines.insert(rng.randint(0, len(lines)), rng.choice(BAD))
    text = "\n".join(lines) + ("\n" if rng.random() < 0.8 else "")
    eol = rng.choices(["\n", "\r\n", "\r"], weights=[70, 25, 5])[0]
    return text.replace("\n", eol)


class DotenvOracle(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        probe = run("env", "--help")
        if probe.returncode != 0:
            raise AssertionError(f"`{BIN} env --help` failed (is rd_cmd_env dispatched from main.c?): {probe.stderr}")

    def test_parse_matches_python_dotenv(self):
        rng = random.Random(SEED)
        clean = failed = 0
        with tempfile.TemporaryDirectory() as tmp:
            # the files are generated in order (one seeded rng), then redduck reads them side by side and
            # each is checked in order against python-dotenv
            cases = []
            for n in range(200):
                path = os.path.join(tmp, f"case{n:03d}.env")
                text = gen_file(rng)
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write(text)
                cases.append((n, path, text))
            results = in_parallel(lambda case: run("env", "dump-json", case[1]), cases)
            self.assertEqual(len(results), 200)
            for (n, path, text), got in zip(cases, results):
                expected_line = python_first_problem(path)
                with self.subTest(case=n, text=text):
                    if expected_line is None:
                        self.assertEqual(got.returncode, 0, got.stderr)
                        ours = json.loads(got.stdout)
                        theirs = dotenv_values(path, interpolate=False)
                        self.assertEqual(list(ours.items()), list(theirs.items()))
                        clean += 1
                    else:
                        self.assertEqual(got.returncode, 1, got.stdout)
                        self.assertIn(f"{path}:{expected_line}: ", got.stderr)
                        self.assertEqual(got.stdout, "")
                        failed += 1
        # the generator must exercise both sides
        self.assertGreater(clean, 120)
        self.assertGreater(failed, 10)

    def test_set_reads_back_in_python_dotenv(self):
        rng = random.Random(SEED + 1)
        pieces = ["a", "Z9", " ", "  ", "\t", "#", " #", "'", '"', "\\", "\\n", "\n", "\r\n", "\r", "$X", "${Y}",
                  "\u00e9", "\u2615", "\u00a0", "\u3000", "=", "/", "+", "\x07", "\x0b", "\x0c", "\\'", '\\"']
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, ".env")
            with open(path, "w", encoding="utf-8") as f:
                f.write("# kept\nKEEP='kept value'\n")
            os.chmod(path, 0o644)
            expected = {"KEEP": "kept value"}
            for n in range(120):
                key = rng.choice(["K%d" % rng.randint(0, 30), "connector.rs.k%d" % rng.randint(0, 5)])
                value = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))
                if value.endswith("\\"):
                    value += "x"  # values that need quotes and end in a backslash are refused (tested below)
                if rng.random() < 0.5:
                    got = run("env", "set", tmp, key, "-", stdin=value + "\n")
                else:
                    got = run("env", "set", tmp, "--", key, value)
                self.assertEqual(got.returncode, 0, f"{value!r}: {got.stderr}")
                if len(value.strip()) > 3:
                    self.assertNotIn(value, got.stderr + got.stdout)
                expected[key] = value
                with self.subTest(n=n, value=value):
                    self.assertEqual(dotenv_values(path, interpolate=False), expected)
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
            ours = json.loads(run("env", "dump-json", path).stdout)
            self.assertEqual(ours, expected)
            with open(path, encoding="utf-8") as f:
                self.assertTrue(f.read().startswith("# kept\nKEEP='kept value'\n"))
            self.assertEqual(sorted(os.listdir(tmp)), [".env"])  # no temporary file left

    def test_set_backslash_endings(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, ".env")
            self.assertEqual(run("env", "set", tmp, "WIN", "C:\\dir\\").returncode, 0)
            self.assertEqual(run("env", "set", tmp, "SPACED", "a b\\").returncode, 0)
            bad = run("env", "set", tmp, "BAD", " x\\")
            self.assertEqual(bad.returncode, 2)
            self.assertIn("ends with a backslash", bad.stderr)
            self.assertEqual(dotenv_values(path, interpolate=False), {"WIN": "C:\\dir\\", "SPACED": "a b\\"})


class EnvCommand(unittest.TestCase):
    def test_show_masks_secrets(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, ".env"), "w", encoding="utf-8") as f:
                f.write("AWS_REGION=us-east-1\n"
                        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
                        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG\n"
                        "DB_PASSWORD=short\n"
                        "connector.rs.workgroup=analytics\n"
                        "connector.rs.aws_session_token='\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9'\n"
                        "API_KEY=\n")
            got = run("env", "show", tmp, "--json")
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertEqual(json.loads(got.stdout), {
                "AWS_REGION": "us-east-1",
                "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
                "AWS_SECRET_ACCESS_KEY": "wJ\u2026",
                "DB_PASSWORD": "****",
                "connector.rs.workgroup": "analytics",
                "connector.rs.aws_session_token": "\u00e9\u00e9\u2026",
                "API_KEY": "",
            })
            text = run("env", "show", tmp)
            self.assertEqual(text.returncode, 0, text.stderr)
            self.assertIn("AWS_REGION=us-east-1\n", text.stdout)
            self.assertNotIn("wJalrXUtnFEMI", text.stdout)
            self.assertNotIn("short", text.stdout)
            names = run("env", "show", "--reveal-names-only", tmp)
            self.assertEqual(names.stdout.split(), ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                     "DB_PASSWORD", "connector.rs.workgroup",
                                                     "connector.rs.aws_session_token", "API_KEY"])

    def test_show_names_the_bad_line_only(self):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, ".env"), "w", encoding="utf-8") as f:
                f.write("A=1\n\nTOKEN='hunter2-secret\n")
            got = run("env", "show", tmp)
            self.assertEqual(got.returncode, 1)
            self.assertIn(".env:3: unterminated single-quoted value", got.stderr)
            self.assertNotIn("hunter2", got.stderr)

    def test_configure_from_a_pipe(self):
        with tempfile.TemporaryDirectory() as tmp:
            got = run("env", "configure", tmp, "--keys", "AWS_REGION,connector.rs.aws_secret_access_key,SKIPPED,X",
                      stdin="eu-west-1\ns3cr3t 'with' \"quotes\"\n\n")
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertNotIn("s3cr3t", got.stderr + got.stdout)
            path = os.path.join(tmp, ".env")
            self.assertEqual(dotenv_values(path, interpolate=False), {
                "AWS_REGION": "eu-west-1",
                "connector.rs.aws_secret_access_key": "s3cr3t 'with' \"quotes\"",
            })
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_usage_errors(self):
        with tempfile.TemporaryDirectory() as tmp:
            for args in (["env"], ["env", "frob"], ["env", "set", "K"], ["env", "set", tmp, "1BAD", "v"],
                         ["env", "configure", tmp], ["env", "show", "--nope"], ["env", "dump-json"],
                         ["env", "set", tmp, "K", "-secretish"], ["env", "set", tmp, "K", "v", "extra"]):
                got = run(*args)
                self.assertEqual(got.returncode, 2, args)
                self.assertNotIn("secretish", got.stderr)
                self.assertNotIn("extra", got.stderr)
            self.assertEqual(os.listdir(tmp), [])
            self.assertIn("VALUE '-'", run("env", "--help").stdout)


if __name__ == "__main__":
    unittest.main()
