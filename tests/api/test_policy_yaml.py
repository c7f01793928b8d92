"""Export and import of a namespace's policies as YAML: `GET`/`PUT /api/v1/namespaces/{ns}/policies.yaml`
and `manage.py policies export|import`: round trips give the same text, imports are all or
nothing with errors naming line and field, secrets never leave, and who may do what."""
import io

import pytest
import yaml
from django.core.management import CommandError, call_command

from registry_policies.integrations.models import Integration
from registry_policies.mirroring import services as mirroring
from registry_policies.mirroring.models import PullMirror, PushMirrorPolicy
from registry_policies.policies import pruning, services
from registry_policies.policies.models import PolicyRule, PromotionPolicy, PruningPolicy
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/namespaces/dev/policies.yaml"
STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["-stable"]}]
SECRETS = ("integration-s3cr3t", "pull-s3cr3t")


@pytest.fixture
def world(make_user):
    root = make_user("root", is_superuser=True)
    olga, reader, delegate, stranger = (make_user(n) for n in ("olga", "reader", "delegate", "stranger"))
    dev = tenancy.create_organization(name="dev", owner=olga).namespace
    qa = tenancy.create_organization(name="qa", owner=olga).namespace
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=reader), role="read", actor=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=delegate), role="manage_policies", actor=olga)
    tenancy.grant_namespace_role(namespace=dev, grantee=Grantee(user=delegate), role="read", actor=olga)
    tenancy.grant_namespace_role(namespace=qa, grantee=Grantee(user=delegate), role="write", actor=olga)
    website = create_repository(namespace=dev, name="website", actor=olga)
    api = create_repository(namespace=dev, name="api", actor=olga)
    mirror_repo = create_repository(namespace=dev, name="alpine", actor=olga)
    qa_website = create_repository(namespace=qa, name="website", actor=olga)
    services.save_policy(author=root, scope="namespace", namespace=dev, target=None, target_template="qa/{name}",
                         rules=STABLE, repository_filter="web.*")
    services.save_policy(author=root, source=website, target=qa_website, tag_template="%n-qa",
                         rules=[*STABLE, {"field": "vulnerabilities", "operator": "lte", "values": ["0"],
                                          "severity": "critical"}])
    pruning.save_policy(author=root, scope="repository", repository=api, keep_latest=5, schedule="weekly")
    pruning.save_policy(author=root, scope="namespace", namespace=dev, rules=[
        {"field": "tag_name", "operator": "matches", "values": ["pr-[0-9]+"]}], older_than_days=30)
    integration = Integration.objects.create(namespace=dev, name="hub", url="https://registry.example.com",
                                             username="bot", secret=SECRETS[0])
    PushMirrorPolicy.objects.create(source=website, integration=integration, remote_repository="team/website",
                                    rules=STABLE, author=root)
    mirroring.save_pull_mirror(actor=root, repository=mirror_repo, url="https://mirror.example.com",
                               remote_repository="library/alpine", username="puller", secret=SECRETS[1],
                               tag_filter="3.*")
    return {"root": root, "olga": olga, "reader": reader, "delegate": delegate, "stranger": stranger, "dev": dev}


def counts() -> tuple[int, ...]:
    return (PromotionPolicy.objects.count(), PolicyRule.objects.count(), PruningPolicy.objects.count(),
            PushMirrorPolicy.objects.count(), PullMirror.objects.count())


def put(client, text: str):
    return client.put(URL, data=text.encode(), content_type="application/yaml")


def test_export_has_every_kind_without_secrets_and_round_trips_identically(world, client_for):
    client = client_for(world["root"])
    response = client.get(URL)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/yaml")
    text = response.content.decode()
    for secret in SECRETS:
        assert secret not in text
    data = yaml.safe_load(text)
    assert list(data) == ["version", "namespace", "promotion_policies", "pruning_policies", "push_mirrors",
                          "pull_mirrors"]
    assert [p["scope"] for p in data["promotion_policies"]] == ["namespace", "repository"]
    assert data["promotion_policies"][0] == {
        "scope": "namespace", "repository_filter": "web.*", "target_repository": "qa/{name}", "tag_template": "",
        "enabled": True, "rules": STABLE}
    assert data["promotion_policies"][1]["rules"][1] == {
        "field": "vulnerabilities", "operator": "lte", "values": ["0"], "severity": "critical"}
    assert data["push_mirrors"] == [{"repository": "website", "integration": "dev/hub",
                                     "remote_repository": "team/website", "tag_template": "", "enabled": True,
                                     "rules": STABLE}]
    assert "secret" not in data["pull_mirrors"][0] and data["pull_mirrors"][0]["username"] == "puller"
    ids = sorted(PromotionPolicy.objects.values_list("pk", flat=True))
    before = counts()
    imported = put(client, text)
    assert imported.status_code == 200, imported.json()
    assert imported.json() == {"created": 0, "updated": 0, "deleted": 0, "unchanged": 6}
    assert client.get(URL).content.decode() == text
    assert counts() == before and sorted(PromotionPolicy.objects.values_list("pk", flat=True)) == ids
    assert PullMirror.objects.get().get_secret() == SECRETS[1]


def test_import_creates_updates_and_deletes_then_round_trips(world, client_for):
    client = client_for(world["root"])
    data = yaml.safe_load(client.get(URL).content)
    data["promotion_policies"][0]["rules"][0]["values"] = ["-ok"]  # update (same natural key)
    data["pruning_policies"] = [p for p in data["pruning_policies"] if p["scope"] == "namespace"]  # delete one
    data["promotion_policies"].append({"scope": "repository", "repository": "api", "target_repository": "qa/website",
                                       "rules": []})  # create, defaults filled in
    data["pull_mirrors"][0]["interval_seconds"] = 7200
    response = put(client, yaml.safe_dump(data, sort_keys=False))
    assert response.status_code == 200, response.json()
    assert response.json() == {"created": 1, "updated": 2, "deleted": 1, "unchanged": 3}
    namespace_policy = PromotionPolicy.objects.get(scope="namespace")
    assert list(namespace_policy.rules.values_list("values", flat=True)) == [["-ok"]]
    assert PruningPolicy.objects.filter(scope="repository").count() == 0
    assert PromotionPolicy.objects.get(source__name="api").target.full_name == "qa/website"
    mirror = PullMirror.objects.get()
    assert (mirror.interval_seconds, mirror.get_secret()) == (7200, SECRETS[1])  # the secret stays
    text = client.get(URL).content.decode()
    assert put(client, text).json()["unchanged"] == 6
    assert client.get(URL).content.decode() == text


BAD_OPERATOR = """version: 1
namespace: dev
promotion_policies:
- scope: namespace
  target_repository: qa/{name}
  rules:
  - field: tag_name
    operator: foo
    values: [x]
- scope: repository
  repository: nowhere
  target_repository: qa/website
pruning_policies:
- scope: namespace
  colour: blue
  keep_latest: 3
"""


@pytest.mark.parametrize("text, expected", [
    ("version: 1\nnamespace: dev\npromotion_policies: [\n  - a: b\n", ["line 4: invalid YAML"]),
    (BAD_OPERATOR, ["line 8: promotion_policies[0].rules[0].operator: Unknown operator 'foo'",
                    "line 11: promotion_policies[1].repository: There is no repository dev/nowhere.",
                    "line 15: pruning_policies[0].colour: Unknown field."]),
    ("version: 1\nnamespace: dev\npromotion_policies:\n- scope: namespace\n  target_repository: qa/{name}\n"
     "  rules:\n  - field: tag_name\n    operator: foo\n    values: [x]\n",
     ["line 8: promotion_policies[0].rules[0].operator: Unknown operator 'foo'"]),
    ("version: 1\nnamespace: qa\n", ["line 2: namespace: This file is for 'qa', not 'dev'."]),
    ("version: 1\npromotion_policies:\n- repository: [a]\n  scope: repository\n  target_repository: 5\n",
     ["line 3: promotion_policies[0].repository: Expected a string.",
      "line 5: promotion_policies[0].target_repository: Expected a string."]),
    ("- a\n", ["line 1: The document must be a mapping"]),
    ("version: 1\npush_mirrors:\n- repository: website\n  integration: dev/nope\n  remote_repository: x/y\n",
     ["line 4: push_mirrors[0].integration: There is no integration 'dev/nope'"]),
])
def test_broken_file_is_refused_with_lines_and_nothing_changes(world, client_for, text, expected):
    client = client_for(world["root"])
    before, exported = counts(), client.get(URL).content
    response = put(client, text)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == len(expected), errors
    for error, start in zip(errors, expected, strict=True):
        assert error.startswith(start), errors
    assert counts() == before and client.get(URL).content == exported


def test_service_errors_after_other_changes_roll_everything_back(world, client_for):
    """A valid deletion and update come before a refused item: all of it is undone."""
    client = client_for(world["root"])
    before, exported = counts(), client.get(URL).content
    data = yaml.safe_load(exported)
    data["pruning_policies"] = []
    data["promotion_policies"][0]["repository_filter"] = "(unclosed"
    response = put(client, yaml.safe_dump(data, sort_keys=False))
    assert response.status_code == 400
    assert response.json()["errors"][0].startswith("line 5: promotion_policies[0].repository_filter: ")
    assert counts() == before and client.get(URL).content == exported


def test_permission_matrix(world, client_for):
    exported = client_for(world["root"]).get(URL).content
    stranger = client_for(world["stranger"])
    assert stranger.get(URL).status_code == 404
    assert put(stranger, exported.decode()).status_code == 404
    reader = client_for(world["reader"])
    assert reader.get(URL).status_code == 200
    refused = put(reader, "version: 1\nnamespace: dev\n")
    assert refused.status_code == 403 and "manage_policies" in refused.json()["detail"]
    assert client_for(None).get(URL).status_code in (401, 403)
    before = counts()
    # The delegate may replace promotion and pruning policies but not mirrors (admin on the repository).
    data = yaml.safe_load(exported)
    data["pull_mirrors"][0]["interval_seconds"] = 7200
    denied = put(client_for(world["delegate"]), yaml.safe_dump(data, sort_keys=False))
    assert denied.status_code == 400
    [error] = denied.json()["errors"]
    assert error.startswith(f"line {_line_of(data, 'pull_mirrors')}: pull_mirrors[0].repository: "), error
    assert counts() == before


def _line_of(data, key) -> int:
    return yaml.safe_dump(data, sort_keys=False).splitlines().index(f"{key}:") + 2


def test_command_round_trip_and_errors(world, tmp_path):
    out = io.StringIO()
    call_command("policies", "export", "dev", "-", stdout=out)
    text = out.getvalue()
    assert "promotion_policies:" in text and not any(secret in text for secret in SECRETS)
    path = tmp_path / "dev.yaml"
    call_command("policies", "export", "dev", str(path), "--user", "root")
    assert path.read_text() == text
    report = io.StringIO()
    call_command("policies", "import", "dev", str(path), stdout=report)
    assert "0 created, 0 updated, 0 deleted, 6 unchanged" in report.getvalue()
    again = io.StringIO()
    call_command("policies", "export", "dev", "-", stdout=again)
    assert again.getvalue() == text
    path.write_text(BAD_OPERATOR)
    before = counts()
    with pytest.raises(CommandError) as caught:
        call_command("policies", "import", "dev", str(path))
    assert "line 8: promotion_policies[0].rules[0].operator: Unknown operator 'foo'" in str(caught.value)
    assert counts() == before
    with pytest.raises(CommandError, match="There is no namespace 'nope'"):
        call_command("policies", "export", "nope", "-")


def test_export_holds_only_what_the_viewer_may_see(world, client_for, make_user):
    """An organization member with read on dev/website only: its policies and the namespace's,
    nothing of the private dev/api and dev/alpine."""
    from registry_policies.repositories.models import Repository

    mark = make_user("mark")
    organization = world["dev"].organization
    tenancy.set_organization_member(organization=organization, user=mark, role="member", actor=world["olga"])
    tenancy.grant_repository_role(repository=Repository.objects.get(namespace=world["dev"], name="website"),
                                  grantee=Grantee(user=mark), role="read", actor=world["olga"])
    response = client_for(mark).get(URL)
    assert response.status_code == 200
    data = yaml.safe_load(response.content)
    assert [(p["scope"], p.get("repository")) for p in data["promotion_policies"]] == [
        ("namespace", None), ("repository", "website")]
    assert [p["scope"] for p in data["pruning_policies"]] == ["namespace"]  # not dev/api's
    assert [m["repository"] for m in data["push_mirrors"]] == ["website"]
    assert data["pull_mirrors"] == []  # dev/alpine is private to mark
    assert "alpine" not in response.content.decode() and "api" not in [
        p.get("repository") for p in data["promotion_policies"] + data["pruning_policies"]]
