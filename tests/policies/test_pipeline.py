"""The pipeline view: the promotion and mirror graph computed by `policies.pipeline` (chain,
cycle, namespace template targets, hidden private repositories, last outcomes) and drawn as an
inline SVG on the namespace page and the Promotions tab."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from registry_policies.integrations.models import Integration
from registry_policies.mirroring.models import MirrorRun, PushMirrorPolicy
from registry_policies.policies import services
from registry_policies.policies.models import Promotion
from registry_policies.policies.pipeline import MAX_NODES, pipeline_graph
from registry_policies.repositories.models import Repository
from registry_policies.repositories.services import create_repository
from registry_policies.tenancy import services as tenancy
from registry_policies.web.pipeline_svg import layout

pytestmark = pytest.mark.django_db

STABLE = [{"field": "tag_name", "operator": "ends_with", "values": ["-stable"]}]


def repo(namespace, name: str, actor: User, visibility: str = "public") -> Repository:
    return create_repository(namespace=namespace, name=name, actor=actor, visibility=visibility)


@pytest.fixture
def chain(make_user):
    """dev/website → qa/website → prod/website → registry.example.com/team/website, all public,
    plus the private prod/hidden promoted from qa/website."""
    olga = make_user("olga", is_superuser=True)
    spaces = {name: tenancy.create_organization(name=name, owner=olga).namespace for name in ("dev", "qa", "prod")}
    dev, qa, prod = (repo(spaces[n], "website", olga) for n in ("dev", "qa", "prod"))
    hidden = repo(spaces["prod"], "hidden", olga, visibility="private")
    p1 = services.save_policy(author=olga, source=dev, target=qa, rules=STABLE)
    p2 = services.save_policy(author=olga, source=qa, target=prod, rules=[])
    p3 = services.save_policy(author=olga, source=qa, target=hidden, rules=[])
    integration = Integration.objects.create(namespace=spaces["prod"], name="remote",
                                             url="https://registry.example.com", username="bot")
    mirror = PushMirrorPolicy.objects.create(source=prod, integration=integration, remote_repository="team/website",
                                             rules=STABLE, author=olga)
    return {"olga": olga, "spaces": spaces, "dev": dev, "qa": qa, "prod": prod, "hidden": hidden,
            "policies": (p1, p2, p3), "mirror": mirror}


def labels(graph) -> set[str]:
    return {node.label for node in graph.nodes.values()}


def edge_names(graph) -> set[tuple[str, str]]:
    return {(graph.nodes[e.source].label, graph.nodes[e.target].label) for e in graph.edges}


def test_chain_is_followed_both_ways_to_the_remote_with_rules_and_last_outcomes(chain):
    p1, p2, _ = chain["policies"]
    dev, qa = chain["dev"], chain["qa"]
    for status in ("failed", "succeeded"):  # the newest one counts
        Promotion.objects.create(policy=p1, source_repository=dev, source_tag="1-stable", digest="sha256:" + "a" * 64,
                                 target_repository=qa, target_repository_name="qa/website", status=status)
    MirrorRun.objects.create(direction="push", push_policy=chain["mirror"], repository=chain["prod"],
                             remote="registry.example.com/team/website", status="failed")
    graph = pipeline_graph(chain["olga"], start=[qa])
    assert labels(graph) == {"dev/website", "qa/website", "prod/website", "prod/hidden",
                             "registry.example.com/team/website"}
    assert edge_names(graph) == {("dev/website", "qa/website"), ("qa/website", "prod/website"),
                                 ("qa/website", "prod/hidden"), ("prod/website", "registry.example.com/team/website")}
    by_policy = {(e.kind, e.policy_id): e for e in graph.edges}
    assert by_policy[("promotion", p1.pk)].outcome == "succeeded"
    assert by_policy[("promotion", p1.pk)].rules == ("tag name ends with '-stable'",)
    assert by_policy[("promotion", p2.pk)].outcome == "none"
    assert by_policy[("promotion", p2.pk)].rules == ("every tag",)
    assert by_policy[("mirror", chain["mirror"].pk)].outcome == "failed"
    assert not graph.truncated
    placed = {p.node.label: p for p in layout(graph).nodes}
    assert placed["dev/website"].x < placed["qa/website"].x < placed["prod/website"].x < placed[
        "registry.example.com/team/website"].x


def test_queries_do_not_grow_with_the_chain(chain, make_user):
    olga = chain["olga"]
    with CaptureQueriesContext(connection) as short:
        pipeline_graph(olga, start=[chain["dev"]])
    previous = chain["prod"]
    for index in range(6):  # six more hops in the same namespaces
        nxt = repo(chain["spaces"]["prod"], f"stage{index}", olga)
        services.save_policy(author=olga, source=previous, target=nxt, rules=[])
        previous = nxt
    with CaptureQueriesContext(connection) as long:
        graph = pipeline_graph(olga, start=[chain["dev"]])
    assert len(graph.nodes) == 5 + 6
    # One batch per breadth-first layer, not per node or edge.
    assert len(long.captured_queries) <= len(short.captured_queries) + 6 * 6


def test_cycle_is_drawn_once_and_laid_out(make_user):
    olga = make_user("olga", is_superuser=True)
    ns = olga.namespace
    a, b = repo(ns, "a", olga), repo(ns, "b", olga)
    services.save_policy(author=olga, source=a, target=b, rules=[])
    services.save_policy(author=olga, source=b, target=a, rules=[])
    graph = pipeline_graph(olga, start=[b])
    assert edge_names(graph) == {("olga/a", "olga/b"), ("olga/b", "olga/a")}
    drawn = layout(graph)
    assert len(drawn.nodes) == 2 and len(drawn.edges) == 2
    assert {n.x for n in drawn.nodes} == {20, 440}  # two columns despite the cycle


def test_namespace_template_target_is_resolved_per_source_and_found_from_the_target(make_user):
    olga = make_user("olga", is_superuser=True)
    dev = tenancy.create_organization(name="dev", owner=olga).namespace
    qa = tenancy.create_organization(name="qa", owner=olga).namespace
    policy = services.save_policy(author=olga, scope="namespace", namespace=dev, target=None,
                                  target_template="qa/{name}", rules=STABLE, repository_filter="web.*")
    repo(dev, "website", olga), repo(dev, "api", olga), repo(dev, "webshop", olga)
    repo(qa, "website", olga), repo(qa, "api", olga)
    from_target = pipeline_graph(olga, start=[Repository.objects.get(namespace=qa, name="website")])
    assert edge_names(from_target) == {("dev/website", "qa/website")}
    assert [e.scope for e in from_target.edges] == ["namespace"]
    assert from_target.edges[0].policy_id == policy.pk
    # From the namespace: dev/api is filtered out; dev/webshop's target qa/webshop does not exist.
    whole = pipeline_graph(olga, start=list(Repository.objects.filter(namespace=dev)))
    assert edge_names(whole) == {("dev/website", "qa/website")}


def test_private_repository_the_viewer_cannot_read_is_not_in_the_graph(chain, make_user):
    sam = make_user("sam")
    graph = pipeline_graph(sam, start=[chain["qa"]])
    assert "prod/hidden" not in labels(graph)
    assert ("qa/website", "prod/hidden") not in edge_names(graph)
    assert ("qa/website", "prod/website") in edge_names(graph)
    # Starting from the hidden repository shows nothing at all.
    assert pipeline_graph(sam, start=[chain["hidden"]]).nodes == {}


def test_graph_is_bounded(make_user):
    olga = make_user("olga", is_superuser=True)
    hub = repo(olga.namespace, "hub", olga)
    for index in range(MAX_NODES + 5):
        services.save_policy(author=olga, source=hub, target=repo(olga.namespace, f"t{index:02d}", olga), rules=[])
    graph = pipeline_graph(olga, start=[hub])
    assert len(graph.nodes) == MAX_NODES
    assert graph.truncated


def svg_of(html: str) -> str:
    found = re.search(r"<svg id=\"pipeline-svg\".*?</svg>", html, re.S)
    assert found, "no pipeline SVG on the page"
    return found.group(0)


def test_promotions_tab_and_namespace_page_show_the_svg_with_links(chain, client, make_user):
    client.force_login(chain["olga"])
    page = client.get("/qa/website/promotions/")
    assert page.status_code == 200
    svg = svg_of(page.content.decode())
    for name in ("dev/website", "prod/website", "prod/hidden"):
        assert f'href="/{name}/"' in svg
    assert "registry.example.com/team/website" in svg
    assert "tag name ends with &#x27;-stable&#x27;" in svg
    namespace_page = client.get("/dev/")
    assert namespace_page.status_code == 200
    assert 'href="/qa/website/"' in svg_of(namespace_page.content.decode())


def test_page_does_not_leak_a_private_name_to_another_viewer(chain, client, make_user):
    client.force_login(make_user("sam"))
    page = client.get("/qa/website/promotions/")
    assert page.status_code == 200
    html = page.content.decode()
    svg = svg_of(html)
    assert 'href="/prod/website/"' in svg
    assert "hidden" not in svg  # (the policy table above lists targets as before; not this view's business)
    # No pipeline SVG on a page without policies.
    client.force_login(chain["olga"])
    lonely = repo(chain["spaces"]["dev"], "lonely", chain["olga"])
    html = client.get(f"/{lonely.full_name}/promotions/").content.decode()
    assert 'id="pipeline-svg"' not in html
    assert "No promotion or mirror policies connect dev/lonely" in html
