"""The shared doc fragment and the shared argument spec describe the same options."""
import yaml

from ansible_collections.attune.packs.plugins.doc_fragments.registry import ModuleDocFragment
from ansible_collections.attune.packs.plugins.module_utils._base._common import (
    REGISTRY_OPTION_NAMES, controller_argument_spec, registry_argument_spec, resolve_argument_spec,
)

KEYS = ("type", "elements", "default", "required", "choices")


def normalise(spec):
    result = {}
    for name, option in spec.items():
        item = dict((key, option[key]) for key in KEYS if option.get(key) not in (None, False))
        if option.get("options") or option.get("suboptions"):
            item["options"] = normalise(option.get("options") or option.get("suboptions"))
        result[name] = item
    return result


def test_registry_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert normalise(documented) == normalise(registry_argument_spec())
    assert set(documented) == set(REGISTRY_OPTION_NAMES)


def test_resolve_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.RESOLVE)["options"]
    assert normalise(documented) == normalise(resolve_argument_spec())


def test_controller_fragment_matches_argument_spec():
    documented = yaml.safe_load(ModuleDocFragment.CONTROLLER)["options"]
    assert normalise(documented) == normalise(controller_argument_spec())


def test_secret_options_are_no_log():
    assert registry_argument_spec()["registries"]["options"]["headers"]["no_log"] is True
