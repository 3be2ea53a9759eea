/** Python packages in the worker: the wheels installed without a snapshot, the import check, the lock's URLs. */
import { log } from './page';
import { state as worker } from './state';
import type { IPyodide } from './types';

/** Install the wheels; returns what loadPackage reported as errors (it does not throw for a missing file). */
export async function loadPackages(py: IPyodide, packages: string[]): Promise<string[]> {
  const errors: string[] = [];
  await py.loadPackage(packages, {
    messageCallback: () => undefined,
    errorCallback: (m: string) => errors.push(m)
  });
  return errors;
}

/** loadPackage does not fail when a file is missing, and a snapshot's files come apart from it: check both. */
export function checkImports(py: IPyodide, imports: string[], loadErrors: string[]): void {
  const check = py.runPython(`
import importlib, json, os
_missing = []
for _name in ${JSON.stringify([...imports, 'concurrent_kernel.callback_transport'])}:
    try:
        _file = getattr(importlib.import_module(_name), "__file__", None)
        if _file and not os.path.exists(_file):
            raise FileNotFoundError(_file)
    except BaseException as _e:
        _missing.append(f"{_name}: {type(_e).__name__}: {_e}")
json.dumps(_missing)
`) as string;
  const missing = JSON.parse(check) as string[];
  if (missing.length) {
    throw new Error(
      `required Python packages could not be imported: ${missing.join('; ')}` +
        (loadErrors.length ? `\nloadPackage reported: ${loadErrors.join('; ')}` : '')
    );
  }
}

/**
 * Point the lock's entries that the site does not ship at the Pyodide distribution (default: the CDN of this
 * Pyodide version), so loadPackage and micropip fetch them from there; shipped wheels stay relative (the site).
 * Nothing is fetched here: only when a cell asks for such a package.
 */
export function pointLockAtDistribution(py: IPyodide, distributionUrl: string | undefined): string {
  const url = distributionUrl ?? `https://cdn.jsdelivr.net/pyodide/v${py.version}/full/`;
  const base = url.endsWith('/') ? url : url + '/';
  const shipped = worker.manifest?.shipped;
  if (!shipped) {
    log('warn', 'the manifest lists no shipped wheels: Pyodide distribution packages load from the site only');
    return base;
  }
  const own = new Set(shipped);
  const packages = py._api.lockfile_packages;
  for (const name of Object.keys(packages)) {
    const entry = packages[name];
    if (!own.has(entry.file_name) && !/^[a-z][a-z0-9+.-]*:/i.test(entry.file_name)) {
      entry.file_name = base + entry.file_name;
    }
  }
  return base;
}
