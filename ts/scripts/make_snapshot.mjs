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
// and adds a "snapshot" entry to ck-manifest.json. The worker falls back to installing the wheels if the snapshot
// cannot be used (for example a different Pyodide build).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

const t0 = Date.now();
const warm = await modulesOfAFirstCell();
const py = await load(true);
const failed = JSON.parse(
  py.runPython(`
import importlib, json, sys
_failed = []
for _name in ${JSON.stringify([...manifest.imports, 'concurrent_kernel.callback_transport', ...warm])}:
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
const header = Buffer.from(JSON.stringify(files.map(([p, b]) => [p, b.length])));
const sizes = Buffer.alloc(4);
sizes.writeUInt32LE(header.length);
const bundle = gzipSync(Buffer.concat([sizes, header, ...files.map(([, b]) => b)]));
writeFileSync(join(dir, 'ck-site-packages.bin.gz'), bundle);

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
const packed = gzipSync(snapshot);
writeFileSync(join(dir, 'ck-snapshot.bin.gz'), packed);

manifest.snapshot = { memory: 'ck-snapshot.bin.gz', files: 'ck-site-packages.bin.gz', modules: warm.length };
// Pyodide files shipped gzipped beside the originals (ts/scripts/build-labextension.sh): the worker fetches those.
manifest.gzipped = ['pyodide.asm.wasm', 'pyodide.asm.mjs'].filter((f) => existsSync(join(dir, `${f}.gz`)));
writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
console.log(
  `[snapshot] ${(snapshot.length / 1e6).toFixed(1)} MB memory (${(packed.length / 1e6).toFixed(1)} MB gzip), ` +
    `${files.length} files (${(bundle.length / 1e6).toFixed(1)} MB gzip), ` +
    `${warm.length} modules of a first cell imported` +
    (failed.length ? ` (${failed.length} could not be: ${failed.slice(0, 3).join('; ')})` : '') +
    ` in ${((Date.now() - t0) / 1000).toFixed(1)} s`
);
process.exit(0);
