# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for ansible-test's pip bootstrap script (get-pip.py).

``ansible-test sanity --venv`` creates empty virtual environments and fills
them with pip by running ``get_pip_<X_Y>.py`` from its cache directory
(``~/.ansible/test/cache``), downloading it from ci-files.testing.ansible.com
when it is missing.  That host is not reachable from every build machine, so
``.ci/ansible-test`` installs this file under the same name, next to the pip
wheel of the same version downloaded from PyPI.

Like get-pip.py, it runs ``pip install <arguments>`` with pip imported from a
wheel and understands get-pip's own ``--no-setuptools`` / ``--no-wheel``
flags.  The pip version is read from this file's name.
"""
import glob
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    stem = os.path.splitext(os.path.basename(__file__))[0]
    version = stem[len("get_pip_"):].replace("_", ".")
    wheels = sorted(glob.glob(os.path.join(here, "pip-%s-*.whl" % version)))
    if not wheels:
        sys.stderr.write("get-pip shim: no pip-%s wheel in %s\n" % (version, here))
        return 1

    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    sys.path.insert(0, wheels[0])
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    return pip_main(["install"] + args)


if __name__ == "__main__":
    sys.exit(main())
