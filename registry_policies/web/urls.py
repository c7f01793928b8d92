"""Self-service pages. Fixed top-level paths come first; the namespace and repository patterns are
catch-alls whose converters refuse reserved names (see `reserved.py`), so `/api/…`, `/v2/…`,
`/admin/…`, `/settings/…` and the like are never taken for a namespace."""
from django.urls import path, register_converter

from registry_policies.web.reserved import NameConverter, NamespaceConverter
from registry_policies.web.views import (
    dashboard,
    namespaces,
    permissions,
    promotions,
    repositories,
    tags,
    teams,
    tokens,
)

register_converter(NamespaceConverter, "ns")
register_converter(NameConverter, "name")
register_converter(tags.TagConverter, "tag")

app_name = "web"
urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("repositories/new/", repositories.repository_create, name="repository-create"),
    path("organizations/new/", namespaces.organization_create, name="organization-create"),
    path("settings/tokens/", tokens.tokens, name="tokens"),
    path("settings/tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    # Catch-alls: /<namespace>/…
    path("<ns:namespace>/", namespaces.namespace_detail, name="namespace"),
    path("<ns:namespace>/-/members/", namespaces.member_add, name="member-add"),
    path("<ns:namespace>/-/members/remove/", namespaces.member_remove, name="member-remove"),
    path("<ns:namespace>/-/teams/new/", teams.team_create, name="team-create"),
    path("<ns:namespace>/-/teams/<name:team>/", teams.team_detail, name="team"),
    path("<ns:namespace>/-/teams/<name:team>/members/", teams.team_member_add, name="team-member-add"),
    path("<ns:namespace>/-/teams/<name:team>/members/remove/", teams.team_member_remove,
         name="team-member-remove"),
    path("<ns:namespace>/<name:name>/", tags.repository_tags, name="repository"),
    path("<ns:namespace>/<name:name>/tags/<tag:tag>/", tags.tag_detail, name="tag"),
    path("<ns:namespace>/<name:name>/tags/<tag:tag>/delete/", tags.tag_delete, name="tag-delete"),
    path("<ns:namespace>/<name:name>/tags/<tag:tag>/scan/", tags.tag_rescan, name="tag-rescan"),
    path("<ns:namespace>/<name:name>/settings/", repositories.repository_settings,
         name="repository-settings"),
    path("<ns:namespace>/<name:name>/permissions/", permissions.repository_permissions,
         name="repository-permissions"),
    path("<ns:namespace>/<name:name>/permissions/revoke/", permissions.repository_permission_revoke,
         name="repository-permission-revoke"),
    path("<ns:namespace>/<name:name>/delete/", repositories.repository_delete, name="repository-delete"),
    path("<ns:namespace>/<name:name>/promotions/", promotions.promotions, name="repository-promotions"),
    path("<ns:namespace>/<name:name>/promotions/new/", promotions.policy_create, name="promotion-policy-create"),
    path("<ns:namespace>/<name:name>/promotions/preview/", promotions.template_preview, name="promotion-preview"),
    path("<ns:namespace>/<name:name>/promotions/<int:pk>/edit/", promotions.policy_edit,
         name="promotion-policy-edit"),
    path("<ns:namespace>/<name:name>/promotions/<int:pk>/dry-run/", promotions.policy_dry_run,
         name="promotion-policy-dry-run"),
    path("<ns:namespace>/<name:name>/promotions/<int:pk>/run/", promotions.policy_run, name="promotion-policy-run"),
    path("<ns:namespace>/<name:name>/promotions/<int:pk>/delete/", promotions.policy_delete,
         name="promotion-policy-delete"),
]

# The Mirrors tab (issue 7).
from registry_policies.web.mirror_urls import urlpatterns as mirror_urlpatterns  # noqa: E402

urlpatterns += mirror_urlpatterns

# The Webhooks and Activity tabs (issue 8).
from registry_policies.web.views import activity, webhooks  # noqa: E402

urlpatterns += [
    path("<ns:namespace>/<name:name>/activity/", activity.activity, name="repository-activity"),
    path("<ns:namespace>/<name:name>/webhooks/", webhooks.webhooks, name="repository-webhooks"),
    path("<ns:namespace>/<name:name>/webhooks/new/", webhooks.webhook_create, name="webhook-create"),
    path("<ns:namespace>/<name:name>/webhooks/<int:pk>/", webhooks.webhook_detail, name="webhook-detail"),
    path("<ns:namespace>/<name:name>/webhooks/<int:pk>/edit/", webhooks.webhook_edit, name="webhook-edit"),
    path("<ns:namespace>/<name:name>/webhooks/<int:pk>/test/", webhooks.webhook_test, name="webhook-test"),
    path("<ns:namespace>/<name:name>/webhooks/<int:pk>/delete/", webhooks.webhook_delete, name="webhook-delete"),
    path("<ns:namespace>/<name:name>/webhooks/<int:pk>/deliveries/<int:delivery_pk>/redeliver/",
         webhooks.delivery_redeliver, name="webhook-redeliver"),
]

# Policy scopes and pruning (issue 14): the Pruning tab and a namespace's policies page.
from registry_policies.web.views import namespace_policies, pruning  # noqa: E402

urlpatterns += [
    path("<ns:namespace>/-/policies/", namespace_policies.policies_page, name="namespace-policies"),
    path("<ns:namespace>/-/policies/<str:kind>/<int:pk>/delete/", namespace_policies.policy_delete,
         name="namespace-policy-delete"),
    path("<ns:namespace>/<name:name>/pruning/", pruning.pruning_tab, name="repository-pruning"),
    path("<ns:namespace>/<name:name>/pruning/new/", pruning.policy_form, name="pruning-policy-create"),
    path("<ns:namespace>/<name:name>/pruning/<int:pk>/edit/", pruning.policy_form, name="pruning-policy-edit"),
    path("<ns:namespace>/<name:name>/pruning/<int:pk>/dry-run/", pruning.policy_dry_run,
         name="pruning-policy-dry-run"),
    path("<ns:namespace>/<name:name>/pruning/<int:pk>/run/", pruning.policy_run, name="pruning-policy-run"),
    path("<ns:namespace>/<name:name>/pruning/<int:pk>/delete/", pruning.policy_delete,
         name="pruning-policy-delete"),
]
