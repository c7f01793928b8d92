"""The promotion and mirror graph a repository (or a namespace) belongs to, for the pipeline view.

`pipeline_graph(user, start=[...])` follows promotion edges both ways from the start repositories,
through every policy that applies (repository, namespace and global scope, `policies.scopes`),
resolving target templates (``qa/{name}``) per source repository, and adds push-mirror edges to
remote registries as terminal nodes. Each edge carries its rules in words and its last outcome
(the latest `Promotion` for that policy and source repository, the latest `MirrorRun` of a push
mirror): ``succeeded``, ``failed``, ``pending``, ``skipped`` or ``none``.

Visibility: a repository the viewer cannot read is not part of the graph at all (no node, no edge,
not followed), so no private name leaks. The walk is bounded by `MAX_NODES`; `truncated` says
when it stopped early. Queries are batched per breadth-first layer (no query per node or edge).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Max, Q

from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.policies import criteria, scopes, target_templates
from registry_policies.policies.models import Promotion, PromotionPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.repositories.models import Repository
from registry_policies.tenancy.access import repositories_visible_to

MAX_NODES = 50
OUTCOMES = ("succeeded", "failed", "pending", "skipped", "none")
MIRROR_OUTCOMES = {"succeeded": "succeeded", "failed": "failed", "queued": "pending", "running": "pending"}


@dataclass(frozen=True)
class Node:
    key: str  # "repo:<id>" or "remote:<host/path>"
    label: str  # namespace/name, or host/path of the remote
    repository_id: int | None = None
    namespace: str = ""
    name: str = ""

    @property
    def is_remote(self) -> bool:
        return self.repository_id is None


@dataclass(frozen=True)
class Edge:
    source: str  # node keys
    target: str
    kind: str  # "promotion" or "mirror"
    policy_id: int
    scope: str
    rules: tuple[str, ...]
    outcome: str


@dataclass
class Graph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    truncated: bool = False

    def sorted_nodes(self) -> list[Node]:
        return sorted(self.nodes.values(), key=lambda node: (node.is_remote, node.label))


def _key(repository_id: int) -> str:
    return f"repo:{repository_id}"


def rules_in_words(rules: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """Each rule as `criteria.describe` puts it; a stored rule the engine refuses shows raw."""
    words = []
    for rule in rules:
        try:
            words.append(criteria.describe(criteria.parse_rule(rule)))
        except ValidationError:
            words.append(" ".join(str(part) for part in rule.values()))
    return tuple(words) or ("every tag",)


def _promotion_rules(policy: PromotionPolicy) -> tuple[str, ...]:
    from registry_policies.policies.services import rule_as_dict

    return rules_in_words(rule_as_dict(rule) for rule in policy.rules.all())


class _Walk:
    """One breadth-first walk; see `pipeline_graph`."""

    def __init__(self, user: Any) -> None:
        self.visible = repositories_visible_to(user)
        self.graph = Graph()
        self.repositories: dict[int, Repository] = {}
        self.promotion_edges: set[tuple[int, int, int]] = set()  # (policy, source, target)
        self.mirror_policies: dict[int, PushMirrorPolicy] = {}
        # Namespace and global policies with a template: the only ones that reach into other
        # namespaces by name; loaded once, with the first layer's candidates.
        self.template_policies: list[PromotionPolicy] | None = None
        self.policies: dict[int, PromotionPolicy] = {}

    def add(self, repository: Repository) -> bool:
        """Add a visible repository as a node; False when the bound is reached."""
        if repository.pk in self.repositories:
            return True
        if len(self.graph.nodes) >= MAX_NODES:
            self.graph.truncated = True
            return False
        self.repositories[repository.pk] = repository
        self.graph.nodes[_key(repository.pk)] = Node(
            key=_key(repository.pk), label=repository.full_name, repository_id=repository.pk,
            namespace=repository.namespace.name, name=repository.name)
        return True

    def _visible_repositories(self, q: Q) -> list[Repository]:
        return list(self.visible.filter(q).select_related("namespace").order_by("namespace__name", "name"))

    def _candidate_policies(self, frontier: list[Repository]) -> list[PromotionPolicy]:
        """Promotion policies that may apply to any of `frontier` (as source) or name one of them as
        a fixed target (one query)."""
        ids = [r.pk for r in frontier]
        namespaces = {r.namespace_id for r in frontier}
        first = (Q(target_template__gt="") & ~Q(scope=Scope.REPOSITORY)) if self.template_policies is None \
            else Q(pk__in=[])
        found = list(PromotionPolicy.objects.filter(
            Q(scope=Scope.REPOSITORY, source_id__in=ids) | Q(scope=Scope.NAMESPACE, namespace_id__in=namespaces)
            | Q(scope=Scope.GLOBAL) | Q(target_id__in=ids) | first)
            .select_related("namespace", "source__namespace", "target__namespace").prefetch_related("rules"))
        for policy in found:
            self.policies.setdefault(policy.pk, policy)
        if self.template_policies is None:
            self.template_policies = [p for p in found if p.scope != Scope.REPOSITORY and p.target_template]
        return found

    def step(self, frontier: list[Repository]) -> list[Repository]:
        """Edges touching `frontier`; returns the newly reached repositories."""
        policies = self._candidate_policies(frontier)
        pairs: list[tuple[PromotionPolicy, Repository, str]] = []  # (policy, source, target full name)
        # Outgoing: every policy applying to a frontier repository.
        for repository in frontier:
            for policy in scopes.applying([p for p in policies if _candidate(p, repository)
                                           and (p.target_id is not None or p.target_template)], repository):
                name = policy.target.full_name if policy.target is not None else target_templates.render(
                    policy.target_template, source=repository)
                pairs.append((policy, repository, name))
        # Incoming, fixed target: repository policies name their source; namespace and global ones
        # apply to every repository in scope.
        wanted_sources: Q = Q(pk__in=[])
        frontier_ids = {r.pk for r in frontier}
        fixed_in = [p for p in policies if p.target_id in frontier_ids]
        for policy in fixed_in:
            if policy.scope == Scope.REPOSITORY:
                wanted_sources |= Q(pk=policy.source_id)
            elif policy.scope == Scope.NAMESPACE:
                wanted_sources |= Q(namespace_id=policy.namespace_id)
            else:
                wanted_sources |= Q(pk__isnull=False)
        # Incoming, template: qa/{name} reaches qa/website from any website in scope.
        template_in: list[tuple[PromotionPolicy, str]] = []
        for repository in frontier:
            for policy in self.template_policies or []:
                source_name = _template_source_name(policy.target_template, repository)
                if source_name is None:
                    continue
                template_in.append((policy, repository.full_name))
                if policy.scope == Scope.NAMESPACE:
                    wanted_sources |= Q(namespace_id=policy.namespace_id, name=source_name)
                else:
                    wanted_sources |= Q(name=source_name)
        sources = self._visible_repositories(wanted_sources) if (fixed_in or template_in) else []
        for source in sources:
            for policy in fixed_in:
                if policy.target is not None and _candidate(policy, source) and scopes.applies_to(policy, source):
                    pairs.append((policy, source, policy.target.full_name))
            for policy, target_name in template_in:
                if (_candidate(policy, source) and scopes.applies_to(policy, source)
                        and target_templates.render(policy.target_template, source=source) == target_name):
                    pairs.append((policy, source, target_name))
        return self._connect(pairs, sources)

    def _connect(self, pairs: list[tuple[PromotionPolicy, Repository, str]],
                 sources: list[Repository]) -> list[Repository]:
        """Resolve target names to visible repositories (one query) and record the edges."""
        names = {name for _, _, name in pairs}
        q = Q(pk__in=[])
        for name in names:
            namespace, _, repo_name = name.partition("/")
            q |= Q(namespace__name=namespace, name=repo_name)
        by_name = {r.full_name: r for r in self._visible_repositories(q)} if names else {}
        for source in sources:
            by_name.setdefault(source.full_name, source)
        reached: list[Repository] = []
        for policy, source, name in sorted(pairs, key=lambda p: (p[0].pk, p[1].full_name, p[2])):
            target = by_name.get(name)
            if target is None or target.pk == source.pk:
                continue
            for repository in (source, target):
                if repository.pk not in self.repositories:
                    if not self.add(repository):
                        break
                    reached.append(repository)
            if source.pk in self.repositories and target.pk in self.repositories:
                self.promotion_edges.add((policy.pk, source.pk, target.pk))
        return reached

    def mirrors(self) -> None:
        """Push-mirror edges from every node to its remotes (one query)."""
        for policy in (PushMirrorPolicy.objects.filter(source_id__in=list(self.repositories))
                       .select_related("integration").order_by("id")):
            self.mirror_policies[policy.pk] = policy

    def finish(self) -> Graph:
        latest_promotions = _latest_statuses(
            Promotion.objects.filter(policy_id__in={p for p, _, _ in self.promotion_edges},
                                     source_repository_id__in={s for _, s, _ in self.promotion_edges}),
            ("policy_id", "source_repository_id")) if self.promotion_edges else {}
        for policy_id, source_id, target_id in sorted(self.promotion_edges):
            policy = self.policies[policy_id]
            outcome = latest_promotions.get((policy_id, source_id), "none")
            self.graph.edges.append(Edge(_key(source_id), _key(target_id), "promotion", policy_id,
                                         str(policy.scope), _promotion_rules(policy), outcome))
        latest_runs = _latest_statuses(MirrorRun.objects.filter(push_policy_id__in=list(self.mirror_policies)),
                                       ("push_policy_id",)) if self.mirror_policies else {}
        for mirror in self.mirror_policies.values():
            if mirror.source_id is None:  # namespace and global push mirrors are not drawn yet
                continue
            remote = mirror.remote
            key = f"remote:{remote}"
            if key not in self.graph.nodes:
                if len(self.graph.nodes) >= MAX_NODES:
                    self.graph.truncated = True
                    continue
                self.graph.nodes[key] = Node(key=key, label=remote)
            status = latest_runs.get((mirror.pk,), "none")
            self.graph.edges.append(Edge(_key(mirror.source_id), key, "mirror", mirror.pk, Scope.REPOSITORY,
                                         rules_in_words(mirror.rules or []), MIRROR_OUTCOMES.get(status, "none")))
        return self.graph


def _candidate(policy: PromotionPolicy, repository: Repository) -> bool:
    """`scopes.candidates_q` in Python."""
    if policy.scope == Scope.REPOSITORY:
        return policy.source_id == repository.pk
    if policy.scope == Scope.NAMESPACE:
        return policy.namespace_id == repository.namespace_id
    return True


def _template_source_name(template: str, target: Repository) -> str | None:
    """The source repository name that `template` renders as `target`, or None."""
    namespace, _, repository_part = template.partition("/")
    if namespace != target.namespace.name or target_templates.TOKEN not in repository_part:
        return None
    prefix, _, suffix = repository_part.partition(target_templates.TOKEN)
    name = target.name
    if not name.startswith(prefix) or not name.endswith(suffix) or len(name) <= len(prefix) + len(suffix):
        return None
    return name[len(prefix):len(name) - len(suffix)]


def _latest_statuses(queryset: Any, group: tuple[str, ...]) -> dict[tuple[Any, ...], str]:
    """{group values: status of the newest row of the group} in two queries (none for no rows)."""
    last_ids = [row["last"] for row in queryset.values(*group).annotate(last=Max("id")).order_by()]
    if not last_ids:
        return {}
    return {tuple(row[g] for g in group): row["status"]
            for row in queryset.model.objects.filter(pk__in=last_ids).values(*group, "status")}


def pipeline_graph(user: Any, *, start: list[Repository]) -> Graph:
    """The graph the `start` repositories belong to, as `user` may see it (see module doc)."""
    walk = _Walk(user)
    visible_ids = set(walk.visible.filter(pk__in=[r.pk for r in start]).values_list("pk", flat=True))
    frontier = [r for r in sorted(start, key=lambda r: r.full_name) if r.pk in visible_ids]
    frontier = [r for r in frontier if walk.add(r)]
    while frontier:
        frontier = walk.step(frontier)
    walk.mirrors()
    return walk.finish()
