import pytest

from tests.conftest import ApiClient

pytestmark = pytest.mark.anyio


async def test_healthz(api: ApiClient) -> None:
    response = await api.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
