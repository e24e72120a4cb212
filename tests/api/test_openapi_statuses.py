"""Every operation documents the statuses it can answer (issue 12 #7): 401 and 403 where a
login and a role are needed, 404 where an object is named in the path, 409 on staff writes,
400 where a body is read (one that cannot be parsed), 503 everywhere but liveness."""

from __future__ import annotations

from api.app import create_app
from api.deps import declared_actions
from domain.permissions import MATRIX, NOT_STAFF
from loanops.settings import Settings
from tests.api.test_permissions import _routes


def test_every_operation_documents_the_statuses_it_answers() -> None:
    app = create_app(Settings(environment="test"))
    paths = app.openapi()["paths"]
    problems = []
    for route in _routes(app):
        if route.dependant is None:
            continue
        actions = declared_actions(route.dependant)
        staff = not any(MATRIX[a] & NOT_STAFF for a in actions)
        for method in route.methods:
            documented = set(paths[route.path][method.lower()]["responses"])
            expected = set()
            if staff:
                expected |= {"401", "403"}
                if method in {"POST", "PUT", "PATCH", "DELETE"}:
                    expected.add("409")
            if "{" in route.path:
                expected.add("404")
            if route.dependant.body_params:
                expected.add("400")
            if route.path != "/healthz":
                expected.add("503")
            if missing := expected - documented:
                problems.append(f"{method} {route.path}: {sorted(missing)} not documented")
    assert problems == []
    assert set(paths["/healthz"]["get"]["responses"]) == {"200"}
