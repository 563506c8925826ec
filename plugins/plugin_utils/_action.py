# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the base of the collection's action plugins (may change without notice).

Every registry module has an action plugin of the same name.  With
``resolve_on: host`` (the default) it only runs the module.  With
``resolve_on: controller`` the registry work runs here, on the controller,
with the same core code the module would run (``module_utils._queries``):
the task arguments are validated against the module's own argument spec,
indexes go through the controller's on-disk cache (shared by all forks under
a lock), and the hosts receive the result.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_target_options, error_result, missing_libraries
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, suggestion


class TaskFailed(Exception):
    """Stop the action with a failed result."""

    def __init__(self, msg, **extra):
        super(TaskFailed, self).__init__(msg)
        self.result = dict(extra, failed=True, msg=msg)

    @classmethod
    def from_error(cls, exc, redact=None, msg=None, **extra):
        """Stop with the failed result of a core error (``_common.error_result``; ``redact``: the API client's)."""
        result = error_result(exc, redact=redact, msg=msg, **extra)
        return cls(result.pop("msg"), **result)


class RegistryActionBase(ActionBase):
    MODULE = None  # fully qualified module name

    def argument_spec(self):
        raise NotImplementedError

    def validator_kwargs(self):
        return {}

    def wants_controller(self, args):
        return args.get("resolve_on") == "controller"

    def run_module(self, module_args, task_vars):
        return self._execute_module(module_name=self.MODULE, module_args=module_args, task_vars=task_vars)

    def task_args(self):
        """The task's arguments as this action works with them (a plugin drops private ones a task may not set)."""
        return dict(self._task.args)

    def run(self, tmp=None, task_vars=None):
        result = super(RegistryActionBase, self).run(tmp, task_vars)
        args = self.task_args()
        try:
            self.check_option_names(args)
            check_target_options(args)  # before anything else: an empty api_url is not "the host" (issue 16 item 1)
            if not self.wants_controller(args):
                result.update(self.run_module(args, task_vars))
                return result
            params = self.validate(args)
            self.warnings = []
            result.update(self.on_controller(params, args, task_vars))
            if self.warnings:
                result.setdefault("warnings", []).extend(self.warnings)
        except TaskFailed as exc:
            result.update(exc.result)
        except AttuneError as exc:
            result.update(error_result(exc, changed=False))
        return result

    def warn(self, message):
        self.warnings.append(message)

    def check_option_names(self, args):
        """Fail on an option the module does not know, naming the closest known ones (issue 18 item 4).

        ansible-core reports unsupported parameters after the other validation errors, so ``nmae: slack`` shows only
        "missing required arguments: name".  Run here, before the module (or the controller-side work), a misspelt
        option is named first, with the options it is close to.  Only the names are compared; values are never shown.
        """
        spec = self.argument_spec()
        known = {}
        for name, option in spec.items():
            known[name] = name
            for alias in option.get("aliases") or ():
                known[alias] = name
        unknown = sorted(str(key) for key in args if key not in known)
        if not unknown:
            return
        public = sorted(name for name in known if not name.startswith("_"))
        parts = []
        for key in unknown:
            close = suggestion(key, public)
            parts.append(key + (" (%s)" % close[2:] if close else ""))
        supported = ", ".join("%s (%s)" % (name, known[name]) if known[name] != name else name for name in public)
        raise TaskFailed("Unsupported parameters for (%s) module: %s. Supported parameters include: %s."
                         % (self.MODULE, ", ".join(parts), supported), changed=False)

    def required_libraries(self, params):
        """Names of the libraries the controller-side work needs (None: all of them)."""
        return None

    def validate(self, args):
        names = self.required_libraries(args)
        missing = missing_libraries(names)
        if missing:
            raise TaskFailed("%s needs these Python libraries on the controller: %s"
                             % ("api_url" if args.get("api_url") and names else "resolve_on=controller",
                                ", ".join("%s>=%s" % (name, minimum) for name, minimum, _tb in missing)))
        validated = ArgumentSpecValidator(self.argument_spec(), **self.validator_kwargs()).validate(args)
        if validated.error_messages:
            raise TaskFailed("; ".join(validated.error_messages), changed=False)
        return validated.validated_parameters

    def client(self, params):
        from ansible_collections.attune.packs.plugins.module_utils._base._common import settings_from_params
        from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient

        return RegistryClient(settings_from_params(params))

    def on_controller(self, params, args, task_vars):
        raise NotImplementedError


class QueryAction(RegistryActionBase):
    """attune_pack_registries / search / info: the whole answer comes from the controller."""

    # from module_utils._queries: the module's argument spec builder and the operation, (client, params, warn) -> result
    SPEC = None
    OPERATION = None

    def argument_spec(self):
        from ansible_collections.attune.packs.plugins.module_utils._base._common import controller_argument_spec

        spec = self.SPEC()
        spec.update(controller_argument_spec())
        return spec

    def wants_controller(self, args):
        # api_url: Attune's registries are always asked from the controller, so that the module's payload never
        # carries the API client (module_utils._attune; issue 17); the module refuses api_url
        return bool(args.get("api_url")) or super(QueryAction, self).wants_controller(args)

    def required_libraries(self, params):
        return ["requests"] if params.get("api_url") else None

    def on_controller(self, params, args, task_vars):
        if params.get("api_url"):  # answer from the registries of a running Attune
            from ansible_collections.attune.packs.plugins.module_utils._attune import _attune_registries

            try:
                return _attune_registries.answer(self.OPERATION.__name__, params, self.warn)
            except AttuneError as exc:
                raise TaskFailed.from_error(exc, changed=False, api_url=params.get("api_url"))
        return self.OPERATION(self.client(params), params, self.warn)
