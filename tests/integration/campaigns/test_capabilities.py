"""A workflow may only call what it declares: the client holds it to its declaration.

The scopes kbridge asks a key for come from the workflows' declarations
(:mod:`kbridge.api.capabilities`); a workflow calling anything else would
meet a 403 on a least-privilege key. These run real workflows against the
emulator and prove that such a call fails loudly instead.
"""

from __future__ import annotations

import pytest

from kbridge.api import AsyncClient
from kbridge.api.capabilities import (
    PRIVACY_ACCESS,
    TEMPLATE_RENDER,
    UndeclaredOperationWarning,
    Workflow,
    active_workflows,
)
from kbridge.campaigns import push_template, render_template

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def test_a_workflow_calling_an_operation_its_capability_lacks_fails(
    client: AsyncClient,
) -> None:
    # push_template calls get_templates/create_template: a key planned for privacy-access
    # (the outer workflow) would not hold templates:write, so the call must not pass quietly
    with pytest.warns(UndeclaredOperationWarning) as caught, PRIVACY_ACCESS.calls():
        await push_template(client, name="Undeclared", html="<p>x</p>")
    said = [str(w.message) for w in caught]
    assert any("'privacy-access' called 'get_templates'" in m for m in said), said
    assert any("'privacy-access' called 'create_template'" in m for m in said), said


async def test_a_direct_undeclared_call_fails_and_a_declared_one_passes(
    client: AsyncClient,
) -> None:
    narrow = Workflow.of("test.read-templates", "get_templates")
    with narrow.calls():
        assert isinstance(await client.templates.get_templates(), list)
        with pytest.warns(UndeclaredOperationWarning, match="'create_list'"):
            await client.lists.create_list(name="not declared")
    assert active_workflows() == ()


async def test_declared_workflows_run_clean(client: AsyncClient) -> None:
    # the suite runs with filterwarnings=error: an undeclared call here would raise
    pushed = await push_template(client, name="Declared", html="<p>{{ first_name }}</p>")
    done = await render_template(client, pushed.id, {"first_name": "Ada"})
    assert done.html is not None
    assert "Ada" in done.html
    assert "render_template" in TEMPLATE_RENDER.operations
