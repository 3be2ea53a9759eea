"""How fast an interrupt ends a cell on a cross-origin isolated page (issue 20: blocking code <= 100 ms).

While a cell's step runs synchronously the worker publishes a busy flag in the shared interrupt buffer
(ts/src/worker/interrupt.ts busyFlag), so the page sets Pyodide's interrupt buffer at once instead of first waiting
INTERRUPT_ACK_MS (250 ms) for the worker to answer. Suspended (time.sleep) and awaiting cells leave the flag at 0 and
take the soft path. Timed in the page through the kernel connection, from `kernel.interrupt()` to the execute reply.
"""

from __future__ import annotations

from typing import Any

import pytest
from lite import Notebook, new_notebook, open_lab

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

#: Well under the old fixed wait (250 ms before the interrupt buffer was even set), with room for a busy machine.
FAST_MS = 200.0

#: Runs CODE, waits until it printed "go" and then SETTLE ms, interrupts; returns the time to the execute reply.
_INTERRUPT = """
const {code, settleMs, stopOnError} = arg;
let go;
const started = new Promise(res => { go = res; });
const future = kernel.requestExecute({code, silent: false, store_history: false, stop_on_error: stopOnError});
let text = '';
future.onIOPub = msg => {
  if (msg.header.msg_type === 'stream') text += msg.content.text;
  if (msg.header.msg_type === 'stream' && msg.content.text.includes('go')) go();
};
await Promise.race([started, new Promise((_, rej) => setTimeout(() => rej(new Error('no "go"')), 60000))]);
await new Promise(res => setTimeout(res, settleMs));
const t0 = performance.now();
await kernel.interrupt();
const reply = await Promise.race([future.done, new Promise(res => setTimeout(() => res(null), 30000))]);
if (reply === null) return {ms: null};
return {ms: performance.now() - t0, status: reply.content.status, ename: reply.content.ename, text};
"""

_ALIVE = """
const future = kernel.requestExecute({code: '40 + 2', silent: false, store_history: false});
let value = null;
future.onIOPub = msg => { if (msg.header.msg_type === 'execute_result') value = msg.content.data['text/plain']; };
const reply = await future.done;
return [reply.content.status, value];
"""


def _interrupt(nb: Notebook, code: str, settle_ms: int = 300, stop_on_error: bool = False) -> dict[str, Any]:
    got = nb.js(_INTERRUPT, {"code": "print('go', flush=True)\n" + code, "settleMs": settle_ms,
                             "stopOnError": stop_on_error})
    assert got["ms"] is not None, f"no reply after the interrupt of {code!r}"
    assert nb.js(_ALIVE) == ["ok", "42"], f"the kernel does not answer after the interrupt of {code!r}"
    return got


def test_interrupt_latency_when_isolated(page: Any, base_url: str) -> None:
    open_lab(page, base_url)
    nb = new_notebook(page, "interrupt-latency.ipynb", ["import asyncio, time"])
    assert page.evaluate("crossOriginIsolated") is True
    nb.run_and_wait(0, 60)
    blocking = {
        "while True": "while True:\n    pass",
        "pure-Python loop": "t = 0\nfor i in range(10**10):\n    t += i * i",
    }
    for name, code in blocking.items():
        times = []
        for stop_on_error in (False, True, False):  # JupyterLab's own run sends stop_on_error=True
            got = _interrupt(nb, code, stop_on_error=stop_on_error)
            assert (got["status"], got["ename"]) == ("error", "KeyboardInterrupt"), (name, got)
            times.append(got["ms"])
        assert min(times) < FAST_MS, f"{name}: interrupt to reply took {times} ms (want < {FAST_MS})"
    # The worker is free while a cell awaits or its stack is suspended: the soft path ends them, also fast.
    for name, code in {"await": "await asyncio.sleep(100)", "time.sleep": "time.sleep(100)"}.items():
        got = _interrupt(nb, code)
        assert got["status"] == "error", (name, got)
        assert got["ms"] < FAST_MS * 5, (name, got)
    # A cell that keeps going on and off the CPU, interrupted at varied moments: always a reply, never a
    # KeyboardInterrupt in the kernel's own code (the kernel answers after each).
    flip = "\n".join(
        ["while True:", "    sum(range(20000))", "    await asyncio.sleep(0)", "    sum(range(20000))",
         "    time.sleep(0.002)"]
    )
    for settle in (0, 7, 23, 50, 101):
        got = _interrupt(nb, flip, settle)
        assert got["status"] == "error", (settle, got)


#: N interrupts of `while True: pass`, each SETTLE ms after its "go": the replies' times, null for one that never came.
_MANY = """
const {n, settleMs} = arg;
const times = [];
for (let i = 0; i < n; i++) {
  let go;
  const started = new Promise(res => { go = res; });
  const future = kernel.requestExecute({code: "print('go', flush=True)\\nwhile True:\\n    pass",
                                        store_history: false, stop_on_error: false});
  future.onIOPub = msg => { if (msg.header.msg_type === 'stream') go(); };
  await started;
  await new Promise(res => setTimeout(res, settleMs));
  const t0 = performance.now();
  await kernel.interrupt();
  const reply = await Promise.race([future.done, new Promise(res => setTimeout(() => res(null), 5000))]);
  times.push(reply === null ? null : Math.round(performance.now() - t0));
  if (reply === null) break;
}
return times;
"""


def test_no_interrupt_of_blocking_code_is_lost(page: Any, base_url: str) -> None:
    """Pyodide's signal check reads the interrupt buffer and clears it in two steps, so a signal the page sets
    between them was wiped unseen: the cell ran on, busy, with no reply (2 of 150 interrupts, measured). The page
    now sets it again unless Python shows it took it; and a cell that catches KeyboardInterrupt and goes on must
    not get a second one from that."""
    open_lab(page, base_url)
    nb = new_notebook(page, "interrupt-many.ipynb", ["import time"])
    nb.run_and_wait(0, 60)
    times = nb.js(_MANY, {"n": 200, "settleMs": 20})
    assert None not in times and len(times) == 200, f"an interrupt got no reply: {times}"
    assert nb.js(_ALIVE) == ["ok", "42"]
    caught = "\n".join(
        ["try:", "    while True:", "        pass", "except KeyboardInterrupt:", "    print('caught', flush=True)",
         "t = time.monotonic()", "while time.monotonic() - t < 1.0:", "    pass", "print('went on')"]
    )
    got = _interrupt(nb, caught, settle_ms=100)
    assert (got["status"], got["text"]) == ("ok", "go\ncaught\nwent on\n"), got
