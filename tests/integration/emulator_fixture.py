"""Starts `redduck emulator` for integration tests: loopback only, a temporary data dir, a bounded
lifetime (the emulator stops by itself even if a test dies), and a clean AWS environment pointed at it."""
import os
import shutil
import subprocess
import tempfile
import time

REDDUCK = os.environ.get("REDDUCK_BIN", "redduck")


def clean_env(home):
    """The process environment minus every AWS_* variable, with HOME isolated and IMDS disabled."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = home
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["AWS_CONFIG_FILE"] = os.path.join(home, ".aws", "config")
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(home, ".aws", "credentials")
    env["NO_PROXY"] = "127.0.0.1,localhost,::1"
    env["no_proxy"] = env["NO_PROXY"]
    return env


class Emulator:
    def __init__(self, args=(), config=None, lifetime=600, data_dir=None):
        self.tmp = tempfile.mkdtemp(prefix="rd-emu-")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(os.path.join(self.home, ".aws"))
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "emulator.log")
        cmd = [REDDUCK, "emulator", "--port", "0", "--data-dir", self.data_dir, "--lifetime", str(lifetime)]
        if config is not None:
            cfg_path = os.path.join(self.tmp, "emulator.json")
            with open(cfg_path, "w") as f:
                f.write(config)
            cmd += ["--config", cfg_path]
        cmd += list(args)
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=clean_env(self.home))
        line = self.proc.stdout.readline()
        if "listening on http://127.0.0.1:" not in line:
            self.stop()
            raise RuntimeError("emulator did not start: %r; log: %s" % (line, self.read_log()))
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.endpoint = "http://127.0.0.1:%d" % self.port

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def env(self, key="test", secret="test", region="us-east-1", **extra):
        env = clean_env(self.home)
        env.update({"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": region,
                    "AWS_DEFAULT_REGION": region, "AWS_ENDPOINT_URL": self.endpoint})
        env.update(extra)
        return env

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        if not self.log.closed:
            self.log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(pred, timeout=30.0, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return None
