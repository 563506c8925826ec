"""The runnable examples of the user guides work as written (issue 18 item 3).

The guides mark their runnable code blocks (``.. runnable: console`` / ``.. runnable: file NAME``); the runner
.ci/check_guide_examples.py runs them in order, per guide, as a new user would after ``make install``: HOME in a
scratch directory with this collection in ~/.ansible/collections, this venv's ansible first on PATH, offline (the
example registry and its server docs/examples/serve_registry.py). All guides run in one test, one after the other,
because the example server listens on the fixed port 127.0.0.1:8643 that the example index names.
"""
import importlib.util
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_spec = importlib.util.spec_from_file_location("check_guide_examples", os.path.join(REPO, ".ci", "check_guide_examples.py"))
guides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(guides)

# each of these guides must keep runnable examples (a guide that loses its marks would silently stop being checked)
MUST_RUN = ("guide_getting_started.rst", "guide_fleets.rst", "guide_registries.rst", "guide_running_registries.rst",
            "guide_attune_api.rst")


def test_guides_run_as_written(tmp_path):
    home = str(tmp_path / "home")
    os.makedirs(home)
    guides.prepare_home(home)
    names = sorted(n for n in os.listdir(guides.RST) if n.endswith(".rst"))
    failures, counts = [], {}
    for name in names:
        ok, output, counts[name] = guides.run_guide(name, home, os.path.dirname(sys.executable))
        if not ok:
            failures.append("%s failed:\n%s" % (name, output[-6000:]))
    assert not failures, "\n\n".join(failures)
    assert all(counts[name] > 0 for name in MUST_RUN), counts


def _blocks(tmp_path, text):
    path = tmp_path / "guide_x.rst"
    path.write_text(text)
    return guides.blocks(str(path))


def test_parser_reads_commands_continuations_and_heredocs(tmp_path):
    found = _blocks(tmp_path, (
        "Title\n=====\n\n.. runnable: console\n.. code-block:: console\n\n"
        "    $ echo one \\\n        two\n    one two\n    $ cat > f <<EOF\n    a: $HOME\n    EOF\n\n"
        "Text.\n\n.. code-block:: console\n\n    $ not-run\n\n"
        "  .. runnable: file play.yml\n  .. code-block:: yaml\n\n      - hosts: localhost\n        tasks: []\n\nEnd.\n"))
    assert [(b.kind, b.arg, b.line) for b in found] == [("console", None, 5), ("file", "play.yml", 21)]
    assert [text for _line, text in guides.commands(found[0])] == ["echo one \\\n    two", "cat > f <<EOF\na: $HOME\nEOF"]
    assert found[1].body == ["- hosts: localhost", "  tasks: []"]
    script = guides.script(found)
    assert "not-run" not in script and "one two\n" not in script.replace("echo one \\\n    two", "")


def test_parser_continues_an_open_quote(tmp_path):
    found = _blocks(tmp_path, ".. runnable: console\n.. code-block:: console\n\n    $ echo '{\"a\": 1,\n         \"b\": 2}'\n    {...}\n")
    assert [text for _line, text in guides.commands(found[0])] == ["echo '{\"a\": 1,\n     \"b\": 2}'"]


def test_parser_refuses_a_mark_without_a_block(tmp_path):
    with pytest.raises(ValueError, match="must be followed by a code-block"):
        _blocks(tmp_path, ".. runnable: console\n\nSome text.\n")
    with pytest.raises(ValueError, match="unknown runnable mark"):
        _blocks(tmp_path, ".. runnable: shell\n.. code-block:: console\n\n    $ true\n")
    with pytest.raises(ValueError, match="not yaml"):
        _blocks(tmp_path, ".. runnable: console\n.. code-block:: yaml\n\n    a: 1\n")


def test_a_failing_command_fails_the_guide_and_names_its_line(tmp_path, monkeypatch):
    rst = tmp_path / "rst"
    rst.mkdir()
    (rst / "guide_x.rst").write_text(".. runnable: console\n.. code-block:: console\n\n    $ true\n    $ false\n    $ echo never\n")
    monkeypatch.setattr(guides, "RST", str(rst))
    home = tmp_path / "home"
    home.mkdir()
    ok, output, count = guides.run_guide("guide_x.rst", str(home), os.path.dirname(sys.executable))
    assert not ok and count == 3
    assert "[guide_x.rst:5] $ false" in output and "never" not in output.replace("$ echo never", "")
