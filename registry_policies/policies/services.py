"""Promotion policies: saving them, evaluating tags against them, promoting without copying bytes.

A promotion points a tag of the target repository at the manifest of the
source tag (`repositories.content.set_tag`): blobs and manifests are linked,
never copied. The resulting tag push fires the target's own policies in turn
(pipelines dev → qa → prod); the `chain` of repositories an image went
through stops cycles.
"""
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from registry_policies.audit import services as audit
from registry_policies.core import events, metrics
from registry_policies.policies import criteria, scopes, selectors, tag_templates, target_templates
from registry_policies.policies.evaluation import evaluate, tag_name_rejects
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy
from registry_policies.policies.scopes import Scope
from registry_policies.repositories import content
from registry_policies.repositories.errors import TagImmutable
from registry_policies.repositories.models import Repository, Tag
from registry_policies.scanning.facts import image_facts_for
from registry_policies.tenancy import ownership
from registry_policies.tenancy.models import Namespace

MAX_CHAIN_LENGTH = 10


def rules_of(policy: PromotionPolicy) -> list[criteria.Rule]:
    """The policy's rules as criteria, in order (uses the prefetched `rules` when present)."""
    return [criteria.parse_rule(rule_as_dict(rule)) for rule in policy.rules.all()]


def rule_as_dict(rule: PolicyRule) -> dict[str, Any]:
    data: dict[str, Any] = {"field": rule.field, "operator": rule.operator, "values": list(rule.values)}
    if rule.severity:
        data["severity"] = rule.severity
    return data


def check_may_manage(*, user: User, source: Repository) -> None:
    """Administrators anywhere; users in their own namespace or where `manage_policies` was delegated."""
    scopes.check_may_edit(user, scope=Scope.REPOSITORY, repository=source)


def check_may_edit_policy(*, user: User, policy: PromotionPolicy) -> None:
    """PermissionDenied unless `user` may change, run or delete `policy` (by its scope)."""
    scopes.check_may_edit(user, scope=policy.scope, repository=policy.source, namespace=policy.namespace)


def author_block_reason(author: User | None, target: Repository) -> str:
    """Why `author` may not (any more) write to `target`, or "" — promotion policies' use of the
    shared owner rule (`tenancy.ownership`); saving checks the same thing."""
    return ownership.lost_rights_reason(author, label="The policy's author",
                                        needs=[ownership.Needs(repository=target, action="push")])


def resolve_target(policy: PromotionPolicy, source: Repository) -> tuple[Repository | None, str]:
    """The target repository for a tag of `source` and its name; the repository is None when a
    template renders the name of a repository that does not exist."""
    if policy.target_id:
        return policy.target, policy.target.full_name  # type: ignore[union-attr]
    name = target_templates.render(policy.target_template, source=source)
    namespace, _slash, repository_name = name.partition("/")
    found = Repository.objects.select_related("namespace").filter(
        namespace__name=namespace, name=repository_name).first()
    return found, name


@transaction.atomic
def save_policy(*, author: User, source: Repository | None = None, target: Repository | None,
                rules: list[dict[str, Any]], tag_template: str = "", enabled: bool = True,
                policy: PromotionPolicy | None = None, request: HttpRequest | None = None,
                target_name: str = "", scope: str = Scope.REPOSITORY, namespace: Namespace | None = None,
                repository_filter: str = "", target_template: str = "") -> PromotionPolicy:
    """Create (or update `policy`) after validating everything; raises ValidationError naming the field.

    Saving re-checks that the author may push to the target and un-pauses the policy. `target` is
    None when the caller named a repository that does not exist for them (`target_name`, quoted
    in the error). Namespace and global policies may instead give `target_template` (``qa/{name}``,
    see `target_templates`): it must render valid names, its namespace must exist and the author
    must hold write on that whole namespace.
    """
    if policy is not None:
        scope, source, namespace = policy.scope, policy.source, policy.namespace
    scopes.check_may_edit(author, scope=scope, repository=source, namespace=namespace)
    errors: dict[str, Any] = {}
    parsed: list[criteria.Rule] = []
    try:
        parsed = criteria.parse_rules(rules)
    except ValidationError as error:
        errors.update(error.message_dict if hasattr(error, "error_dict") else {"rules": error.messages})
    tag_template = (tag_template or "").strip()
    try:
        tag_templates.validate_template(tag_template)
    except ValidationError as error:
        errors["tag_template"] = error.messages
    try:
        repository_filter = scopes.validate_repository_filter(repository_filter, scope=scope)
    except ValidationError as error:
        errors.update(error.message_dict)
    target_template = (target_template or "").strip()
    if target_template:
        target = None
        if scope == Scope.REPOSITORY:
            errors["target_repository"] = ["A target template needs a namespace or global policy."]
        else:
            try:
                target_templates.validate(target_template, author=author)
            except ValidationError as error:
                errors["target_repository"] = error.messages
    elif target is None:
        errors["target_repository"] = [f"There is no repository {target_name!r}." if target_name
                                       else "Choose an existing target repository."]
    elif source is not None and target.pk == source.pk:
        errors["target_repository"] = ["The target must be another repository."]
    elif author_block_reason(author, target):
        errors["target_repository"] = [f"You may not push to {target.full_name}; the policy's author must."]
    if errors:
        raise ValidationError(errors)
    creating = policy is None
    policy = policy or PromotionPolicy(scope=scope, source=source, namespace=namespace)
    policy.target = target
    policy.target_template = target_template
    policy.repository_filter = repository_filter
    policy.tag_template = tag_template
    policy.enabled = enabled
    policy.author = author
    policy.paused_reason = ""
    policy.save()
    policy.rules.all().delete()
    PolicyRule.objects.bulk_create([
        PolicyRule(policy=policy, position=index, field=rule.field, operator=rule.operator,
                   values=list(rule.values), severity=rule.severity or "")
        for index, rule in enumerate(parsed)
    ])
    audit.record("policy.created" if creating else "policy.updated", actor=author, request=request, target=policy,
                 details={"scope": scope, "target": policy.target_name, "repository_filter": repository_filter,
                          "rules": [rule_as_dict(r) for r in policy.rules.all()],
                          "tag_template": tag_template, "enabled": enabled})
    return policy


@transaction.atomic
def delete_policy(*, policy: PromotionPolicy, actor: User, request: HttpRequest | None = None) -> None:
    check_may_edit_policy(user=actor, policy=policy)
    audit.record("policy.deleted", actor=actor, request=request, target=policy)
    policy.delete()


@dataclass(frozen=True)
class DryRun:
    tag: str
    digest: str
    outcome: str  # match, no_match, pending, or error
    rule_results: list[dict[str, str]]
    target_repository: str
    target_tag: str
    detail: str


def dry_run(*, policy: PromotionPolicy, tag_name: str, repository: Repository | None = None) -> DryRun:
    """What would happen to `tag_name` of `repository` (default: the policy's source) now, changing
    nothing. Raises Tag.DoesNotExist (also for a repository the policy does not apply to)."""
    source = repository or policy.source
    if source is None or not scopes.applies_to(policy, source) or (
            policy.scope == Scope.NAMESPACE and source.namespace_id != policy.namespace_id) or (
            policy.scope == Scope.REPOSITORY and source.pk != policy.source_id):
        raise Tag.DoesNotExist()
    tag = Tag.objects.select_related("manifest").get(repository=source, name=tag_name)
    evaluation = evaluate(rules_of(policy), tag_name=tag.name, facts=image_facts_for(tag.manifest))
    results = [{"rule": str(result.rule), "outcome": result.outcome, "explanation": result.explanation}
               for result in evaluation.results]
    target_tag, detail = "", ""
    outcome = str(evaluation.outcome)
    target, target_name = resolve_target(policy, source)
    try:
        target_tag = tag_templates.render_tag(policy.tag_template, source_tag=tag.name, now=timezone.now())
    except tag_templates.InvalidRenderedTag as error:
        outcome, detail = "error", str(error)
    if outcome == "match":
        blocked = _blocked_reason(policy, source=source, target=target, target_name=target_name, chain=[])
        if blocked:
            outcome, detail = "error", blocked
        else:
            detail = f"Would point {target_name}:{target_tag} at {tag.manifest.digest}."
    elif outcome == "pending":
        detail = "Waits until every image of the tag has a finished scan."
    elif outcome == "no_match":
        detail = "Not every rule matches; nothing would happen."
    return DryRun(tag=tag.name, digest=tag.manifest.digest, outcome=outcome, rule_results=results,
                  target_repository=target_name, target_tag=target_tag, detail=detail)


def _blocked_reason(policy: PromotionPolicy, *, source: Repository, target: Repository | None, target_name: str,
                    chain: list[int]) -> str:
    if target is None:
        return f"The target repository {target_name} does not exist."
    author_reason = author_block_reason(policy.author, target)
    if author_reason:
        return author_reason
    if target.pk in chain or target.pk == source.pk:
        return f"Promotion cycle stopped: {target.full_name} is already in this image's promotion chain."
    if len(chain) >= MAX_CHAIN_LENGTH:
        return f"Promotion chain longer than {MAX_CHAIN_LENGTH} repositories stopped."
    return ""


DONE = (Promotion.Status.SUCCEEDED, Promotion.Status.SKIPPED)


def evaluate_tag(*, policy: PromotionPolicy, tag: Tag, trigger: str, chain: list[int]) -> Promotion | None:
    """Evaluate one policy on one tag and act on it. Returns the recorded promotion, or None when
    the tag does not match (nothing is recorded then). Idempotent per (policy, repository, tag, digest)."""
    digest = tag.manifest.digest
    source = tag.repository
    same = Promotion.objects.filter(policy=policy, source_repository=source, source_tag=tag.name, digest=digest)
    done = same.filter(status__in=DONE).first()
    if done is not None:
        return done
    evaluation = evaluate(rules_of(policy), tag_name=tag.name, facts=image_facts_for(tag.manifest))
    if evaluation.outcome == "no_match":
        if same.filter(status=Promotion.Status.PENDING).update(
                status=Promotion.Status.FAILED, reason="No longer matches once scanned.", finished_at=timezone.now()):
            metrics.record_outcome(kind="promotion", outcome=Promotion.Status.FAILED)
        return None
    pending = same.filter(status=Promotion.Status.PENDING).first()
    if evaluation.outcome == "pending":
        if pending is None:
            target, target_name = resolve_target(policy, source)
            pending = Promotion.objects.create(
                policy=policy, source_repository=source, source_tag=tag.name, digest=digest,
                target_repository=target, target_repository_name=target_name,
                status=Promotion.Status.PENDING, reason="Waiting for scan results of every image of the tag.",
                trigger=trigger, chain=chain)
        return pending
    return _promote(policy=policy, tag=tag, trigger=trigger, chain=chain, pending=pending)


def _promote(*, policy: PromotionPolicy, tag: Tag, trigger: str, chain: list[int],
             pending: Promotion | None) -> Promotion:
    now = timezone.now()
    source = tag.repository
    target, target_name = resolve_target(policy, source)
    promotion = pending or Promotion(
        policy=policy, source_repository=source, source_tag=tag.name, digest=tag.manifest.digest,
        trigger=trigger, chain=chain)
    promotion.target_repository, promotion.target_repository_name = target, target_name
    blocked = _blocked_reason(policy, source=source, target=target, target_name=target_name, chain=chain)
    if blocked:
        if target is not None and author_block_reason(policy.author, target):
            ownership.pause(policy, blocked)
        return _finish(promotion, status=Promotion.Status.FAILED, reason=blocked)
    assert target is not None
    try:
        target_tag = tag_templates.render_tag(policy.tag_template, source_tag=tag.name, now=now)
    except tag_templates.InvalidRenderedTag as error:
        return _finish(promotion, status=Promotion.Status.FAILED, reason=str(error))
    promotion.target_tag = target_tag
    try:
        with transaction.atomic():
            target = Repository.objects.select_for_update().get(pk=target.pk)
            earlier = Promotion.objects.filter(
                source_repository=source, source_tag=tag.name, digest=tag.manifest.digest,
                target_repository=target, target_tag=target_tag, status=Promotion.Status.SUCCEEDED,
            ).exclude(pk=promotion.pk).first()
            if earlier is not None:
                return _finish(promotion, status=Promotion.Status.SKIPPED,
                               reason=f"Already promoted to {target.full_name}:{target_tag} by policy "
                                      f"#{earlier.policy_id}.")
            promotion.save()
            content.set_tag(
                repository=target, name=target_tag, manifest=tag.manifest, actor=policy.author,
                cause="promotion",
                origin_detail={"source_repository": source.full_name, "source_tag": tag.name,
                               "policy_id": policy.pk, "promotion_id": promotion.pk,
                               "chain": [*chain, source.pk]},
                referrers_from=source,
            )
            _finish(promotion, status=Promotion.Status.SUCCEEDED, reason="")
            audit.record("promotion.succeeded", actor=policy.author, target=promotion,
                         repository=source.full_name,
                         details={"target": f"{target.full_name}:{target_tag}", "digest": tag.manifest.digest})
            events.emit("PROMOTION", contents=promotion_event_contents(promotion), actor=None)
    except Repository.DoesNotExist:
        return _finish(promotion, status=Promotion.Status.FAILED, reason="The target repository was deleted.")
    except TagImmutable as error:
        return _finish(promotion, status=Promotion.Status.FAILED, reason=str(error))
    return promotion


def _finish(promotion: Promotion, *, status: str, reason: str) -> Promotion:
    promotion.status = status
    promotion.reason = reason[:1000]
    promotion.finished_at = timezone.now()
    promotion.save()
    metrics.record_outcome(kind="promotion", outcome=status)
    if status == Promotion.Status.FAILED:
        events.emit("PROMOTION_FAILED", contents=promotion_event_contents(promotion), actor=None)
    return promotion


def promotion_event_contents(promotion: Promotion) -> dict[str, Any]:
    return {
        "policy_id": promotion.policy_id,
        "source_repository": promotion.source_repository.full_name,
        "source_tag": promotion.source_tag,
        "digest": promotion.digest,
        "target_repository": promotion.target_repository_name,
        "target_tag": promotion.target_tag,
        "status": promotion.status,
        "reason": promotion.reason,
    }


def run_policies_for_tag(*, repository_id: int, tag_name: str, digest: str, chain: list[int],
                         trigger: str = Promotion.Trigger.PUSH) -> list[Promotion]:
    """Evaluate every active policy applying to the repository (repository, then namespace, then
    global policies, each by id) on the tag, if it still points at `digest`. A later policy whose
    target tag an earlier one already promoted this digest to is recorded as skipped.

    Fast path: a policy with no record for this tag and digest whose tag-name rules reject the tag
    costs no query; any other is re-read from the database before it acts."""
    tag = (Tag.objects.select_related("manifest", "repository__namespace")
           .filter(repository_id=repository_id, name=tag_name, manifest__digest=digest).first())
    if tag is None:
        return []  # moved or deleted since: the newer push has its own evaluation
    recorded = set(Promotion.objects.filter(source_repository=tag.repository, source_tag=tag.name, digest=digest)
                   .values_list("policy_id", flat=True))
    results = []
    for policy, rules in compiled_policies_for(tag.repository):
        if policy.pk not in recorded and tag_name_rejects(rules, tag.name):
            continue
        fresh = selectors.active_policy(policy.pk)
        if fresh is None:
            continue
        promotion = evaluate_tag(policy=fresh, tag=tag, trigger=trigger, chain=chain)
        if promotion is not None:
            results.append(promotion)
    return results


_COMPILED: OrderedDict[tuple[Any, ...], list[tuple[PromotionPolicy, list[criteria.Rule]]]] = OrderedDict()
_COMPILED_SIZE = 64


def compiled_policies_for(repository: Repository) -> list[tuple[PromotionPolicy, list[criteria.Rule]]]:
    """The active policies applying to `repository` with their parsed rules, in evaluation order.

    Cached per process and repository, keyed by a version of the candidate policies read from the
    database on every call (count, newest `updated_at`, highest id: saving, pausing, adding or
    deleting a policy changes it), so every node sees changes at once; only the parsing and
    filtering is saved. Whatever acts on a policy re-reads it (`selectors.active_policy`)."""
    candidates = PromotionPolicy.objects.filter(scopes.candidates_q(repository), enabled=True, paused_reason="")
    version = candidates.aggregate(count=Count("id"), latest=Max("updated_at"), top=Max("id"))
    key = (repository.pk, repository.namespace_id, repository.name, version["count"], version["latest"],
           version["top"])
    found = _COMPILED.get(key)
    if found is None:
        found = [(policy, rules_of(policy)) for policy in selectors.policies_applying_to(repository,
                                                                                          active_only=True)]
        _COMPILED[key] = found
        while len(_COMPILED) > _COMPILED_SIZE:
            try:
                _COMPILED.popitem(last=False)
            except KeyError:  # another thread emptied it meanwhile
                break
    else:
        with suppress(KeyError):  # evicted by another thread meanwhile: harmless
            _COMPILED.move_to_end(key)
    return found


def run_policy_on_existing_tags(*, policy: PromotionPolicy, actor: User) -> list[Promotion]:
    """Evaluate `policy` on every current tag of every repository it applies to ("run now")."""
    check_may_edit_policy(user=actor, policy=policy)
    if not policy.enabled:
        raise ValidationError({"enabled": "The policy is disabled; enable it first."})
    policy = PromotionPolicy.objects.select_related("source__namespace", "target__namespace", "namespace",
                                                    "author").prefetch_related("rules").get(pk=policy.pk)
    results = []
    for repository in scopes.repositories_in_scope(policy):
        for tag in Tag.objects.filter(repository=repository).select_related("manifest").order_by("name"):
            tag.repository = repository
            promotion = evaluate_tag(policy=policy, tag=tag, trigger=Promotion.Trigger.MANUAL, chain=[])
            if promotion is not None:
                results.append(promotion)
    return results


def _pending_for_digest(digest: str) -> QuerySet[Promotion]:
    """Pending promotions of `digest`, or of an index one of whose images is `digest`."""
    indexes = Tag.objects.filter(manifest__children__digest=digest).values("manifest__digest")
    return (Promotion.objects.filter(status=Promotion.Status.PENDING)
            .filter(Q(digest=digest) | Q(digest__in=indexes)).select_related("policy"))


def resume_pending_for_digest(*, digest: str) -> list[Promotion]:
    """A scan finished: re-evaluate pending promotions of tags pointing at `digest` (or an index of it).
    Idempotent: evaluations already decided are not pending any more."""
    results = []
    for promotion in _pending_for_digest(digest):
        if promotion.policy is None or not promotion.policy.is_active:
            continue
        tag = Tag.objects.select_related("manifest", "repository__namespace").filter(
            repository_id=promotion.source_repository_id, name=promotion.source_tag,
            manifest__digest=promotion.digest).first()
        if tag is None:
            _finish(promotion, status=Promotion.Status.FAILED, reason="The tag moved before its scan finished.")
            continue
        result = evaluate_tag(policy=promotion.policy, tag=tag, trigger=Promotion.Trigger.SCAN,
                              chain=list(promotion.chain))
        if result is not None:
            results.append(result)
    return results


def fail_pending_for_digest(*, digest: str, reason: str) -> int:
    """A scan failed: the promotions waiting for it cannot be decided; fail them with the reason."""
    failed = 0
    for promotion in _pending_for_digest(digest):
        _finish(promotion, status=Promotion.Status.FAILED, reason=f"The scan failed: {reason or 'no reason given'}")
        failed += 1
    return failed
