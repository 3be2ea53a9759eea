// Write a Pyodide memory snapshot of the kernel's Python side, so the browser skips Python's start-up, the
// package installs and the imports (measured: they are most of a cold kernel start).
//
//   node make_snapshot.mjs PYODIDE_DIR
//
// PYODIDE_DIR holds the Pyodide core, pyodide-lock.json, ck-manifest.json and the wheels (indexURL). Writes there:
//   ck-snapshot.bin.gz       the wasm memory after loading the packages and importing what a kernel start and its
//                            first cells import (found by running a throwaway kernel in a second interpreter);
//   ck-site-packages.bin.gz  the installed files (a snapshot holds memory, not Emscripten's file system): a
//                            little-endian u32 header length, a JSON header [[path, size], ...], then the bytes;
//                            only what a kernel may read before its first result;
//   ck-site-packages-later.bin.gz  the rest, same format (modules not imported yet, jedi's type stubs);
// and adds a "snapshot" entry to ck-manifest.json. The worker falls back to installing the wheels if the snapshot
// cannot be used (for example a different Pyodide build).
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const dir = resolve(process.argv[2] ?? '');
const manifestPath = join(dir, 'ck-manifest.json');
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const { loadPyodide } = await import(pathToFileURL(join(dir, 'pyodide.mjs')).href);

async function load(makeSnapshot) {
  const py = await loadPyodide({
    indexURL: dir + '/',
    lockFileURL: join(dir, 'pyodide-lock.json'),
    _makeSnapshot: makeSnapshot,
    env: { HOME: '/home/pyodide' },
    stdout: () => {},
    stderr: (s) => console.error(`[snapshot] ${s}`)
  });
  const errors = [];
  await py.loadPackage(manifest.packages, { messageCallback: () => {}, errorCallback: (m) => errors.push(m) });
  if (errors.length) {
    throw new Error(`loadPackage failed: ${errors.join('; ')}`);
  }
  return py;
}

/** Modules a kernel imports while starting and running its first cells (those of the warm-up's throwaway kernel). */
async function modulesOfAFirstCell() {
  const py = await load(false);
  py.runPython(`
import json, sys
_before = set(sys.modules)

async def _first_cells():
    from concurrent_kernel.callback_transport import warm_up
    if await warm_up(2) != 2:
        raise RuntimeError("the throwaway kernel did not run its cells")
    return json.dumps(sorted(set(sys.modules) - _before))
`);
  const fn = py.globals.get('_first_cells');
  return JSON.parse(await fn.callPromising());
}

/** Modules the worker imports when it starts a kernel (besides the warm-up's), so they come with the snapshot. */
const KERNEL_START = ['concurrent_kernel.services.packages'];

const t0 = Date.now();
const warm = await modulesOfAFirstCell();
const py = await load(true);
const failed = JSON.parse(
  py.runPython(`
import importlib, json, sys
_failed = []
for _name in ${JSON.stringify([...manifest.imports, 'concurrent_kernel.callback_transport', ...KERNEL_START, ...warm])}:
    try:
        importlib.import_module(_name)
    except BaseException as _e:
        _failed.append(f"{_name}: {type(_e).__name__}: {_e}")
json.dumps(_failed)
`)
);
const missing = failed.filter((f) => manifest.imports.some((m) => f.startsWith(m + ':')));
if (missing.length) {
  throw new Error(`required modules do not import: ${missing.join('; ')}`);
}

// The installed files, collected from Emscripten's file system; of the front-end-only distributions (never
// imported, installed only because ipywidgets requires them) just the metadata.
const sitePackages = posix.normalize(py.runPython('import sysconfig; sysconfig.get_path("purelib")'));
const frontEndOnly = new Set(
  JSON.parse(
    py.runPython(`
import importlib.metadata, json, os
json.dumps([os.path.normpath(str(d.locate_file(f)))
            for d in map(importlib.metadata.distribution, ${JSON.stringify(manifest.data_only ?? [])})
            for f in d.files or [] if ".dist-info/" not in str(f)])
`)
  )
);
const files = [];
(function walk(path) {
  for (const name of py.FS.readdir(path)) {
    if (name === '.' || name === '..') continue;
    const full = `${path}/${name}`;
    const mode = py.FS.stat(full).mode;
    if (py.FS.isDir(mode)) walk(full);
    else if (py.FS.isFile(mode) && !frontEndOnly.has(full)) files.push([full, py.FS.readFile(full)]);
  }
})(sitePackages);
// Split in two: what a kernel may read before its first result (the sources of the modules already imported, for
// tracebacks and inspection; data files; metadata), and what it reads only later: modules nobody imported yet
// and jedi's type stubs (completions). The worker loads the second bundle in the background; an import that
// needs it first fetches it synchronously, and completion requests wait for it.
const imported = new Set(
  JSON.parse(
    py.runPython(`
import json, os, sys
json.dumps(sorted({os.path.normpath(f) for m in list(sys.modules.values())
                   if isinstance(f := getattr(m, "__file__", None), str)}))
`)
  )
);
// Every __init__.py stays: a package directory without one would import as an empty namespace package instead
// of asking the worker's finder for the later files.
const isLater = (path) =>
  (path.endsWith('.py') &&
    !path.endsWith('/__init__.py') &&
    !imported.has(path) &&
    !path.includes('/concurrent_kernel/')) ||
  path.includes('/jedi/third_party/typeshed/');
function writeBundle(name, entries) {
  const header = Buffer.from(JSON.stringify(entries.map(([p, b]) => [p, b.length])));
  const sizes = Buffer.alloc(4);
  sizes.writeUInt32LE(header.length);
  const bundle = gzipSync(Buffer.concat([sizes, header, ...entries.map(([, b]) => b)]), { level: 9 });
  writeFileSync(join(dir, name), bundle);
  return bundle.length;
}
const firstFiles = files.filter(([p]) => !isLater(p));
const laterFiles = files.filter(([p]) => isLater(p));
const bundleBytes = writeBundle('ck-site-packages.bin.gz', firstFiles);
const laterBytes = writeBundle('ck-site-packages-later.bin.gz', laterFiles);

// Leave no trace of Node in the interpreter state, and reset what JS-side state a snapshot cannot carry.
py.runPython(`
import os, sys
os.environ.pop("_", None)
sys.executable = ""
sys.argv[:] = [""]
while sys.path.count("") > 0:
    sys.path.remove("")
import gc; gc.collect()
`);
// The table entry of loaded packages is compared with a fresh `{}` when the snapshot is written.
const loaded = py._module.__hiwire_get(6);
for (const key of Object.keys(loaded)) delete loaded[key];
const snapshot = py.makeMemorySnapshot();
const packed = gzipSync(snapshot, { level: 9 });
writeFileSync(join(dir, 'ck-snapshot.bin.gz'), packed);

manifest.snapshot = {
  memory: 'ck-snapshot.bin.gz',
  files: 'ck-site-packages.bin.gz',
  later: 'ck-site-packages-later.bin.gz',
  // Top-level modules with files in the later bundle: only their imports wait for it.
  laterModules: [
    ...new Set(laterFiles.map(([p]) => p.slice(sitePackages.length + 1).split('/')[0].replace(/\.py$/, '')))
  ].sort(),
  modules: warm.length,
  // The standard library zip the snapshot was taken with: the worker fetches it after the first result (zipimport's
  // directory of it, with the offsets of its members, is in the snapshot, so it must be this very file).
  stdlib: { name: 'python_stdlib.zip', size: statSync(join(dir, 'python_stdlib.zip')).size }
};
// Pyodide files shipped gzipped beside the originals (ts/scripts/build-labextension.sh): the worker fetches those.
manifest.gzipped = ['pyodide.asm.wasm', 'pyodide.asm.mjs'].filter((f) => existsSync(join(dir, `${f}.gz`)));
writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
console.log(
  `[snapshot] ${(snapshot.length / 1e6).toFixed(1)} MB memory (${(packed.length / 1e6).toFixed(1)} MB gzip), ` +
    `${firstFiles.length} files (${(bundleBytes / 1e6).toFixed(1)} MB gzip) + ${laterFiles.length} later ` +
    `(${(laterBytes / 1e6).toFixed(1)} MB gzip), ` +
    `${warm.length} modules of a first cell imported` +
    (failed.length ? ` (${failed.length} could not be: ${failed.slice(0, 3).join('; ')})` : '') +
    ` in ${((Date.now() - t0) / 1000).toFixed(1)} s`
);
process.exit(0);
