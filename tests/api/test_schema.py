"""The OpenAPI schema and the Swagger UI."""

import pytest

pytestmark = pytest.mark.django_db

PATHS = [
    "/api/v1/me/",
    "/api/v1/users/",
    "/api/v1/users/{username}/",
    "/api/v1/tokens/",
    "/api/v1/tokens/{id}/",
    "/api/v1/organizations/",
    "/api/v1/organizations/{org}/",
    "/api/v1/organizations/{org}/members/",
    "/api/v1/organizations/{org}/members/{username}/",
    "/api/v1/organizations/{org}/teams/",
    "/api/v1/organizations/{org}/teams/{team}/",
    "/api/v1/organizations/{org}/teams/{team}/members/",
    "/api/v1/organizations/{org}/teams/{team}/members/{username}/",
    "/api/v1/namespaces/",
    "/api/v1/namespaces/{namespace}/",
    "/api/v1/namespaces/{namespace}/permissions/",
    "/api/v1/repositories/",
    "/api/v1/repositories/{namespace}/{name}/",
    "/api/v1/repositories/{namespace}/{name}/permissions/",
    "/api/v1/audit-events/",
]


def test_schema_lists_every_api_path_with_both_authentication_schemes(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert set(PATHS) <= set(schema["paths"])
    assert set(schema["paths"]["/api/v1/repositories/{namespace}/{name}/"]) >= {"get", "patch", "delete"}
    schemes = schema["components"]["securitySchemes"]
    assert schemes["personalAccessToken"]["scheme"] == "bearer"
    assert schemes["basic"]["scheme"] == "basic"
    create_token = schema["paths"]["/api/v1/tokens/"]["post"]["responses"]["201"]
    assert create_token["content"]["application/json"]["schema"]["$ref"].endswith("/TokenCreated")


def test_schema_generates_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    SchemaGenerator().get_schema(request=None, public=True)
    assert not GENERATOR_STATS._warn_cache, list(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, list(GENERATOR_STATS._error_cache)


def test_swagger_ui_renders(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
