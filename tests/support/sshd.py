"""A real OpenSSH server on 127.0.0.1 for tests that reach a host over SSH.

``SshServer(workdir)`` generates its own host key, client key,
``authorized_keys``, ``known_hosts`` and ``sshd_config`` under ``workdir`` and
runs ``sshd -D`` (foreground, so the test owns the process) on a free port of
127.0.0.1, logging to ``workdir/sshd.log``.  ``inventory_vars()`` are the
host variables an Ansible host needs to use it with strict host key checking.

``ensure_sshd()`` finds ``sshd`` and, when it is missing and we are root on a
Debian-like system, installs ``openssh-server`` with apt-get (services are not
started by the package: a ``policy-rc.d`` that forbids it is put in place for
the install when the system has none).  It raises :class:`SshdUnavailable`
with the reason when sshd cannot be had, so callers can skip with that reason.
"""
import getpass
import os
import shutil
import socket
import subprocess
import time

from support.registry_server import StartStop, end_process

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
POLICY_RC = "/usr/sbin/policy-rc.d"


class SshdUnavailable(Exception):
    pass


def find_sshd():
    for candidate in SSHD_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("sshd")


def ensure_sshd():
    """Path of sshd, installing openssh-server with apt-get when needed."""
    sshd = find_sshd()
    if sshd:
        return sshd
    if os.geteuid() != 0:
        raise SshdUnavailable("sshd is not installed and the tests are not running as root to install it")
    if not shutil.which("apt-get"):
        raise SshdUnavailable("sshd is not installed and apt-get is not available to install openssh-server")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    created_policy = False
    if not os.path.exists(POLICY_RC):
        with open(POLICY_RC, "w") as handle:
            handle.write("#!/bin/sh\n# temporary, from the attune.packs tests: do not start services\nexit 101\n")
        os.chmod(POLICY_RC, 0o755)
        created_policy = True
    try:
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "openssh-server"]
        proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, text=True, check=False)
            proc = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    finally:
        if created_policy:
            os.unlink(POLICY_RC)
    sshd = find_sshd()
    if not sshd:
        raise SshdUnavailable("apt-get install openssh-server failed: %s" % (proc.stderr or proc.stdout)[-2000:])
    return sshd


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SshServer(StartStop):
    def __init__(self, workdir, user=None):
        self.workdir = os.path.abspath(str(workdir))
        self.user = user or getpass.getuser()
        self.port = None
        self.process = None
        self.sshd = None
        self.host_key = os.path.join(self.workdir, "ssh_host_ed25519_key")
        self.client_key = os.path.join(self.workdir, "id_ed25519")
        self.authorized_keys = os.path.join(self.workdir, "authorized_keys")
        self.known_hosts = os.path.join(self.workdir, "known_hosts")
        self.config = os.path.join(self.workdir, "sshd_config")
        self.log = os.path.join(self.workdir, "sshd.log")
        self.pid_file = os.path.join(self.workdir, "sshd.pid")

    def _keygen(self, path, comment):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path], check=True,
                       capture_output=True)

    def _write_config(self):
        lines = [
            "Port %d" % self.port,
            "ListenAddress 127.0.0.1",
            "HostKey %s" % self.host_key,
            "PidFile %s" % self.pid_file,
            "AuthorizedKeysFile %s" % self.authorized_keys,
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowUsers %s" % self.user,
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
            "MaxStartups 50",
            "MaxSessions 50",
        ]
        with open(self.config, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def start(self):
        self.sshd = ensure_sshd()
        os.makedirs(self.workdir, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory sshd insists on
        if not os.path.exists(self.host_key):
            self._keygen(self.host_key, "attune-test-host")
            self._keygen(self.client_key, "attune-test-client")
        with open(self.client_key + ".pub") as handle:
            public = handle.read().strip()
        with open(self.authorized_keys, "w") as handle:
            handle.write(public + "\n")
        os.chmod(self.authorized_keys, 0o600)
        last_error = None
        for _attempt in range(5):
            self.port = free_port()
            with open(self.host_key + ".pub") as handle:
                key_type, key = handle.read().split()[:2]
            with open(self.known_hosts, "w") as handle:
                handle.write("[127.0.0.1]:%d %s %s\n" % (self.port, key_type, key))
            self._write_config()
            check = subprocess.run([self.sshd, "-t", "-f", self.config], capture_output=True, text=True, check=False)
            if check.returncode != 0:
                raise RuntimeError("sshd rejects its test configuration: %s" % check.stderr)
            log = open(self.log, "ab")
            self.process = subprocess.Popen([self.sshd, "-D", "-e", "-f", self.config], stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
            log.close()
            try:
                self._wait_ready()
                return self
            except RuntimeError as exc:
                last_error = exc
                self.stop()
        raise RuntimeError("sshd did not start: %s" % last_error)

    def ssh_command(self, *remote):
        return ["ssh", "-p", str(self.port), "-i", self.client_key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile=%s" % self.known_hosts, "-o", "StrictHostKeyChecking=yes",
                "%s@127.0.0.1" % self.user] + list(remote)

    def _wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("sshd exited with %s; log:\n%s" % (self.process.returncode, self.read_log()))
            try:
                proc = subprocess.run(self.ssh_command("true"), capture_output=True, text=True, timeout=15, check=False)
            except subprocess.TimeoutExpired:
                continue
            if proc.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("sshd on port %s did not accept a login; log:\n%s" % (self.port, self.read_log()))

    def read_log(self):
        try:
            with open(self.log) as handle:
                return handle.read()[-4000:]
        except IOError:
            return ""

    def inventory_vars(self, python):
        return dict(
            ansible_connection="ssh",
            ansible_host="127.0.0.1",
            ansible_port=self.port,
            ansible_user=self.user,
            ansible_ssh_private_key_file=self.client_key,
            ansible_ssh_common_args="-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes" % self.known_hosts,
            # no persistent ControlMaster process outliving the test's sshd
            ansible_ssh_args="-o ControlMaster=no -o ControlPath=none",
            ansible_python_interpreter=python,
        )

    def stop(self):
        end_process(self.process)
        self.process = None
