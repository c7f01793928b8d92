"""All policies of a namespace as YAML: the document's shape, and the export (a selector).

The document (``version: 1``) lists, each sorted by a stable key and each item with its keys in a
fixed order:

- ``promotion_policies``: the namespace-scope promotion policies of the namespace and the
  repository-scope ones of its repositories (``target_repository`` is ``ns/name`` or a template
  such as ``qa/{name}``);
- ``pruning_policies``: the same two scopes of pruning policies;
- ``push_mirrors``: the push-mirror policies of its repositories (``integration`` is named
  ``namespace/name``; its secret stays on the integration);
- ``pull_mirrors``: the pull mirrors of its repositories, **without their secret** (never
  exported; on import an existing mirror keeps its secret and a new one is created without).

Only what the viewer may see is exported: repository items of repositories they can read.
Exporting twice gives the same text, and export → import → export too (`policy_import`).
"""
from __future__ import annotations

import json
from typing import Any

import yaml
from django.db.models import Q

from registry_policies.mirroring.models import PullMirror, PushMirrorPolicy
from registry_policies.policies.models import PromotionPolicy, PruningPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.tenancy.access import repositories_visible_to
from registry_policies.tenancy.models import Namespace

VERSION = 1
KINDS = ("promotion_policies", "pruning_policies", "push_mirrors", "pull_mirrors")
SCOPES = (Scope.NAMESPACE.value, Scope.REPOSITORY.value)

# Every field of an item: (name, type(s), default). `repository` and `repository_filter` depend on
# the scope (`item_dict` keeps only the one that applies).
NULLABLE_INT = (int, type(None))
FIELDS: dict[str, list[tuple[str, Any, Any]]] = {
    "promotion_policies": [
        ("scope", str, Scope.REPOSITORY.value), ("repository", str, ""), ("repository_filter", str, ""),
        ("target_repository", str, None), ("tag_template", str, ""), ("enabled", bool, True), ("rules", list, []),
    ],
    "pruning_policies": [
        ("scope", str, Scope.REPOSITORY.value), ("repository", str, ""), ("repository_filter", str, ""),
        ("rules", list, []), ("keep_latest", NULLABLE_INT, None), ("older_than_days", NULLABLE_INT, None),
        ("not_pulled_days", NULLABLE_INT, None), ("schedule", str, PruningPolicy.Schedule.DAILY.value),
        ("enabled", bool, True),
    ],
    "push_mirrors": [
        ("repository", str, None), ("integration", str, None), ("remote_repository", str, None),
        ("tag_template", str, ""), ("enabled", bool, True), ("rules", list, []),
    ],
    "pull_mirrors": [
        ("repository", str, None), ("url", str, None), ("remote_repository", str, None), ("username", str, ""),
        ("tag_filter", str, ""), ("interval_seconds", int, 3600), ("enabled", bool, True),
        ("remove_deleted_tags", bool, False), ("ca_certificate", str, ""),
    ],
}
# Which existing item an item of the file updates (else it is created).
NATURAL_KEYS = {
    "promotion_policies": ("scope", "repository", "repository_filter", "target_repository"),
    "pruning_policies": ("scope", "repository", "repository_filter"),
    "push_mirrors": ("repository", "integration", "remote_repository"),
    "pull_mirrors": ("repository",),
}


def item_dict(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """The canonical item: every field in `FIELDS` order, defaults filled in, and only the scope's
    owner field (`repository` for repository scope, `repository_filter` for namespace scope)."""
    item: dict[str, Any] = {}
    scoped = kind in ("promotion_policies", "pruning_policies")
    scope = values.get("scope", Scope.REPOSITORY.value)
    for name, _, default in FIELDS[kind]:
        if scoped and name == "repository" and scope != Scope.REPOSITORY:
            continue
        if scoped and name == "repository_filter" and scope == Scope.REPOSITORY:
            continue
        value = values.get(name, default)
        item[name] = [dict(rule) for rule in value] if name == "rules" and isinstance(value, list) else value
    return item


def natural_key(kind: str, item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item.get(name) for name in NATURAL_KEYS[kind])


def sort_key(kind: str, item: dict[str, Any]) -> tuple[str, ...]:
    return (*(str(v) for v in natural_key(kind, item)), json.dumps(item, sort_keys=True))


def _rule(data: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = {"field": data["field"], "operator": data["operator"], "values": list(data["values"])}
    if data.get("severity"):
        rule["severity"] = data["severity"]
    return rule


def promotion_item(policy: PromotionPolicy) -> dict[str, Any]:
    return item_dict("promotion_policies", {
        "scope": policy.scope, "repository": policy.source.name if policy.source is not None else "",
        "repository_filter": policy.repository_filter, "target_repository": policy.target_name,
        "tag_template": policy.tag_template, "enabled": policy.enabled,
        "rules": [_rule({"field": r.field, "operator": r.operator, "values": r.values, "severity": r.severity})
                  for r in policy.rules.all()]})


def pruning_item(policy: PruningPolicy) -> dict[str, Any]:
    return item_dict("pruning_policies", {
        "scope": policy.scope, "repository": policy.repository.name if policy.repository is not None else "",
        "repository_filter": policy.repository_filter, "rules": [_rule(r) for r in policy.rules],
        "keep_latest": policy.keep_latest, "older_than_days": policy.older_than_days,
        "not_pulled_days": policy.not_pulled_days, "schedule": policy.schedule, "enabled": policy.enabled})


def push_item(policy: PushMirrorPolicy) -> dict[str, Any]:
    """A repository-scope push mirror (the only kind a namespace file holds)."""
    assert policy.source is not None
    integration = policy.integration
    return item_dict("push_mirrors", {
        "repository": policy.source.name, "integration": f"{integration.namespace.name}/{integration.name}",
        "remote_repository": policy.remote_repository, "tag_template": policy.tag_template,
        "enabled": policy.enabled, "rules": [_rule(r) for r in policy.rules or []]})


def pull_item(mirror: PullMirror) -> dict[str, Any]:
    return item_dict("pull_mirrors", {
        "repository": mirror.repository.name, "url": mirror.url, "remote_repository": mirror.remote_repository,
        "username": mirror.username, "tag_filter": mirror.tag_filter, "interval_seconds": mirror.interval_seconds,
        "enabled": mirror.enabled, "remove_deleted_tags": mirror.remove_deleted_tags,
        "ca_certificate": mirror.ca_certificate})


def existing(user: Any, namespace: Namespace) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """The namespace's policies of every exported kind that `user` may see, as (object, item)
    pairs sorted by the items' stable key. Five queries (plus the rules' prefetch)."""
    visible = repositories_visible_to(user).filter(namespace=namespace).values("pk")
    namespace_scope = Q(scope=Scope.NAMESPACE, namespace=namespace)
    found: dict[str, list[tuple[Any, dict[str, Any]]]] = {
        "promotion_policies": [
            (p, promotion_item(p)) for p in PromotionPolicy.objects.filter(
                namespace_scope | Q(scope=Scope.REPOSITORY, source__in=visible))
            .select_related("source", "target__namespace").prefetch_related("rules")],
        "pruning_policies": [
            (p, pruning_item(p)) for p in PruningPolicy.objects.filter(
                namespace_scope | Q(scope=Scope.REPOSITORY, repository__in=visible)).select_related("repository")],
        "push_mirrors": [
            (p, push_item(p)) for p in PushMirrorPolicy.objects.filter(scope=Scope.REPOSITORY, source__in=visible)
            .select_related("source", "integration__namespace")],
        "pull_mirrors": [
            (m, pull_item(m)) for m in PullMirror.objects.filter(repository__in=visible).select_related("repository")],
    }
    for kind, pairs in found.items():
        pairs.sort(key=lambda pair, kind=kind: sort_key(kind, pair[1]))  # type: ignore[misc]
    return found


def document(user: Any, namespace: Namespace) -> dict[str, Any]:
    found = existing(user, namespace)
    return {"version": VERSION, "namespace": namespace.name,
            **{kind: [item for _, item in found[kind]] for kind in KINDS}}


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False, width=1000)


def export_namespace(*, user: Any, namespace: Namespace) -> str:
    """The YAML text of every policy of `namespace` that `user` may see (see module doc)."""
    return dump(document(user, namespace))
