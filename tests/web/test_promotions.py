"""The Promotions tab: policies and history for readers; the policy form (rule rows, target picker,
template preview), dry run, run now and delete for those who may manage policies."""
import re

import pytest

from registry_policies.policies import services
from registry_policies.policies.models import PolicyRule, Promotion, PromotionPolicy
from registry_policies.repositories.models import Tag
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.tenancy.services import Grantee
from tests.factories import push_image

pytestmark = pytest.mark.django_db(transaction=True)  # pushes fire policies after commit

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["stable"]}]
TAB = "/alice/dev/promotions/"


@pytest.fixture
def repos(make_user):
    """alice owns alice/dev (source) and alice/qa (target); rita reads alice/dev; sam is a stranger."""
    alice, rita, sam = make_user("alice"), make_user("rita"), make_user("sam")
    dev = create_repository(namespace=alice.namespace, name="dev", actor=alice)
    qa = create_repository(namespace=alice.namespace, name="qa", actor=alice)
    tenancy.grant_repository_role(repository=dev, grantee=Grantee(user=rita), role="read", actor=alice)
    return alice, rita, sam, dev, qa


def form_data(rules: list[dict[str, str]], *, target: str = "alice/qa", template: str = "", enabled: bool = True,
              **extra: str) -> dict[str, str]:
    data = {"rules-TOTAL_FORMS": str(len(rules)), "rules-INITIAL_FORMS": "0", "rules-MIN_NUM_FORMS": "0",
            "rules-MAX_NUM_FORMS": "1000", "target": target, "tag_template": template, "sample_tag": "1.0-stable",
            **extra}
    if enabled:
        data["enabled"] = "on"
    for index, rule in enumerate(rules):
        for key, value in rule.items():
            data[f"rules-{index}-{key}"] = value
    return data


ROW = {"field": "tag_name", "operator": "ends_with", "severity": "", "values": "stable"}
BLANK = {"field": "", "operator": "equals", "severity": "", "values": ""}


# -- the tab -------------------------------------------------------------------------------------

def test_tab_lists_policies_in_words_for_readers_without_management_actions(repos, as_user):
    alice, rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, tag_template="%n-%Y%m%d", rules=[
        *STABLE, {"field": "vulnerabilities", "operator": "lte", "values": ["0"], "severity": "critical"}])
    page = as_user(rita).get(TAB)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'aria-current="page">Promotions</a>' in html
    assert "tag name ends with &#x27;stable&#x27;" in html and "critical vulnerabilities ≤ 0" in html
    assert "alice/qa" in html and "%n-%Y%m%d" in html and f"#{policy.pk}" in html
    assert "New policy" not in html and "Run now" not in html and "/promotions/new/" not in html
    owner_html = as_user(alice).get(TAB).content.decode()
    assert "New policy" in owner_html and f"/alice/dev/promotions/{policy.pk}/edit/" in owner_html


def test_tab_is_404_for_those_who_cannot_read_the_repository(repos, as_user, client):
    _alice, _rita, sam, _dev, _qa = repos
    assert client.get(TAB).status_code == 404
    assert as_user(sam).get(TAB).status_code == 404
    assert as_user(sam).get("/alice/dev/promotions/new/").status_code == 404


def test_tags_tab_links_to_promotions(repos, as_user):
    alice, *_ = repos
    assert 'href="/alice/dev/promotions/"' in as_user(alice).get("/alice/dev/").content.decode()


def test_paused_policy_shows_its_reason(repos, as_user):
    alice, rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE)
    PromotionPolicy.objects.filter(pk=policy.pk).update(paused_reason="The policy's author alice may no longer push.")
    html = as_user(rita).get(TAB).content.decode()
    assert "status-paused" in html and "may no longer push" in html


def test_tab_queries_do_not_grow_with_policies_and_history(repos, as_user, django_assert_max_num_queries):
    alice, _rita, _sam, dev, qa = repos
    for index in range(5):
        services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template=f"%n-{index}")
    for index in range(3):
        push_image(dev, f"{index}.0-stable", actor=alice)
    client = as_user(alice)
    with django_assert_max_num_queries(22):  # +6: the pipeline view, batched per layer
        response = client.get(TAB)
    assert len(response.context["history"]) == 15 and len(response.context["policies"]) == 5


# -- creating ------------------------------------------------------------------------------------

def test_owner_creates_a_policy_through_the_form_skipping_blank_and_removed_rows(repos, as_user):
    alice, _rita, _sam, dev, _qa = repos
    removed = {"field": "tag_name", "operator": "contains", "severity": "", "values": "rc", "DELETE": "on"}
    vulns = {"field": "vulnerabilities", "operator": "lt", "severity": "critical", "values": "1"}
    data = form_data([ROW, BLANK, removed, vulns], template="%n-qa")
    response = as_user(alice).post("/alice/dev/promotions/new/", data)
    assert response.status_code == 302 and response["Location"] == TAB
    policy = PromotionPolicy.objects.get()
    assert (policy.source, policy.target.full_name, policy.tag_template, policy.enabled, policy.author) == (
        dev, "alice/qa", "%n-qa", True, alice)
    assert [services.rule_as_dict(rule) for rule in policy.rules.all()] == [
        {"field": "tag_name", "operator": "ends_with", "values": ["stable"]},
        {"field": "vulnerabilities", "operator": "lt", "values": ["1"], "severity": "critical"}]
    assert "saved" in as_user(alice).get(TAB).content.decode()


def test_form_offers_only_repositories_the_user_may_push_to(repos, as_user, make_user):
    alice, _rita, _sam, _dev, _qa = repos
    bob = make_user("bob")
    create_repository(namespace=bob.namespace, name="open", actor=bob, visibility="public")
    shared = create_repository(namespace=bob.namespace, name="shared", actor=bob)
    tenancy.grant_repository_role(repository=shared, grantee=Grantee(user=alice), role="write", actor=bob)
    response = as_user(alice).get("/alice/dev/promotions/new/")
    choices = [value for value, _label in response.context["form"].fields["target"].widget.choices]
    assert choices == ["", "alice/qa", "bob/shared"]  # not the source, not bob/open (read only)


@pytest.mark.parametrize(("rows", "changes", "where", "message"), [
    ([{**ROW, "operator": "gte"}], {}, "operator", "does not apply to tag_name"),
    ([{**ROW, "values": ""}], {}, "values", "Give at least one value"),
    ([{"field": "vulnerabilities", "operator": "lte", "severity": "", "values": "0"}], {}, "severity",
     "This field is required"),
    ([{"field": "vulnerabilities", "operator": "lte", "severity": "critical", "values": "many"}], {}, "values",
     "many"),
    ([ROW], {"template": "%n-%q"}, "tag_template", "Unknown token"),
    ([ROW], {"target": ""}, "target", "Choose an existing target repository"),
    ([ROW], {"target": "alice/dev"}, "target", "another repository"),
])
def test_invalid_input_shows_errors_next_to_the_field_and_stores_nothing(repos, as_user, rows, changes, where,
                                                                          message):
    alice, *_ = repos
    response = as_user(alice).post("/alice/dev/promotions/new/", form_data(rows, **changes))
    assert response.status_code == 200
    if where in ("operator", "values", "severity"):
        errors = response.context["formset"].forms[0].errors[where]
    else:
        errors = response.context["form"].errors[where]
    assert message in str(errors)
    html = response.content.decode()
    assert 'class="errorlist' in html and message.split("'")[0] in html
    assert not PromotionPolicy.objects.exists() and not PolicyRule.objects.exists()


def test_target_the_author_may_not_push_to_is_refused(repos, as_user, make_user):
    alice, *_ = repos
    bob = make_user("bob")
    create_repository(namespace=bob.namespace, name="open", actor=bob, visibility="public")
    create_repository(namespace=bob.namespace, name="secret", actor=bob)
    response = as_user(alice).post("/alice/dev/promotions/new/", form_data([ROW], target="bob/open"))
    assert "may not push to bob/open" in str(response.context["form"].errors["target"])
    response = as_user(alice).post("/alice/dev/promotions/new/", form_data([ROW], target="bob/secret"))
    assert "There is no repository &#x27;bob/secret&#x27;" in response.content.decode()
    assert not PromotionPolicy.objects.exists()


def test_add_row_button_rerenders_with_one_more_row_and_keeps_input(repos, as_user):
    alice, *_ = repos
    data = form_data([ROW], template="%n-x", add_row="1")
    response = as_user(alice).post("/alice/dev/promotions/new/", data)
    assert response.status_code == 200
    formset = response.context["formset"]
    assert formset.total_form_count() == 2
    html = response.content.decode()
    assert 'name="rules-TOTAL_FORMS" value="2"' in html and 'name="rules-1-field"' in html
    assert 'value="stable"' in html and 'value="%n-x"' in html
    assert "errorlist" not in html  # nothing validated yet
    assert not PromotionPolicy.objects.exists()


def test_preview_button_renders_the_template_without_saving(repos, as_user):
    alice, *_ = repos
    response = as_user(alice).post("/alice/dev/promotions/new/",
                                   form_data([ROW], template="%n-promoted", preview="1", sample_tag="2.0-stable"))
    assert response.status_code == 200
    assert response.context["preview"].tag == "2.0-stable-promoted"
    assert '<code class="preview-tag">2.0-stable-promoted</code>' in response.content.decode()
    bad = as_user(alice).post("/alice/dev/promotions/new/", form_data([ROW], template="%n/x", preview="1"))
    assert "not a valid tag" in bad.context["preview"].error
    assert not PromotionPolicy.objects.exists()


def test_preview_endpoint_answers_the_rendered_tag_or_the_error(repos, as_user):
    alice, _rita, sam, *_ = repos
    url = "/alice/dev/promotions/preview/"
    assert as_user(alice).get(url, {"template": "%n-rc", "tag": "3.1"}).json() == {"tag": "3.1-rc", "error": None}
    error = as_user(alice).get(url, {"template": "%n-%q"}).json()
    assert error["tag"] is None and "Unknown token '%q'" in error["error"]
    assert as_user(alice).get(url).json() == {"tag": "1.0-stable", "error": None}
    assert as_user(sam).get(url).status_code == 404


def test_users_who_may_not_manage_get_403_and_nothing_changes(repos, as_user, make_user):
    alice, rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE)
    tenancy.grant_repository_role(repository=dev, grantee=Grantee(user=rita), role="admin", actor=alice)
    client = as_user(rita)  # even an admin of the repository: policies need "manage policies"
    base = f"/alice/dev/promotions/{policy.pk}/"
    assert client.get("/alice/dev/promotions/new/").status_code == 403
    assert client.post("/alice/dev/promotions/new/", form_data([ROW])).status_code == 403
    assert client.post(base + "edit/", form_data([ROW], template="%n-x")).status_code == 403
    assert client.get(base + "dry-run/").status_code == 403
    assert client.post(base + "run/").status_code == 403
    assert client.post(base + "delete/").status_code == 403
    assert PromotionPolicy.objects.get().tag_template == "" and PromotionPolicy.objects.count() == 1


def test_organization_member_with_delegated_manage_policies_may_manage(make_user, as_user):
    olga, dora = make_user("olga"), make_user("dora")
    org = tenancy.create_organization(name="acme", owner=olga)
    tenancy.set_organization_member(organization=org, user=dora, role="member", actor=olga)
    web = create_repository(namespace=org.namespace, name="web", actor=olga)
    prod = create_repository(namespace=org.namespace, name="prod", actor=olga)
    for repository in (web, prod):
        tenancy.grant_repository_role(repository=repository, grantee=Grantee(user=dora), role="write", actor=olga)
    assert as_user(dora).get("/acme/web/promotions/new/").status_code == 403
    tenancy.grant_namespace_role(namespace=org.namespace, grantee=Grantee(user=dora), role="manage_policies",
                                 actor=None)  # type: ignore[arg-type]
    response = as_user(dora).post("/acme/web/promotions/new/", form_data([ROW], target="acme/prod"))
    assert response.status_code == 302
    assert PromotionPolicy.objects.get().author == dora


# -- editing, dry run, run now, delete -----------------------------------------------------------

def test_edit_shows_current_rules_and_saving_resumes_a_paused_policy(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=[
        {"field": "tag_name", "operator": "one_of", "values": ["a", "b"]}], tag_template="%n-x")
    PromotionPolicy.objects.filter(pk=policy.pk).update(paused_reason="Author lost write.")
    url = f"/alice/dev/promotions/{policy.pk}/edit/"
    page = as_user(alice).get(url)
    html = page.content.decode()
    assert 'value="a, b"' in html and 'value="%n-x"' in html and "Paused: Author lost write." in html
    assert page.context["formset"].total_form_count() == 2  # the rule and one blank row
    response = as_user(alice).post(url, form_data([ROW], template="%n-y", enabled=False))
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.tag_template, policy.enabled, policy.paused_reason) == ("%n-y", False, "")
    assert [rule.values for rule in policy.rules.all()] == [["stable"]]
    assert as_user(alice).get("/alice/dev/promotions/999/edit/").status_code == 404


def test_dry_run_shows_each_rule_and_changes_nothing(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n-qa")
    push_image(dev, "1.0-beta", actor=alice)
    url = f"/alice/dev/promotions/{policy.pk}/dry-run/"
    form = as_user(alice).get(url)
    assert form.status_code == 200 and '<option value="1.0-beta">' in form.content.decode()
    result = as_user(alice).get(url, {"tag": "1.0-beta"})
    html = result.content.decode()
    assert result.context["result"].outcome == "no_match"
    assert "Tag &#x27;1.0-beta&#x27; does not end with &#x27;stable&#x27;." in html and "no match" in html
    missing = as_user(alice).get(url, {"tag": "nope"})
    assert "There is no tag “nope” in alice/dev." in str(missing.context["form"].errors["tag"])
    assert not Promotion.objects.exists() and not Tag.objects.filter(repository=qa).exists()


def test_run_now_promotes_existing_tags_and_reports_counts(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    push_image(dev, "2.0-stable", actor=alice)
    push_image(dev, "2.0-beta", actor=alice)
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE)
    response = as_user(alice).post(f"/alice/dev/promotions/{policy.pk}/run/", follow=True)
    assert f"Policy #{policy.pk} ran on the existing tags: 1 succeeded." in response.content.decode()
    assert list(Tag.objects.filter(repository=qa).values_list("name", flat=True)) == ["2.0-stable"]
    PromotionPolicy.objects.filter(pk=policy.pk).update(enabled=False)
    disabled = as_user(alice).post(f"/alice/dev/promotions/{policy.pk}/run/", follow=True)
    assert "did not run: The policy is disabled" in disabled.content.decode()
    assert as_user(alice).get(f"/alice/dev/promotions/{policy.pk}/run/").status_code == 405


def test_delete_asks_then_deletes_and_keeps_the_history(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE)
    push_image(dev, "3.0-stable", actor=alice)
    url = f"/alice/dev/promotions/{policy.pk}/delete/"
    assert "Delete promotion policy" in as_user(alice).get(url).content.decode()
    assert PromotionPolicy.objects.exists()
    assert as_user(alice).post(url)["Location"] == TAB
    assert not PromotionPolicy.objects.exists()
    html = as_user(alice).get(TAB).content.decode()
    assert "3.0-stable" in html and ">deleted<" in html


# -- history and the Tags tab --------------------------------------------------------------------

def test_history_shows_status_reason_trigger_and_links_and_filters(repos, as_user, make_user):
    alice, rita, _sam, dev, qa = repos
    services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n-qa")
    push_image(dev, "4.0-stable", actor=alice)
    push_image(dev, "4.0-beta", actor=alice)
    bob = make_user("bob")
    hidden = create_repository(namespace=bob.namespace, name="hidden", actor=bob)
    tenancy.grant_repository_role(repository=hidden, grantee=Grantee(user=alice), role="write", actor=bob)
    services.save_policy(author=alice, source=dev, target=hidden, rules=STABLE)
    tenancy.revoke_repository_role(repository=hidden, grantee=Grantee(user=alice), actor=bob)
    push_image(dev, "5.0-stable", actor=alice)

    page = as_user(rita).get(TAB)
    html = page.content.decode()
    statuses = [(row.promotion.source_tag, row.promotion.status) for row in page.context["history"]]
    assert sorted(statuses) == [("4.0-stable", "succeeded"), ("5.0-stable", "failed"), ("5.0-stable", "succeeded")]
    assert "4.0-beta" not in html  # not matching: nothing recorded
    assert ":<strong>4.0-stable-qa</strong>" in html and "Tag pushed" in html
    assert 'href="/alice/qa/"' not in html  # rita cannot read alice/qa: no link
    assert 'href="/alice/qa/"' in as_user(alice).get(TAB).content.decode()
    assert "may no longer push to bob/hidden" in html
    assert 'href="/alice/dev/tags/4.0-stable/"' in html
    assert 'href="/alice/qa/tags/4.0-stable-qa/"' in as_user(alice).get(TAB).content.decode()
    failed = as_user(rita).get(TAB, {"status": "failed"})
    assert [row.promotion.status for row in failed.context["history"]] == ["failed"]
    by_tag = as_user(rita).get(TAB, {"tag": "4.0-stable"})
    assert [row.promotion.source_tag for row in by_tag.context["history"]] == ["4.0-stable"]
    assert "No promotion matches" in as_user(rita).get(TAB, {"tag": "zzz"}).content.decode()


def test_history_paginates_keeping_filters(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=[])
    source = push_image(dev, "x", actor=alice)
    Promotion.objects.bulk_create([
        Promotion(policy=policy, source_repository=dev, source_tag=f"t{index}", digest=source.digest,
                  target_repository=qa, target_repository_name="alice/qa", target_tag=f"t{index}",
                  status="succeeded") for index in range(30)])
    page = as_user(alice).get(TAB, {"status": "succeeded"})
    assert len(page.context["history"]) == 25
    assert "?status=succeeded&amp;page=2" in page.content.decode()
    assert len(as_user(alice).get(TAB, {"status": "succeeded", "page": 2}).context["history"]) == 6


def test_promoted_tag_shows_where_it_came_from_in_the_target_tags_tab(repos, as_user):
    alice, _rita, _sam, dev, qa = repos
    policy = services.save_policy(author=alice, source=dev, target=qa, rules=STABLE, tag_template="%n-qa")
    push_image(dev, "1.4-stable", actor=alice)
    tag = Tag.objects.get(repository=qa)
    assert tag.origin == "promotion" and tag.origin_detail["policy_id"] == policy.pk
    html = as_user(alice).get("/alice/qa/").content.decode()
    assert "1.4-stable-qa" in html
    text = " ".join(html.replace("</a>", "").split())
    assert "promoted from " in text
    assert f":1.4-stable by policy #{policy.pk}" in _strip_tags(text)


def _strip_tags(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)
