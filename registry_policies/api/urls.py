"""The REST API at /api/v1/ (paths are the contract of the product spec, section 8a).

Registry content (tags, tag history, scans), policies, mirrors and webhooks are added under
`repository/` by their own modules: append to `repository_patterns`.
"""
from django.urls import URLPattern, URLResolver, include, path, re_path

from registry_policies.api import schema  # noqa: F401  (registers the OpenAPI auth extensions)
from registry_policies.api.views import (
    accounts,
    audit,
    namespaces,
    organizations,
    policies,
    repositories,
    repository_permissions,
    scans,
    tags,
    teams,
    tokens,
)

app_name = "api"

organization_patterns: list[URLPattern | URLResolver] = [
    path("", organizations.OrganizationDetailView.as_view(), name="organization-detail"),
    path("members/", organizations.OrganizationMemberListView.as_view(), name="organization-members"),
    path("members/<str:username>/", organizations.OrganizationMemberDetailView.as_view(),
         name="organization-member-detail"),
    path("teams/", teams.TeamListCreateView.as_view(), name="team-list"),
    path("teams/<str:team>/", teams.TeamDetailView.as_view(), name="team-detail"),
    path("teams/<str:team>/members/", teams.TeamMemberListView.as_view(), name="team-members"),
    path("teams/<str:team>/members/<str:username>/", teams.TeamMemberDetailView.as_view(),
         name="team-member-detail"),
]

namespace_patterns: list[URLPattern | URLResolver] = [
    path("", namespaces.NamespaceDetailView.as_view(), name="namespace-detail"),
    path("permissions/", namespaces.NamespacePermissionsView.as_view(), name="namespace-permissions"),
]

repository_patterns: list[URLPattern | URLResolver] = [
    path("", repositories.RepositoryDetailView.as_view(), name="repository-detail"),
    path("permissions/", repository_permissions.RepositoryPermissionsView.as_view(),
         name="repository-permissions"),
    path("tags/", tags.TagListView.as_view(), name="tag-list"),
    re_path(rf"^tags/(?P<tag>{tags.TAG_PATTERN})/$", tags.TagDetailView.as_view(), name="tag-detail"),
    re_path(rf"^tags/(?P<tag>{tags.TAG_PATTERN})/history/$", tags.TagHistoryView.as_view(),
            name="tag-history"),
    re_path(rf"^tags/(?P<tag>{tags.TAG_PATTERN})/scan/$", scans.TagScanView.as_view(), name="tag-scan"),
    path("promotion-policies/", policies.PromotionPolicyListCreateView.as_view(), name="promotion-policy-list"),
    path("promotion-policies/<int:pk>/", policies.PromotionPolicyDetailView.as_view(),
         name="promotion-policy-detail"),
    path("promotion-policies/<int:pk>/dry-run/", policies.PromotionPolicyDryRunView.as_view(),
         name="promotion-policy-dry-run"),
    path("promotion-policies/<int:pk>/run/", policies.PromotionPolicyRunView.as_view(),
         name="promotion-policy-run"),
    path("promotions/", policies.PromotionListView.as_view(), name="promotion-list"),
]

urlpatterns = [
    path("me/", accounts.MeView.as_view(), name="me"),
    path("users/", accounts.UserListCreateView.as_view(), name="user-list"),
    path("users/<str:username>/", accounts.UserDetailView.as_view(), name="user-detail"),
    path("tokens/", tokens.TokenListCreateView.as_view(), name="token-list"),
    path("tokens/<int:pk>/", tokens.TokenDetailView.as_view(), name="token-detail"),
    path("organizations/", organizations.OrganizationListCreateView.as_view(), name="organization-list"),
    path("organizations/<str:org>/", include(organization_patterns)),
    path("namespaces/", namespaces.NamespaceListView.as_view(), name="namespace-list"),
    path("namespaces/<str:namespace>/", include(namespace_patterns)),
    path("repositories/", repositories.RepositoryListCreateView.as_view(), name="repository-list"),
    path("repositories/<str:namespace>/<str:name>/", include(repository_patterns)),
    path("audit-events/", audit.AuditEventListView.as_view(), name="audit-event-list"),
]

# -- mirroring (issue 7): integrations, push mirrors, pull mirror, mirror runs ------------------------
from registry_policies.api.views import integrations, mirrors  # noqa: E402

repository_patterns += [
    path("push-mirrors/", mirrors.PushMirrorListCreateView.as_view(), name="push-mirror-list"),
    path("push-mirrors/<int:pk>/", mirrors.PushMirrorDetailView.as_view(), name="push-mirror-detail"),
    path("push-mirrors/<int:pk>/run/", mirrors.PushMirrorRunView.as_view(), name="push-mirror-run"),
    path("pull-mirror/", mirrors.PullMirrorView.as_view(), name="pull-mirror"),
    path("pull-mirror/sync/", mirrors.PullMirrorSyncView.as_view(), name="pull-mirror-sync"),
    path("mirror-runs/", mirrors.MirrorRunListView.as_view(), name="mirror-run-list"),
    path("mirror-runs/<int:pk>/", mirrors.MirrorRunDetailView.as_view(), name="mirror-run-detail"),
]
urlpatterns += [
    path("integrations/", integrations.IntegrationListCreateView.as_view(), name="integration-list"),
    path("integrations/<int:pk>/", integrations.IntegrationDetailView.as_view(), name="integration-detail"),
    path("integrations/<int:pk>/connect/", integrations.IntegrationConnectView.as_view(),
         name="integration-connect"),
]

# -- webhooks (issue 8): repository, namespace and global webhooks, deliveries, test, redeliver --------
from registry_policies.api.views import webhooks  # noqa: E402


def _webhook_patterns(kind: str, prefix: str) -> list[URLPattern | URLResolver]:
    """The webhook routes of one scope (`kind`), named `<prefix>-webhook-…`."""
    return [
        path("webhooks/", webhooks.WebhookListCreateView.as_view(scope_kind=kind), name=f"{prefix}-webhook-list"),
        path("webhooks/<int:pk>/", webhooks.WebhookDetailView.as_view(scope_kind=kind),
             name=f"{prefix}-webhook-detail"),
        path("webhooks/<int:pk>/deliveries/", webhooks.WebhookDeliveryListView.as_view(scope_kind=kind),
             name=f"{prefix}-webhook-deliveries"),
        path("webhooks/<int:pk>/deliveries/<int:delivery_id>/redeliver/",
             webhooks.WebhookRedeliverView.as_view(scope_kind=kind), name=f"{prefix}-webhook-redeliver"),
        path("webhooks/<int:pk>/test/", webhooks.WebhookTestView.as_view(scope_kind=kind),
             name=f"{prefix}-webhook-test"),
    ]


repository_patterns += _webhook_patterns(webhooks.REPOSITORY, "repository")
namespace_patterns += _webhook_patterns(webhooks.NAMESPACE, "namespace")
urlpatterns += [
    path("webhook-event-types/", webhooks.EventTypeListView.as_view(), name="webhook-event-types"),
    *_webhook_patterns(webhooks.GLOBAL, "global"),
]

# -- policy scopes and pruning (issue 14): namespace and global promotion policies, pruning policies ---
from registry_policies.api.views import pruning as pruning_views  # noqa: E402
from registry_policies.api.views import scoped_policies  # noqa: E402


def _scoped_policy_patterns(kind: str, prefix: str) -> list[URLPattern | URLResolver]:
    """Pruning routes of every scope, plus promotion routes of namespace and global scope."""
    routes: list[URLPattern | URLResolver] = [
        path("pruning-policies/", pruning_views.PruningPolicyListView.as_view(scope_kind=kind),
             name=f"{prefix}-pruning-policy-list"),
        path("pruning-policies/<int:pk>/", pruning_views.PruningPolicyDetailView.as_view(scope_kind=kind),
             name=f"{prefix}-pruning-policy-detail"),
        path("pruning-policies/<int:pk>/dry-run/", pruning_views.PruningPolicyDryRunView.as_view(scope_kind=kind),
             name=f"{prefix}-pruning-policy-dry-run"),
        path("pruning-policies/<int:pk>/run/", pruning_views.PruningPolicyRunView.as_view(scope_kind=kind),
             name=f"{prefix}-pruning-policy-run"),
        path("pruning-policies/<int:pk>/runs/", pruning_views.PruningRunListView.as_view(scope_kind=kind),
             name=f"{prefix}-pruning-policy-runs"),
    ]
    if kind != "repository":
        routes += [
            path("promotion-policies/", scoped_policies.ScopedPromotionPolicyListView.as_view(scope_kind=kind),
                 name=f"{prefix}-promotion-policy-list"),
            path("promotion-policies/<int:pk>/",
                 scoped_policies.ScopedPromotionPolicyDetailView.as_view(scope_kind=kind),
                 name=f"{prefix}-promotion-policy-detail"),
            path("promotion-policies/<int:pk>/dry-run/",
                 scoped_policies.ScopedPromotionPolicyDryRunView.as_view(scope_kind=kind),
                 name=f"{prefix}-promotion-policy-dry-run"),
            path("promotion-policies/<int:pk>/run/",
                 scoped_policies.ScopedPromotionPolicyRunView.as_view(scope_kind=kind),
                 name=f"{prefix}-promotion-policy-run"),
        ]
    return routes


repository_patterns += [
    *_scoped_policy_patterns("repository", "repository"),
    path("policies/", scoped_policies.RepositoryPoliciesView.as_view(), name="repository-policies"),
]
namespace_patterns += _scoped_policy_patterns("namespace", "namespace")
urlpatterns += _scoped_policy_patterns("global", "global")

# -- push mirror scopes (issue 14): namespace and global push mirror policies ---
from registry_policies.api.views import scoped_mirrors  # noqa: E402


def _scoped_mirror_patterns(kind: str, prefix: str) -> list[URLPattern | URLResolver]:
    return [
        path("push-mirrors/", scoped_mirrors.ScopedPushMirrorListView.as_view(scope_kind=kind),
             name=f"{prefix}-push-mirror-list"),
        path("push-mirrors/<int:pk>/", scoped_mirrors.ScopedPushMirrorDetailView.as_view(scope_kind=kind),
             name=f"{prefix}-push-mirror-detail"),
        path("push-mirrors/<int:pk>/dry-run/", scoped_mirrors.ScopedPushMirrorDryRunView.as_view(scope_kind=kind),
             name=f"{prefix}-push-mirror-dry-run"),
        path("push-mirrors/<int:pk>/run/", scoped_mirrors.ScopedPushMirrorRunView.as_view(scope_kind=kind),
             name=f"{prefix}-push-mirror-run"),
    ]


namespace_patterns += _scoped_mirror_patterns("namespace", "namespace")
urlpatterns += _scoped_mirror_patterns("global", "global")
# -- policy export and import as YAML (issue 14 item 7) ----------------------------------------------
from registry_policies.api.views import policy_yaml  # noqa: E402

namespace_patterns += [
    path("policies.yaml", policy_yaml.NamespacePolicyYamlView.as_view(), name="namespace-policies-yaml"),
]
