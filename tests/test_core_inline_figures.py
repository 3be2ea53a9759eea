"""Inline figures as ipykernel shows them (matplotlib-inline's flush at each cell's end), and per cell when cells
overlap: a `# task` cell shows its own figures, a background task's figures land in the cell that started it.

Runs with the real matplotlib where it is installed; inside Pyodide (tests/pyodide) with the stand-in package in
tests/standins (the Pyodide distribution's matplotlib cannot be shipped offline), which exercises the same path:
matplotlib-inline's backend module, its figure managers, IPython's figure formatters and the kernel's flush.
`CK_MATPLOTLIB_STANDIN=1` runs them with the stand-in on CPython too (this file alone: a process imports one).
"""

import importlib.util
import os
import sys
from pathlib import Path

import anyio
import pytest

from memory_client import of_type

if os.environ.get("CK_MATPLOTLIB_STANDIN") or importlib.util.find_spec("matplotlib") is None:
    sys.path.insert(0, str(Path(__file__).parent / "standins"))

pytestmark = pytest.mark.anyio

SETUP = "import matplotlib.pyplot as plt\nimport anyio"


@pytest.fixture(autouse=True)
def no_figures_left_over():
    """pyplot's figures live in the process, and the kernels of these tests share it."""
    yield
    import sys

    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")


def figures(outputs, msg_type="display_data"):
    """The image types of each figure displayed (figures are the displays with an image)."""
    return [
        sorted(k for k in m["content"]["data"] if k.startswith("image/"))
        for m in of_type(outputs, msg_type)
        if any(k.startswith("image/") for k in m["content"]["data"])
    ]


async def setup(client) -> None:
    reply, _ = await client.execute(SETUP)
    assert reply["content"]["status"] == "ok", reply


async def test_a_plot_is_shown_under_its_cell(client):
    await setup(client)
    reply, outputs = await client.execute("plt.plot([1, 2]);")
    assert reply["content"]["status"] == "ok"
    assert figures(outputs) == [["image/png"]]
    reply, outputs = await client.execute("plt.hist([1, 2, 2]);")
    assert figures(outputs) == [["image/png"]]


async def test_a_later_show_shows_only_that_cells_figure(client):
    await setup(client)
    await client.execute("plt.plot([1, 2]);")
    _, outputs = await client.execute("fig, ax = plt.subplots()\nax.plot([3, 1])\nplt.show()")
    assert figures(outputs) == [["image/png"]]


async def test_a_figure_as_the_result_is_shown_twice_as_with_ipykernel(client):
    await setup(client)
    _, outputs = await client.execute("fig = plt.figure()\nplt.plot([1])\nfig")
    assert figures(outputs, "execute_result") == [["image/png"]]
    assert figures(outputs) == [["image/png"]]


async def test_figure_format_svg(client):
    await setup(client)
    await client.execute("%config InlineBackend.figure_format = 'svg'")
    _, outputs = await client.execute("plt.plot([0, 1]);")
    assert figures(outputs) == [["image/svg+xml"]]


async def test_figures_kept_open_when_close_figures_is_off(client):
    await setup(client)
    await client.execute("%config InlineBackend.close_figures = False")
    _, outputs = await client.execute("kept = plt.figure()\nplt.plot([1, 1]);")
    assert figures(outputs) == [["image/png"]]
    _, outputs = await client.execute("plt.gca().plot([2, 2]);\nplt.show()")
    assert figures(outputs) == [["image/png"]]
    _, outputs = await client.execute("len(plt.get_fignums())")
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "1"


async def test_a_task_cell_shows_only_its_own_figure_while_another_cell_draws(client):
    await setup(client)
    slow = client.send("shell", "execute_request", {
        "code": "slow_fig = plt.figure()\nplt.plot([1, 2, 3])\nawait anyio.sleep(1.5)\nplt.title('slow');"
    })
    await client.wait_for(lambda c, m: m["msg_type"] == "execute_input" and m["parent_header"]["msg_id"] == slow)
    await anyio.sleep(0.3)  # the slow cell's figure exists now
    reply, outputs = await client.execute("# task\nplt.figure()\nplt.bar(['a'], [1]);")
    assert reply["content"]["status"] == "ok"
    assert figures(outputs) == [["image/png"]]  # its own, not the slow cell's
    await client.reply(slow)
    await client.idle(slow)
    assert figures(client.children(slow)) == [["image/png"]]
    reply, outputs = await client.execute("len(plt.get_fignums())")
    assert of_type(outputs, "execute_result")[0]["content"]["data"]["text/plain"] == "0"


async def test_a_background_tasks_figure_lands_in_the_cell_that_started_it(client):
    await setup(client)
    code = (
        "async def draw_later():\n"
        "    await anyio.sleep(0.5)\n"
        "    plt.figure()\n"
        "    plt.plot([4, 2])\n"
        "get_ipython().kernel.background.spawn(draw_later)\n"
    )
    reply, outputs = await client.execute(code)
    starter = reply["parent_header"]["msg_id"]
    assert figures(outputs) == []
    other, _ = await client.execute("await anyio.sleep(1)\n'another cell'")
    assert figures(client.children(other["parent_header"]["msg_id"])) == []
    await client.wait_for(
        lambda c, m: m["msg_type"] == "display_data" and m["parent_header"].get("msg_id") == starter, timeout=10
    )
    assert figures(client.children(starter)) == [["image/png"]]
