"""_install planning against real pack directories (installed for real from real archives)."""
from __future__ import annotations

import os

from ansible_collections.attune.packs.plugins.module_utils import _install
from support.synth import make_pack_archive, make_pack_tree


def install_archive(tmp_path, ref="cm", version="1.0.0"):
    archive, checksum = make_pack_archive(str(tmp_path / "src"), ref, version)
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    target = _install.src_target(ref, archive, None, checksum, options)
    _install.apply([_install.plan_target(packs_dir, target)], options)
    return packs_dir, target


def test_converged_pack_plans_nothing(tmp_path):
    packs_dir, target = install_archive(tmp_path)
    step = _install.plan_target(packs_dir, target)
    assert (step.action, step.changed) == ("none", False)


def test_unreadable_provenance_is_reinstalled_and_says_why(tmp_path):
    packs_dir, target = install_archive(tmp_path)
    with open(os.path.join(packs_dir, "cm", ".attune", "metadata.json"), "w") as handle:
        handle.write("{not json")
    step = _install.plan_target(packs_dir, target)
    assert step.action == "reinstall" and step.changed
    assert "provenance is unreadable" in step.reason and "metadata.json is not valid JSON" in step.reason, step.reason
    options = _install.Options(packs_dir, durable=False)
    _install.apply([step], options)
    assert _install.plan_target(packs_dir, target).action == "none"  # repaired


def test_remove_unlisted_plans_only_managed_packs(tmp_path):
    packs_dir, _target = install_archive(tmp_path, "keepme")
    install_archive(tmp_path / "other", "dropme")  # a second managed pack, in its own packs dir first
    os.rename(str(tmp_path / "other" / "packs" / "dropme"), os.path.join(packs_dir, "dropme"))
    make_pack_tree(os.path.join(packs_dir, "handmade"), "handmade", "1.0.0")
    steps = _install.plan_unlisted(packs_dir, {"keepme"})
    assert [(step.ref, step.action) for step in steps] == [("dropme", "remove")]
