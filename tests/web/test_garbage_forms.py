"""Whatever a form carries — NULs, odd Unicode, huge or missing values — every action
of the dashboard answers with a page that says what was wrong, never a server error."""

from __future__ import annotations

from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from consultant.web.app import create_app
from tests.web.conftest import make_coder, new_case, sign_in

FIELDS = ("text", "to", "reason", "override", "saved", "seen", "then", "q", "code", "kind")


def case_actions() -> list[str]:
    """Every POST route of one case, e.g. ``/tickets/{number}/answer``."""
    routes = []
    for included in create_app().routes:
        routes.extend(getattr(getattr(included, "original_router", None), "routes", []))
    return sorted(
        route.path
        for route in routes
        if isinstance(route, APIRoute)
        and "POST" in route.methods
        and route.path.startswith("/tickets/{number}/")
    )


def test_garbage_in_any_case_action_gives_a_page_not_an_error(client: TestClient) -> None:
    make_coder("lead@desk.example", role="lead")
    number = new_case()
    csrf = sign_in(client, "lead@desk.example")
    actions = case_actions()
    assert len(actions) >= 8  # claim, release, status, assign, note, answer, preview, …

    @settings(max_examples=60, deadline=None)
    @example(action="/tickets/{number}/assign", form={"to": "\x00"})
    @example(action="/tickets/{number}/status", form={"to": "\x00"})
    @example(action="/tickets/{number}/refund", form={"reason": "\x00why"})
    @example(action="/tickets/{number}/release-held", form={"override": "\x00"})
    @example(action="/tickets/{number}/saved-answer", form={"saved": "x"})
    @given(
        action=st.sampled_from(actions),
        form=st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=200), max_size=4),
    )
    def any_form(action: str, form: dict[str, str]) -> None:
        response = client.post(action.replace("{number}", str(number)), data={**form, "csrf": csrf})
        assert response.status_code < 500, (action, form, response.text[-2000:])

    any_form()
