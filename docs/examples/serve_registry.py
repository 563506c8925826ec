#!/usr/bin/env python
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Serve the example registry of attune.packs over HTTPS on 127.0.0.1:8643, to try registry installs offline.

The directory this script is in (``docs/examples`` of the collection) is served read-only: ``registry-index.json``
and the archives of the ``hello_registry`` pack in ``packs/``, which the index names as
``https://127.0.0.1:8643/packs/hello_registry-<version>.tar.gz``. Nothing else is reachable and nothing leaves the
machine.

Usage::

    CA=$(python3 serve_registry.py start)   # in the background (or reuse a running one); prints the CA file
    python3 serve_registry.py stop          # stop the background server
    python3 serve_registry.py serve         # in the foreground (Ctrl-C stops it)
    python3 serve_registry.py ca            # print the CA file

The TLS certificate is made on first use by a private CA that may sign only for 127.0.0.1 and localhost (X.509 name
constraints); the CA's key is never written to disk. Give the printed CA file as ``ca_path`` to the plugins. The
certificate, the pid file and the log live in ``$XDG_CACHE_HOME/attune.packs/example-registry`` (default
``~/.cache/...``; ``--state-dir`` chooses another). Needs the ``cryptography`` package, which ansible-core brings.
"""

import argparse
import datetime
import functools
import http.server
import os
import signal
import socket
import ssl
import subprocess
import sys
import time

HOST = "127.0.0.1"
PORT = 8643
ROOT = os.path.dirname(os.path.abspath(__file__))


def default_state_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "attune.packs", "example-registry")


def note(message):
    sys.stderr.write("serve_registry: %s\n" % message)


def make_certificate(state):
    """Write ca.pem, server.pem and server.key (0600) into ``state`` unless a valid set is there."""
    ca_file, cert_file, key_file = (os.path.join(state, name) for name in ("ca.pem", "server.pem", "server.key"))
    try:
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # pylint: disable=import-outside-toplevel
    except ImportError:
        sys.exit("serve_registry: needs the Python package cryptography (ansible-core depends on it: run this script with "
                 "the Python of your ansible, for example . .venv/bin/activate in a checkout of attune.packs)")
    import ipaddress  # pylint: disable=import-outside-toplevel

    now = datetime.datetime.now(datetime.timezone.utc)
    if all(os.path.exists(f) for f in (ca_file, cert_file, key_file)):
        with open(cert_file, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        expires = getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
        if expires - now > datetime.timedelta(days=1):
            return ca_file, cert_file, key_file
    os.makedirs(state, mode=0o700, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attune.packs example registry CA (127.0.0.1 only)")])
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=365)
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.NameConstraints(permitted_subtrees=[x509.IPAddress(ipaddress.ip_network("127.0.0.1/32")),
                                                                x509.DNSName("localhost")], excluded_subtrees=None),
                       critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]),
                       critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    fd = os.open(key_file + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.replace(key_file + ".new", key_file)
    for path, certificate in ((cert_file, cert), (ca_file, ca_cert)):
        with open(path + ".new", "wb") as handle:
            handle.write(certificate.public_bytes(serialization.Encoding.PEM))
        os.replace(path + ".new", path)
    return ca_file, cert_file, key_file


class Handler(http.server.SimpleHTTPRequestHandler):
    """Static files of ROOT; GET and HEAD only; no directory listings."""

    def list_directory(self, path):
        self.send_error(404, "Not Found")
        return None

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), format % args))


def serve(state):
    _ca, cert_file, key_file = make_certificate(state)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = http.server.ThreadingHTTPServer((HOST, PORT), functools.partial(Handler, directory=ROOT))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(0))
    note("serving %s on https://%s:%d/ (Ctrl-C stops)" % (ROOT, HOST, PORT))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def answers(ca_file, timeout=1.0):
    """Does the example registry answer on HOST:PORT with a certificate of our CA?"""
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with socket.create_connection((HOST, PORT), timeout=timeout) as sock:
            with context.wrap_socket(sock, server_hostname=HOST) as tls:
                tls.sendall(b"HEAD /registry-index.json HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                return tls.recv(16).startswith(b"HTTP/1.0 200") or False
    except (OSError, ssl.SSLError):
        return False


def port_in_use():
    try:
        with socket.create_connection((HOST, PORT), timeout=1.0):
            return True
    except OSError:
        return False


def read_pid(state):
    try:
        with open(os.path.join(state, "server.pid")) as handle:
            pid = int(handle.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if b"serve_registry.py" not in handle.read():
                return None  # the pid was reused by another program
        return pid
    except (OSError, ValueError):
        return None


def start(state):
    ca_file, _cert, _key = make_certificate(state)
    if answers(ca_file):
        note("already running on https://%s:%d/" % (HOST, PORT))
        return ca_file
    if port_in_use():
        sys.exit("serve_registry: port %d of %s is used by another program (or a server of another --state-dir); "
                 "stop it first" % (PORT, HOST))
    log = open(os.path.join(state, "server.log"), "ab")  # pylint: disable=consider-using-with
    child = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve", "--state-dir", state],  # pylint: disable=consider-using-with
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)
    with open(os.path.join(state, "server.pid"), "w") as handle:
        handle.write("%d\n" % child.pid)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit("serve_registry: the server exited (status %s); see %s" % (child.returncode, os.path.join(state, "server.log")))
        if answers(ca_file):
            note("started on https://%s:%d/ (pid %d); stop it with: %s stop" % (HOST, PORT, child.pid, os.path.abspath(__file__)))
            return ca_file
        time.sleep(0.1)
    child.terminate()
    sys.exit("serve_registry: the server did not answer within 15 s; see %s" % os.path.join(state, "server.log"))


def stop(state):
    pid = read_pid(state)
    if pid is None:
        note("not running (no server of %s)" % state)
        return
    os.kill(pid, signal.SIGTERM)
    for _attempt in range(100):
        if read_pid(state) is None:
            break
        time.sleep(0.05)
    try:
        os.unlink(os.path.join(state, "server.pid"))
    except OSError:
        pass
    note("stopped (pid %d)" % pid)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("command", choices=("start", "stop", "serve", "ca"))
    parser.add_argument("--state-dir", default=default_state_dir(), help="certificate, pid file and log (default: %(default)s)")
    args = parser.parse_args(argv)
    state = os.path.abspath(args.state_dir)
    if args.command == "serve":
        serve(state)
    elif args.command == "start":
        print(start(state))
    elif args.command == "stop":
        stop(state)
    else:
        print(make_certificate(state)[0])


if __name__ == "__main__":
    main()
