#!/usr/bin/env python
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the runnable examples of the user guides (docs/docsite/rst/*.rst), in order, as a new user would.

A guide marks a code block as runnable with an RST comment right before it (comments are not rendered):

``.. runnable: console``
    a ``console`` block: every line starting with ``$ `` is a command (``\\`` or an open quote continues it on the
    next line, ``<<EOF`` takes the lines up to ``EOF``); other lines are sample output and are not checked.
``.. runnable: file NAME``
    the block is written to ``NAME`` (a playbook, a vars file …) in the working directory.

All runnable blocks of one guide run in one ``bash -euo pipefail`` script (variables and files carry over), in a new
working directory, with HOME in a scratch directory whose ``~/.ansible/collections`` holds this collection (staged
from the checkout, as ``make install`` puts it there) and the ansible of a venv first on PATH.  The first command
that fails fails the guide, naming its line.  Run by tests/functional/test_guide_examples.py (``make pytest``);
by hand: ``.venv/bin/python .ci/check_guide_examples.py [guide_x.rst ...]`` (``ATTUNE_GUIDE_VERBOSE=1`` prints
every guide's output).
"""

import os
import re
import shlex
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RST = os.path.join(REPO, "docs", "docsite", "rst")
MARK = re.compile(r"^(?P<indent> *)\.\. runnable: *(?P<kind>console|file)(?: +(?P<arg>\S+))? *$")
DIRECTIVE = re.compile(r"^(?P<indent> *)\.\. code-block:: *(?P<lang>\S+) *$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(?P<word>[A-Za-z_]+)\1")
# the example registry server: stopped after each guide, whatever happened
STOP_SERVER = 'python3 ~/.ansible/collections/ansible_collections/attune/packs/docs/examples/serve_registry.py stop'


class Block(object):
    def __init__(self, guide, line, kind, arg, lang, body):
        self.guide, self.line, self.kind, self.arg, self.lang, self.body = guide, line, kind, arg, lang, body

    def where(self):
        return "%s:%d" % (self.guide, self.line)


def blocks(path):
    """The runnable blocks of one guide, in order."""
    lines = open(path, encoding="utf-8").read().split("\n")
    name = os.path.basename(path)
    found = []
    i = 0
    while i < len(lines):
        mark = MARK.match(lines[i])
        if not mark:
            if lines[i].lstrip().startswith(".. runnable"):
                raise ValueError("%s:%d: unknown runnable mark %r" % (name, i + 1, lines[i].strip()))
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not lines[j].strip():
            j += 1
        directive = DIRECTIVE.match(lines[j]) if j < len(lines) else None
        if not directive or directive.group("indent") != mark.group("indent"):
            raise ValueError("%s:%d: a runnable mark must be followed by a code-block at its indentation" % (name, i + 1))
        indent = len(directive.group("indent"))
        k = j + 1
        body = []
        while k < len(lines) and (not lines[k].strip() or len(lines[k]) - len(lines[k].lstrip()) > indent):
            body.append(lines[k])
            k += 1
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        cut = min(len(line) - len(line.lstrip()) for line in body if line.strip())
        body = [line[cut:] for line in body]
        kind, arg, lang = mark.group("kind"), mark.group("arg"), directive.group("lang")
        if kind == "console" and lang != "console":
            raise ValueError("%s:%d: runnable: console marks a code-block:: console, not %s" % (name, i + 1, lang))
        if kind == "file" and not arg:
            raise ValueError("%s:%d: runnable: file needs a file name" % (name, i + 1))
        found.append(Block(name, j + 1, kind, arg, lang, body))
        i = k
    return found


def commands(block):
    """The commands of a console block: ``[(line, text)]``."""
    result = []
    lines = block.body
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            i += 1  # sample output
            continue
        start = block.line + 2 + i
        text = line[2:]
        while (text.endswith("\\") or _open_quote(text)) and i + 1 < len(lines):
            i += 1  # a continued line, or a quoted string that goes on
            text += "\n" + lines[i]
        heredoc = HEREDOC.search(text)
        if heredoc:
            word = heredoc.group("word")
            while i + 1 < len(lines):
                i += 1
                text += "\n" + lines[i]
                if lines[i].strip() == word:
                    break
            else:
                raise ValueError("%s:%d: heredoc %s is not closed in the block" % (block.guide, start, word))
        result.append((start, text))
        i += 1
    return result


def _open_quote(text):
    try:
        shlex.split(text.split("<<", 1)[0])
    except ValueError:
        return True
    return False


def script(guide_blocks):
    """One bash script for the runnable blocks of a guide."""
    # on exit: stop the example registry server and what the guide started in the background (``&``)
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) >/dev/null 2>&1 || true; %s >/dev/null 2>&1 || true' EXIT" % STOP_SERVER]
    for block in guide_blocks:
        if block.kind == "file":
            parts.append("echo %s" % _quote("+ [%s] write %s" % (block.where(), block.arg)))
            parts.append("cat > %s <<'ATTUNE_GUIDE_EOF'\n%s\nATTUNE_GUIDE_EOF" % (_quote(block.arg), "\n".join(block.body)))
            continue
        for line, text in commands(block):
            where = "%s:%d" % (block.guide, line)
            parts.append("echo %s" % _quote("+ [%s] $ %s" % (where, text.split("\n", 1)[0])))
            parts.append("ATTUNE_GUIDE_AT=%s" % _quote(where))
            parts.append(text)
    return "\n".join(parts) + "\n"


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def prepare_home(home, repo=REPO):
    """HOME with this collection in ~/.ansible/collections (the tracked files, staged as .ci/stage does)."""
    dest = os.path.join(home, ".ansible", "collections", "ansible_collections", "attune", "packs")
    subprocess.run([os.path.join(repo, ".ci", "stage"), dest], check=True, stdout=subprocess.DEVNULL)
    return dest


def environment(home, venv_bin):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "ATTUNE_", "PYTEST_", "VIRTUAL_ENV")))
    env.update({
        "HOME": home,
        "XDG_CACHE_HOME": os.path.join(home, ".cache"),
        "PATH": venv_bin + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "false",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
    })
    return env


def run_guide(name, home, venv_bin, timeout=300):
    """Run the runnable blocks of guide ``name`` in a new directory; return (ok, output, number of commands)."""
    guide_blocks = blocks(os.path.join(RST, name))
    count = sum(1 if b.kind == "file" else len(commands(b)) for b in guide_blocks)
    if not guide_blocks:
        return True, "", 0
    work = tempfile.mkdtemp(prefix=name.replace(".rst", "-"), dir=home)
    path = os.path.join(work, ".guide.sh")
    with open(path, "w") as handle:
        handle.write(script(guide_blocks))
    proc = subprocess.run(["bash", path], cwd=work, env=environment(home, venv_bin), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=timeout, check=False)
    return proc.returncode == 0, proc.stdout, count


def main(argv):
    venv_bin = os.path.join(REPO, ".venv", "bin")
    names = [os.path.basename(a) for a in argv] or sorted(n for n in os.listdir(RST) if n.endswith(".rst"))
    failed = []
    with tempfile.TemporaryDirectory(prefix="attune-guides-") as home:
        prepare_home(home)
        for name in names:
            ok, output, count = run_guide(name, home, venv_bin)
            print("check-guide-examples: %s %s (%d runnable commands/files)" % ("OK" if ok else "FAIL", name, count))
            if not ok or os.environ.get("ATTUNE_GUIDE_VERBOSE"):
                print(output)
            if not ok:
                failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
