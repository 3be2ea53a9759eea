"""GUI event loops (CPython only): `%gui tk` keeps Tk's events flowing while cells await, on a virtual X display."""

import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from memory_client import stdout_of

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    assert xvfb, "Xvfb is needed for the GUI tests; scripts/test.sh installs it (apt-get install xvfb)"
    name = ":97"
    proc = subprocess.Popen([xvfb, name, "-nolisten", "tcp"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = name
    try:
        yield name
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
        proc.terminate()
        proc.wait(5)


async def test_tk_events_are_pumped_while_a_cell_awaits(client, display):
    reply, _ = await client.execute("%gui tk")
    assert reply["content"]["status"] == "ok", reply["content"]
    code = (
        "import tkinter, anyio\n"
        "root = tkinter.Tk()\n"
        "fired = []\n"
        "root.after(50, lambda: fired.append('after'))\n"
        "await anyio.sleep(0.5)\n"
        "print(fired)\n"
        "root.destroy()\n"
    )
    reply, outputs = await client.execute(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    assert stdout_of(outputs) == "['after']\n"
    reply, _ = await client.execute("%gui")  # back to none: stops pumping
    assert reply["content"]["status"] == "ok"
    assert client.kernel.gui.active is None


async def test_unknown_gui_is_a_clear_error(client, caplog):
    # IPython's %gui logs the failure (logging.error) instead of raising; in a kernel process that lands in the
    # cell's stderr through logging's last-resort handler.
    await client.execute("%gui nosuchtoolkit")
    assert "Invalid GUI request 'nosuchtoolkit' (unknown name); valid ones are: tk, qt" in caplog.text
    assert client.kernel.gui.active is None
