// Run the core's in-memory-transport tests (tests/test_core_*.py) inside Pyodide under Node.
//
// node --experimental-wasm-stack-switching run_core_tests.mjs REPO PYODIDE_DIR EXTRA_WHEEL_DIR [pytest args...]
//
// PYODIDE_DIR is the labextension's static/pyodide (core, lock, manifest, the kernel's dependency
// wheels). The kernel itself is imported from REPO/py, so the tests run against the working tree.
// Python is entered with callPromising, so anyio's runner can block on the WebLoop (JSPI).
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [repo, pyodideDir, extraDir, ...pytestArgs] = process.argv.slice(2).map((a, i) => (i < 3 ? resolve(a) : a));
const { loadPyodide } = await import(pathToFileURL(join(pyodideDir, 'pyodide.mjs')).href);
const t0 = Date.now();
const pyodide = await loadPyodide({
  indexURL: pyodideDir + '/',
  lockFileURL: join(pyodideDir, 'pyodide-lock.json'),
  stdout: (s) => console.log(s),
  stderr: (s) => console.error(s),
});
const manifest = JSON.parse(readFileSync(join(pyodideDir, 'ck-manifest.json'), 'utf8'));
const errors = [];
await pyodide.loadPackage(
  manifest.packages.filter((p) => p !== 'concurrent-kernel'),
  { messageCallback: () => {}, errorCallback: (m) => errors.push(m) },
);
const sitePackages = pyodide.runPython('import sysconfig; sysconfig.get_path("purelib")');
for (const name of readdirSync(extraDir).filter((n) => n.endsWith('.whl'))) {
  pyodide.unpackArchive(new Uint8Array(readFileSync(join(extraDir, name))), 'wheel', { extractDir: sitePackages });
}
pyodide.FS.mkdirTree('/repo');
pyodide.mountNodeFS('/repo', repo);
console.log(`[pyodide] ready in ${Date.now() - t0} ms; loadPackage errors: ${errors.length ? errors.join('; ') : 'none'}`);
pyodide.runPython(`
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, "/repo/py")
sys.path.insert(0, "/repo/tests/pyodide")
os.chdir("/repo")
import pytest

def _run(args):
    return int(pytest.main(list(args)))
`);
const run = pyodide.globals.get('_run');
const rc = await run.callPromising(pyodide.toPy(pytestArgs));
console.log(`[pyodide] pytest exit code ${rc}`);
process.exit(Number(rc));
