"""Import a namespace's policies from YAML (the shape of `policy_yaml`), all or nothing.

The file describes the namespace's full policy set of the exported kinds, as far as the importer
can see it: an item equal to an existing one leaves it untouched (same id, author and history);
an item with the natural key of an existing one (`policy_yaml.NATURAL_KEYS`) updates it; other
items are created; existing policies absent from the file are deleted. Every change goes through
the same services as the API (validation, permissions, audit), in one transaction: when anything
fails, nothing changes, and every error is reported with its line and field, e.g.
``line 12: promotion_policies[1].rules[0].operator: Unknown operator 'foo'.``

Who may import: admins of the namespace and holders of `manage_policies` (`scopes.may_edit` for
the namespace scope); mirrors additionally need admin on their repository, as in the API. A new
push mirror needs a successful Connect to its remote (as when created in the API); a new pull
mirror is created without a secret (secrets are never exported), an existing one keeps its own.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest

from registry_policies.integrations.models import Integration
from registry_policies.integrations.selectors import integrations_usable_by
from registry_policies.mirroring import services as mirroring
from registry_policies.policies import criteria, pruning, scopes, selectors, services
from registry_policies.policies.policy_yaml import FIELDS, KINDS, SCOPES, VERSION, existing, item_dict, natural_key
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import repositories_visible_to
from registry_policies.tenancy.models import Namespace

Path = tuple[str | int, ...]
RULE_MESSAGE = re.compile(r"^rules\[(\d+)\](?:\.(\w+))?: (.*)$", re.S)


class ImportFailed(Exception):
    """The file was refused; `errors` are "line N: path: message" sentences, in file order."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0


@dataclass
class _Errors:
    root: Any
    found: list[tuple[int, str]] = field(default_factory=list)

    def add(self, path: Path, message: str) -> None:
        self.found.append((_line(self.root, path), f"{_dotted(path)}: {message}" if path else message))

    def add_validation(self, path: Path, error: ValidationError) -> None:
        if not hasattr(error, "error_dict"):
            for message in error.messages:
                self.add(path, message)
            return
        for key, messages in error.message_dict.items():
            for message in messages:
                matched = RULE_MESSAGE.match(message)
                if key == "rules" and matched:
                    sub: Path = (int(matched.group(1)),) + ((matched.group(2),) if matched.group(2) else ())
                    self.add((*path, "rules", *sub), matched.group(3))
                else:
                    self.add(path if key == NON_FIELD_ERRORS else (*path, key), message)

    def sentences(self) -> list[str]:
        return [f"line {line}: {text}" for line, text in sorted(self.found, key=lambda pair: pair[0])]


def _dotted(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _line(node: Any, path: Path) -> int:
    """The 1-based line of the deepest node of `path` present in the composed document (a key's
    own line for a mapping key)."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            pair = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if pair is None:
                return line
            line, node = pair[0].start_mark.line + 1, pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _parse(text: str) -> tuple[Any, Any]:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(error, "problem", None) or str(error)
        raise ImportFailed([f"line {line}: invalid YAML: {problem}"]) from None


def _type_ok(value: Any, expected: Any) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def _check_shape(data: Any, namespace: Namespace, errors: _Errors) -> dict[str, list[dict[str, Any]]]:
    """Items of every kind with defaults filled in; shape problems go to `errors`."""
    items: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
    if not isinstance(data, dict):
        errors.add((), "The document must be a mapping with version, namespace and the policy lists.")
        return items
    for key in data:
        if key not in ("version", "namespace", *KINDS):
            errors.add((str(key),), "Unknown field.")
    if data.get("version") != VERSION:
        errors.add(("version",), f"Give version: {VERSION}.")
    if data.get("namespace", namespace.name) != namespace.name:
        errors.add(("namespace",), f"This file is for {data.get('namespace')!r}, not {namespace.name!r}.")
    for kind in KINDS:
        listed = data.get(kind) or []
        if not isinstance(listed, list):
            errors.add((kind,), "Give a list.")
            continue
        for index, raw in enumerate(listed):
            path: Path = (kind, index)
            if not isinstance(raw, dict):
                errors.add(path, "Each item is a mapping.")
                continue
            types = {name: expected for name, expected, _ in FIELDS[kind]}
            for key, value in raw.items():
                if key not in types:
                    errors.add((*path, str(key)), "Unknown field.")
                elif not _type_ok(value, types[key]):
                    errors.add((*path, key), f"Expected {_type_name(types[key])}.")
            for name, _, default in FIELDS[kind]:
                if default is None and types[name] is str and name not in raw:
                    errors.add((*path, name), "This field is required.")
            scope = raw.get("scope", Scope.REPOSITORY.value)
            if "scope" in types and scope not in SCOPES:
                errors.add((*path, "scope"), f"One of {', '.join(SCOPES)} (global policies are not per namespace).")
            elif "scope" in types and scope == Scope.REPOSITORY and not raw.get("repository"):
                errors.add((*path, "repository"), "A repository-scope policy names its repository.")
            elif "scope" in types and scope != Scope.REPOSITORY and "repository" in raw:
                errors.add((*path, "repository"), "Only repository-scope policies name a repository.")
            if isinstance(raw.get("rules"), list):
                try:
                    criteria.parse_rules(raw["rules"])
                except ValidationError as error:
                    errors.add_validation(path, error)
            items[kind].append(item_dict(kind, raw))
    return items


def _type_name(expected: Any) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list", type(None): "null"}
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(names[t] for t in types)


@dataclass
class _Context:
    user: Any
    namespace: Namespace
    request: HttpRequest | None
    repositories: dict[str, Repository]
    integrations: dict[str, Integration]


def _integrations(user: Any, namespace: Namespace) -> dict[str, Integration]:
    """Integrations by `namespace/name`: those `user` may use, and those of the namespace's push
    mirrors (so an unchanged mirror is no error; changing one checks the integration again)."""
    found = integrations_usable_by(user) | Integration.objects.filter(
        push_mirror_policies__source__in=repositories_visible_to(user).filter(namespace=namespace))
    return {f"{i.namespace.name}/{i.name}": i for i in found.select_related("namespace").distinct()}


def _resolve(items: dict[str, list[dict[str, Any]]], ctx: _Context, errors: _Errors) -> None:
    for kind in KINDS:
        for index, item in enumerate(items[kind]):
            name = item.get("repository")
            if isinstance(name, str) and name and name not in ctx.repositories:
                errors.add((kind, index, "repository"), f"There is no repository {ctx.namespace.name}/{name}.")
            integration = item.get("integration")
            if kind == "push_mirrors" and isinstance(integration, str) and integration not in ctx.integrations:
                errors.add((kind, index, "integration"),
                           f"There is no integration {item['integration']!r} you may use (give namespace/name).")


def _save_promotion(ctx: _Context, item: dict[str, Any], current: Any) -> None:
    target_name = item["target_repository"] or ""
    template = target_name if "{name}" in target_name else ""
    target = None if template else selectors.visible_repository_named(ctx.user, target_name)
    repository = ctx.repositories.get(item.get("repository") or "")
    services.save_policy(author=ctx.user, source=repository, target=target, target_name=target_name,
                         target_template=template, rules=item["rules"], tag_template=item["tag_template"],
                         enabled=item["enabled"], policy=current, request=ctx.request, scope=item["scope"],
                         namespace=ctx.namespace if item["scope"] == Scope.NAMESPACE else None,
                         repository_filter=item.get("repository_filter", ""))


def _save_pruning(ctx: _Context, item: dict[str, Any], current: Any) -> None:
    pruning.save_policy(author=ctx.user, rules=item["rules"], scope=item["scope"],
                        repository=ctx.repositories.get(item.get("repository") or ""),
                        namespace=ctx.namespace if item["scope"] == Scope.NAMESPACE else None,
                        repository_filter=item.get("repository_filter", ""), keep_latest=item["keep_latest"],
                        older_than_days=item["older_than_days"], not_pulled_days=item["not_pulled_days"],
                        schedule=item["schedule"], enabled=item["enabled"], policy=current, request=ctx.request)


def _save_push(ctx: _Context, item: dict[str, Any], current: Any) -> None:
    fields = {"integration": ctx.integrations[item["integration"]], "remote_repository": item["remote_repository"],
              "rules": item["rules"], "tag_template": item["tag_template"], "enabled": item["enabled"]}
    if current is None:
        mirroring.create_push_policy(actor=ctx.user, source=ctx.repositories[item["repository"]],
                                     request=ctx.request, **fields)
    else:
        mirroring.update_push_policy(actor=ctx.user, policy=current, request=ctx.request, **fields)


def _save_pull(ctx: _Context, item: dict[str, Any], current: Any) -> None:
    mirroring.save_pull_mirror(
        actor=ctx.user, repository=ctx.repositories[item["repository"]], url=item["url"],
        remote_repository=item["remote_repository"], username=item["username"], secret=None,
        ca_certificate=item["ca_certificate"], tag_filter=item["tag_filter"],
        interval_seconds=item["interval_seconds"], enabled=item["enabled"],
        remove_deleted_tags=item["remove_deleted_tags"], request=ctx.request)


SAVERS: dict[str, Callable[[_Context, dict[str, Any], Any], None]] = {
    "promotion_policies": _save_promotion, "pruning_policies": _save_pruning,
    "push_mirrors": _save_push, "pull_mirrors": _save_pull,
}


def _delete(ctx: _Context, kind: str, obj: Any) -> None:
    if kind == "promotion_policies":
        services.delete_policy(policy=obj, actor=ctx.user, request=ctx.request)
    elif kind == "pruning_policies":
        pruning.delete_policy(policy=obj, actor=ctx.user, request=ctx.request)
    elif kind == "push_mirrors":
        mirroring.delete_push_policy(actor=ctx.user, policy=obj, request=ctx.request)
    else:
        mirroring.delete_pull_mirror(actor=ctx.user, mirror=obj, request=ctx.request)


def _plan(kind: str, wanted: list[dict[str, Any]], current: list[tuple[Any, dict[str, Any]]]
          ) -> tuple[list[tuple[int, Any]], list[Any], int]:
    """(index in the file, existing object or None) to save, existing objects to delete, and how
    many items are unchanged."""
    left = list(current)
    pending: list[int] = []
    unchanged = 0
    for index, item in enumerate(wanted):
        same = next((pair for pair in left if pair[1] == item), None)
        if same is not None:
            left.remove(same)
            unchanged += 1
        else:
            pending.append(index)
    saves: list[tuple[int, Any]] = []
    for index in pending:
        match = next((pair for pair in left if natural_key(kind, pair[1]) == natural_key(kind, wanted[index])), None)
        if match is not None:
            left.remove(match)
        saves.append((index, match[0] if match is not None else None))
    return saves, [obj for obj, _ in left], unchanged


def import_namespace(*, user: Any, namespace: Namespace, text: str,
                     request: HttpRequest | None = None) -> ImportResult:
    """Apply the YAML `text` to `namespace` (see module doc). PermissionDenied unless the user may
    edit namespace policies; ImportFailed (nothing changed) listing every problem with its line."""
    scopes.check_may_edit(user, scope=Scope.NAMESPACE, namespace=namespace)
    root, data = _parse(text)
    errors = _Errors(root)
    items = _check_shape(data, namespace, errors)
    ctx = _Context(user=user, namespace=namespace, request=request,
                   repositories={r.name: r for r in repositories_visible_to(user).filter(namespace=namespace)
                                 .select_related("namespace")},
                   integrations=_integrations(user, namespace))
    _resolve(items, ctx, errors)
    if errors.found:
        raise ImportFailed(errors.sentences())
    result = ImportResult()
    with transaction.atomic():
        current = existing(user, namespace)
        plans = {kind: _plan(kind, items[kind], current[kind]) for kind in KINDS}
        for kind in KINDS:
            for obj in plans[kind][1]:
                try:
                    with transaction.atomic():
                        _delete(ctx, kind, obj)
                    result.deleted += 1
                except (ValidationError, PermissionDenied) as error:
                    errors.add((kind,), f"Cannot delete {obj} (absent from the file): {_text(error)}")
        for kind in KINDS:
            saves, _, unchanged = plans[kind]
            result.unchanged += unchanged
            for index, obj in saves:
                path: Path = (kind, index)
                try:
                    with transaction.atomic():
                        SAVERS[kind](ctx, items[kind][index], obj)
                except ValidationError as error:
                    errors.add_validation(path, error)
                except PermissionDenied as error:
                    errors.add((*path, "repository") if "repository" in items[kind][index] else path, _text(error))
                else:
                    if obj is None:
                        result.created += 1
                    else:
                        result.updated += 1
        if errors.found:
            transaction.set_rollback(True)
    if errors.found:
        raise ImportFailed(errors.sentences())
    return result


def _text(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return " ".join(error.messages)
    return str(error) or "Permission denied."
