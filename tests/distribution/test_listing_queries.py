"""`tags/list` costs one query whatever the page, in-process (the token check needs none)."""
import pytest

from registry_policies.distribution.auth import issue_access_token
from registry_policies.repositories.services import create_repository
from tests.factories import push_image

pytestmark = pytest.mark.django_db


def _bearer(user, name: str) -> str:
    token, _issued, _expires = issue_access_token(user=user, access=[
        {"type": "repository", "name": name, "actions": ["pull"]}])
    return f"Bearer {token}"


@pytest.mark.parametrize("query", ["", "?n=2", "?n=2&last=t03", "?last=t09", "?n=0"])
def test_tags_list_is_one_query(make_user, client, django_assert_num_queries, query):
    alice = make_user("alice")
    repository = create_repository(namespace=alice.namespace, name="app", actor=alice)
    for index in range(10):
        push_image(repository, f"t{index:02d}", actor=alice)
    with django_assert_num_queries(1):
        response = client.get(f"/v2/alice/app/tags/list{query}", HTTP_AUTHORIZATION=_bearer(alice, "alice/app"))
    assert response.status_code == 200
    expected = {"": [f"t{i:02d}" for i in range(10)], "?n=2": ["t00", "t01"], "?n=2&last=t03": ["t04", "t05"],
                "?last=t09": [], "?n=0": []}[query]
    assert response.json() == {"name": "alice/app", "tags": expected}


def test_empty_repository_lists_no_tags_and_unknown_one_is_name_unknown(make_user, client):
    alice = make_user("alice")
    create_repository(namespace=alice.namespace, name="empty", actor=alice)
    empty = client.get("/v2/alice/empty/tags/list", HTTP_AUTHORIZATION=_bearer(alice, "alice/empty"))
    assert (empty.status_code, empty.json()) == (200, {"name": "alice/empty", "tags": []})
    missing = client.get("/v2/alice/gone/tags/list", HTTP_AUTHORIZATION=_bearer(alice, "alice/gone"))
    assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == "NAME_UNKNOWN"
