"""Three Attune registries with real pack archives on one logging HTTPS test server.

Shared by the fleet tests (``tests/functional/test_role_packs.py``) and the
fleet benchmark (``bench/bench_fleet.py``), so both measure the same site.

Registries in priority order: ``corp`` (1, optionally behind an Authorization
header), ``community`` (2) and ``public`` (3).  ``public`` also carries a newer
slack and a pack named like the internal one: a lock must pin the
higher-priority registries' packs (``EXPECTED``).
"""
import os
import subprocess

from support import synth
from testdata import make_index

PACKS = ["slack@^2", "aws", "github", "internal"]
REGISTRIES = ("corp", "community", "public")
# (registry, ref, version)
PUBLISHED = (
    ("corp", "internal", "0.3.0"),
    ("community", "slack", "2.0.0"),
    ("community", "slack", "2.1.0"),
    ("community", "aws", "1.2.0"),
    ("public", "slack", "9.0.0"),
    ("public", "github", "3.0.0"),
    ("public", "internal", "99.0.0"),
)
# ref -> (registry, version) that resolving PACKS must give
EXPECTED = {"slack": ("community", "2.1.0"), "aws": ("community", "1.2.0"), "github": ("public", "3.0.0"),
            "internal": ("corp", "0.3.0")}


def bare_python(candidate="/usr/bin/python3"):
    """``candidate`` when it has PyYAML but not requests, else None.

    Hosts with such an interpreter prove that the controller does all registry and
    download work (the modules need only PyYAML there for lock files and metadata).
    """
    if os.path.exists(candidate):
        probe = subprocess.run([candidate, "-c", "import yaml\ntry:\n import requests\nexcept ImportError:\n print('bare')"],
                               capture_output=True, text=True, check=False)
        if probe.stdout.strip() == "bare":
            return candidate
    return None


class PackSite(object):
    """The registries of ``REGISTRIES`` serving ``PUBLISHED`` from ``server`` (a RegistryServer).

    ``token``: when set, the corp registry refuses requests without ``Authorization: <token>``
    and :meth:`options` sends it.
    """

    def __init__(self, server, workdir, token=None):
        self.server = server
        self.token = token
        self.files = os.path.join(workdir, "files")
        os.makedirs(self.files)
        server.add_directory("/files", self.files)
        self.entries = dict((name, []) for name in REGISTRIES)
        self.archives = {}  # (ref, version) -> (url path, checksum, source tree)
        for registry, ref, version in PUBLISHED:
            self.publish(registry, ref, version)

    def publish(self, registry, ref, version):
        """Build an archive of ``ref`` ``version`` and list it in ``registry``'s index."""
        path, checksum = synth.make_pack_archive(self.files, ref, version,
                                                 files={"VERSION": "%s %s from %s\n" % (ref, version, registry)})
        url_path = "/files/" + os.path.basename(path)
        self.archives[(ref, version)] = (url_path, checksum, os.path.join(self.files, "%s-%s.src" % (ref, version)))
        self.entries[registry].append(synth.make_entry(ref, version, archive_url=self.server.url(url_path.lstrip("/")),
                                                       archive_checksum=checksum))
        required = {"Authorization": self.token} if self.token and registry == "corp" else None
        self.server.add_json("/%s.json" % registry, make_index(registry, self.entries[registry]), required_headers=required)

    def options(self, cache_dir, **extra):
        """Registry options for the modules (``packs_registry_options`` of the role)."""
        options = {
            "registries": [{"name": name, "url": self.server.url(name + ".json"), "priority": number}
                           for number, name in enumerate(REGISTRIES, 1)],
            "ca_path": self.server.ca_path,
            "cache_dir": str(cache_dir),
        }
        if self.token:
            options["registries"][0]["headers"] = {"Authorization": self.token}
        options.update(extra)
        return options

    def index_gets(self):
        """GETs of each registry's index, by registry name."""
        return dict((name, self.server.count("/%s.json" % name)) for name in REGISTRIES)

    def archive_gets(self):
        """GETs of each archive, by URL path."""
        counts = {}
        for request in self.server.requests:
            if request.method == "GET" and request.path.startswith("/files/"):
                counts[request.path] = counts.get(request.path, 0) + 1
        return counts

    def archive_path(self, ref):
        return self.archives[(ref, EXPECTED[ref][1])][0]

    def checksum(self, ref, version=None):
        return self.archives[(ref, version or EXPECTED[ref][1])][1]
