import pytest

from memory_client import of_type, stdout_of

pytestmark = pytest.mark.anyio


async def test_execute_result_and_stream(client):
    reply, outputs = await client.execute("print('hi')\n1+1")
    assert reply["content"]["status"] == "ok", reply
    assert stdout_of(outputs) == "hi\n"
    [result] = of_type(outputs, "execute_result")
    assert result["content"]["data"]["text/plain"] == "2"
