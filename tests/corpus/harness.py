"""Run real notebooks on two kernels and compare their outputs cell by cell.

A notebook is run by a *runner* (a callable taking the notebook's path and returning the executed notebook);
`nbclient_runner(kernel_name)` runs it with nbclient on a kernelspec. `compare` normalises what legitimately
differs between two runs (addresses, temp file names, timings, ids, traceback file names) and returns, per cell,
what still differs. The test (test_corpus.py) keeps the list of differences that are known and why.

Run by hand: `python tests/corpus/harness.py [--kernel concurrent] [--reference python3] NOTEBOOK...` prints the
differences of each notebook.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import xml.dom.minidom
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

HERE = Path(__file__).parent
NOTEBOOKS = HERE / "notebooks"

Notebook = Any  # nbformat.NotebookNode
Runner = Callable[[Path, "NotebookOptions"], Notebook]


@dataclass
class NotebookOptions:
    """How nbclient's own tests run a notebook (timeouts, errors allowed, extra environment)."""

    timeout: int = 60
    allow_errors: bool = False
    interrupt_on_timeout: bool = False
    env: dict[str, str] = field(default_factory=dict)
    #: Files beside the notebook that it reads (copied into its working directory).
    files: tuple[str, ...] = ()
    #: A notebook run at the same time on another kernel of the same kind (nbclient's "Parallel Execute" pair);
    #: `{shared}` in `env` is a folder both see.
    parallel_with: str | None = None


def corpus(root: Path = NOTEBOOKS) -> list[Path]:
    """Every notebook of the corpus (one folder down: deeper ones are files that notebooks read), sorted."""
    return sorted(root.glob("*/*.ipynb"))


def options_for(path: Path) -> NotebookOptions:
    """Per-notebook options, from `corpus-options.json` in the notebook's folder."""
    table = path.parent / "corpus-options.json"
    if not table.exists():
        return NotebookOptions()
    raw = json.loads(table.read_text()).get(path.name, {})
    return NotebookOptions(**{**raw, "files": tuple(raw.get("files", ()))})


def kernel_env() -> dict[str, str]:
    """The environment a kernel gets: without pytest's variable (ipykernel turns its fd capture off when it sees
    it), with a fixed terminal size (tracebacks and `%ls` wrap on it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(COLUMNS="80", LINES="24")
    return env


def nbclient_runner(kernel_name: str, kernels_dir: Path | None = None) -> Runner:
    """Run a notebook with nbclient on the kernelspec `kernel_name` (found in `kernels_dir`, else where Jupyter
    looks), in a scratch folder with the files it reads."""

    def run(path: Path, options: NotebookOptions) -> Notebook:
        with tempfile.TemporaryDirectory(prefix="ck-corpus-shared-") as shared:
            companion = None
            if options.parallel_with:
                other = path.parent / options.parallel_with
                companion = threading.Thread(
                    target=_run_one, args=(other, options, kernel_name, kernels_dir, shared), daemon=True
                )
                companion.start()
            try:
                return _run_one(path, options, kernel_name, kernels_dir, shared)
            finally:
                if companion is not None:
                    companion.join(options.timeout)

    return run


def _run_one(
    path: Path, options: NotebookOptions, kernel_name: str, kernels_dir: Path | None, shared: str
) -> Notebook:
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    nb = blank(nbformat.read(path, as_version=4))
    with tempfile.TemporaryDirectory(prefix="ck-corpus-") as tmp, \
            tempfile.TemporaryDirectory(prefix="ck-corpus-ipython-") as ipython_dir:
        workdir = Path(tmp)
        for name in options.files:
            source = path.parent / name
            (shutil.copytree if source.is_dir() else shutil.copy)(source, workdir / name)
        env = {**kernel_env(), **{k: v.replace("{shared}", shared) for k, v in options.env.items()}}
        # Each run its own IPython profile: ipykernel's run and this kernel's run side by side, and `%store` keeps
        # its variables in the profile, so one kernel's `%store -z` emptied the other's store mid-notebook (CI).
        env["IPYTHONDIR"] = ipython_dir
        # nbclient keeps ipykernel's history in memory (it passes this for kernels named python*): the same for all
        specs = {} if kernels_dir is None else {
            "kernel_spec_manager": KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
        }
        km = AsyncKernelManager(kernel_name=kernel_name, **specs)  # nbclient's own kind (a blocking one deadlocks)
        client = NotebookClient(
            nb, km=km, timeout=options.timeout, extra_arguments=["--HistoryManager.hist_file=:memory:"],
            allow_errors=options.allow_errors, interrupt_on_timeout=options.interrupt_on_timeout,
            resources={"metadata": {"path": tmp}}, kernel_name=kernel_name,
        )
        try:
            client.execute(env=env, cwd=tmp)
        except DeadKernelError as exc:  # the kernel died (a cell killed its process, ...): compared too
            nb.metadata["corpus_outcome"] = f"DeadKernelError: {str(exc).splitlines()[0] if str(exc) else ''}"
        finally:
            # nbclient leaves the client and kernel of a manager it was handed running. A client left running keeps
            # a heartbeat thread pinging the ended kernel's port (a stray peer for whatever binds it next), and its
            # garbage collection destroys the zmq context under that thread (CI: the test process aborted).
            if client.kc is not None:
                client.kc.stop_channels()
            if km.has_kernel:
                run_sync(km.shutdown_kernel)(now=True)
    return nb


def blank(nb: Notebook) -> Notebook:
    """The notebook as a user opens it to run: no outputs, no execution counts."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


# ------------------------------------------------------------------------------------------------ normalising

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_HEXADDR = re.compile(r"0x[0-9a-fA-F]{4,}|(?<=object at )[0-9a-f]{8,}")
_TMP = re.compile(r"/tmp/[\w./-]+")
_CELL_FILE = re.compile(
    r"(Cell In\[)\d+(\])|<ipython-input-\d+-[0-9a-f]+>|/tmp/(ipykernel|concurrent_kernel)_\d+/\d+\.py"
)
#: %timeit's run counts and spread depend on the machine's speed at that moment
_TIMEIT = re.compile(r"(of \d+ runs?, )[\d,]+ loops? each")
_TIMEIT_WARNING = re.compile(r"The slowest run took [\d.]+ times longer than the fastest\. This could mean that an "
                             r"intermediate result is being cached\.\n")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: What ipykernel logs into the cell when something else on the machine sends garbage to its control port (a test
#: of malformed messages elsewhere, a reused port): not the notebook's output.
_TORNADO_NOISE = re.compile(
    r"ERROR:tornado\.general:Uncaught exception in ZMQStream callback\n(.*\n)*?ValueError: DELIM not in msg_list\n"
)
_DATETIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?")
_DURATION = re.compile(r"\b\d+(\.\d+)?(e[+-]?\d+)?\s*(ns|[\u00b5\u03bc]s|us|ms|s|min|h)\b")
_WIDGET_ID = re.compile(r"[0-9a-f]{32}")
_COUNT = re.compile(r"(In|Out)\s*\[\d+\]")
_KERNEL_FRAME = re.compile(r"File \S*/(ipykernel|concurrent_kernel)/")


def normalise_text(text: str) -> str:
    text = _ANSI.sub("", text)
    text = _TORNADO_NOISE.sub("", text)
    text = _TIMEIT_WARNING.sub("", text)
    text = _UUID.sub("<UUID>", text)
    text = _HEXADDR.sub("<ADDR>", text)
    text = _CELL_FILE.sub(r"\1N\2", text)
    text = _TMP.sub("<TMP>", text)
    text = _DATETIME.sub("<DATETIME>", text)
    text = _TIMEIT.sub(r"\1<TIMES>", text)
    text = _DURATION.sub("<DURATION>", text)
    text = _WIDGET_ID.sub("<ID>", text)
    return _COUNT.sub(r"\1[N]", text)


def _normalise_data(mime: str, value: Any) -> Any:
    if mime == "image/svg+xml":
        # matplotlib names its clip paths and glyphs with random ids; compare the drawing's structure
        text = value if isinstance(value, str) else "".join(value)
        text = re.sub(r'id="[^"]*"', 'id=""', text)
        text = re.sub(r'(clip-path|xlink:href|href)="[^"]*"', r'\1=""', text)
        text = re.sub(r"url\(#[^)]*\)", "url(#)", text)
        text = re.sub(r"<dc:date>[^<]*</dc:date>", "<dc:date/>", text)
        try:
            text = xml.dom.minidom.parseString(text).toxml()
        except Exception:
            pass
        return normalise_text(text)
    if mime.startswith("image/") and isinstance(value, str):
        # an image, not its bytes: plots of random data differ from run to run, and so does the size of a figure
        # cropped to its content (matplotlib's bbox_inches="tight")
        return f"<{mime}>"
    if mime == "application/vnd.jupyter.widget-view+json" and isinstance(value, dict):
        return {**value, "model_id": "<ID>"}
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, list):
        return normalise_text("".join(map(str, value)))
    return value


def normalise_output(output: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"output_type": output["output_type"]}
    kind = output["output_type"]
    if kind == "stream":
        out["name"] = output["name"]
        out["text"] = normalise_text(output["text"])
    elif kind in ("display_data", "execute_result", "update_display_data"):
        out["data"] = {mime: _normalise_data(mime, value) for mime, value in output.get("data", {}).items()}
    elif kind == "error":
        out["ename"] = output["ename"]
        out["evalue"] = normalise_text(output["evalue"])
        # the kernel's own frames (ipykernel's kernelbase, this kernel's services) say nothing about the user's code
        entries = output.get("traceback", [])
        out["traceback"] = [normalise_text(e) for e in entries if not _KERNEL_FRAME.match(_ANSI.sub("", e))]
    return out


def normalise_cell(cell: Any) -> list[dict[str, Any]]:
    """The cell's outputs as a front end shows them: consecutive stream outputs of one name are one output
    (JupyterLab's output model merges them), however the kernel cut the text into messages."""
    outputs: list[dict[str, Any]] = []
    for output in cell.get("outputs", []):
        last = outputs[-1] if outputs else None
        if (output["output_type"] == "stream" and last is not None and last["output_type"] == "stream"
                and last["name"] == output["name"]):
            last["text"] += output["text"]
        else:
            outputs.append({**output, "text": output["text"]} if output["output_type"] == "stream" else output)
    normalised = [normalise_output(o) for o in outputs]
    return [o for o in normalised if not (o["output_type"] == "stream" and not o["text"])]


def merged_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Outputs with each run of stream outputs regrouped by name (stdout first): how they compare when only the
    interleaving of stdout and stderr differs."""
    result: list[dict[str, Any]] = []
    run: list[dict[str, Any]] = []
    for output in [*outputs, {"output_type": "<end>"}]:
        if output["output_type"] == "stream":
            run.append(output)
            continue
        for name in ("stdout", "stderr"):
            text = "".join(o["text"] for o in run if o["name"] == name)
            if text:
                result.append({"output_type": "stream", "name": name, "text": text})
        run = []
        if output["output_type"] != "<end>":
            result.append(output)
    return result


@dataclass
class CellDifference:
    index: int
    source: str
    reference: list[dict[str, Any]]
    actual: list[dict[str, Any]]
    #: "outputs": they differ; "stream order": only stdout/stderr interleaving; "count": execution counts.
    kind: str

    def describe(self) -> str:
        first = self.source.strip().splitlines()[0][:70] if self.source.strip() else "<empty>"
        lines = [f"cell {self.index} ({self.kind}): {first}"]
        lines.append("  reference: " + json.dumps(self.reference, ensure_ascii=False)[:1500])
        lines.append("  actual:    " + json.dumps(self.actual, ensure_ascii=False)[:1500])
        return "\n".join(lines)


def compare(reference: Notebook, actual: Notebook) -> list[CellDifference]:
    """The code cells whose outputs (or execution counts) differ after normalising."""
    differences = []
    ref_outcome, act_outcome = reference.metadata.get("corpus_outcome"), actual.metadata.get("corpus_outcome")
    if ref_outcome != act_outcome:
        differences.append(CellDifference(-1, "<the notebook's run>", [{"outcome": ref_outcome}],
                                          [{"outcome": act_outcome}], "outcome"))
    ref_cells = [c for c in reference.cells if c.cell_type == "code"]
    act_cells = [c for c in actual.cells if c.cell_type == "code"]
    for index, (ref, act) in enumerate(zip(ref_cells, act_cells, strict=True)):
        ref_out, act_out = normalise_cell(ref), normalise_cell(act)
        if ref_out != act_out:
            kind = "stream order" if merged_streams(ref_out) == merged_streams(act_out) else "outputs"
            differences.append(CellDifference(index, ref.source, ref_out, act_out, kind))
        elif ref.get("execution_count") != act.get("execution_count"):
            differences.append(CellDifference(
                index, ref.source, [{"execution_count": ref.get("execution_count")}],
                [{"execution_count": act.get("execution_count")}], "count",
            ))
    return differences


def run_both(path: Path, reference: Runner, actual: Runner) -> list[CellDifference]:
    options = options_for(path)
    return compare(reference(path, options), actual(path, options))


def main(argv: Iterable[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", default="concurrent")
    parser.add_argument("--reference", default="python3")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(list(argv) if argv is not None else None)
    status = 0
    for path in args.notebooks or corpus():
        try:
            diffs = run_both(path, nbclient_runner(args.reference), nbclient_runner(args.kernel))
        except Exception as exc:
            print(f"== {path.relative_to(NOTEBOOKS) if path.is_relative_to(NOTEBOOKS) else path}: FAILED {exc!r}")
            status = 1
            continue
        print(f"== {path.name}: {len(diffs)} difference(s)")
        for diff in diffs:
            print(diff.describe())
        status |= bool(diffs)
    return status


if __name__ == "__main__":
    sys.exit(main())
