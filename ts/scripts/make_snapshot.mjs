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
//   ck-site-packages-later.bin.gz  the rest, same format (modules not imported yet, type stubs, RECORD files);
//   ck-records.bin           the RECORD files again, uncompressed (read if opened before the later files arrive);
// and adds a "snapshot" entry to ck-manifest.json. The worker falls back to installing the wheels if the snapshot
// cannot be used (for example a different Pyodide build).
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, constants as zlibConstants, gzipSync } from 'node:zlib';

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

/**
 * Modules a kernel imports while starting and running its first cells (those of the warm-up's throwaway kernel),
 * and the Python files it reads without importing them (IPython reads pygments' style module for a traceback's
 * colours that way): both must come before the first result, not in the later files.
 */
async function firstCells() {
  const py = await load(false);
  py.runPython(`
import json, os, re, sys
_before = set(sys.modules)
_read = set()

def _note_read(event, args):
    if event == "open" and isinstance(args[0], str):
        path = re.sub(r"/__pycache__/([^/]+?)\\.[^/]*\\.pyc$", r"/\\1.py", os.path.normpath(args[0]))
        if path.endswith(".py"):
            _read.add(path)

async def _first_cells():
    from concurrent_kernel.callback_transport import warm_up
    sys.addaudithook(_note_read)  # this interpreter is thrown away: the hook goes with it
    if await warm_up(2) != 2:
        raise RuntimeError("the throwaway kernel did not run its cells")
    return json.dumps({"modules": sorted(set(sys.modules) - _before), "read": sorted(_read)})
`);
  const fn = py.globals.get('_first_cells');
  return JSON.parse(await fn.callPromising());
}

/** Modules the worker imports when it starts a kernel (besides the warm-up's), so they come with the snapshot. */
const KERNEL_START = ['concurrent_kernel.services.packages'];

const t0 = Date.now();
const { modules: warm, read: readByFirstCells } = await firstCells();
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
// The kernel_info reply's banner reads package metadata, and importlib.metadata opens every sys.path entry, the
// standard library zip first (which the worker fetches after the first result): computed here, cached in the snapshot.
py.runPython('from concurrent_kernel._kernel_info import kernel_info\nkernel_info()');
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
// and type stubs (completions). The worker loads the second bundle in the background; an import that
// needs it first fetches it synchronously, and completion requests wait for it.
const imported = new Set([
  ...readByFirstCells,
  ...JSON.parse(
    py.runPython(`
import json, os, sys
json.dumps(sorted({os.path.normpath(f) for m in list(sys.modules.values())
                   if isinstance(f := getattr(m, "__file__", None), str)}))
`)
  )
]);
// Every __init__.py stays: a package directory without one would import as an empty namespace package instead
// of asking the worker's finder for the later files.
const isLater = (path) =>
  (path.endsWith('.py') &&
    !path.endsWith('/__init__.py') &&
    !imported.has(path) &&
    !path.includes('/concurrent_kernel/')) ||
  path.endsWith('.pyi') || // type stubs (aiologic ships one per module): read by jedi for completions only
  path.includes('/jedi/third_party/typeshed/') ||
  isRecord(path);
// RECORD files (a hash per installed file: 0.27 of the first files' 0.94 MB brotli) are read only by package
// tools (importlib.metadata's files(), %pip uninstall): they come later, and exist from the start as empty files
// whose first open has them written at once (ts/src/worker/laterFiles.ts awaitRecords).
function isRecord(path) {
  return path.endsWith('.dist-info/RECORD');
}
// The brotli decoder the worker uses for the .br files (Chromium's DecompressionStream has no brotli), gzipped.
const brotliDecoder = (() => {
  try {
    return createRequire(import.meta.url).resolve('brotli-dec-wasm/web/bg.wasm');
  } catch {
    console.error('[snapshot] brotli-dec-wasm is not installed (npm ci): the worker gets gzip files only');
    return null;
  }
})();
const withBrotli = brotliDecoder !== null;
/** Brotli with a 16 MB window: the memory (its delta, below; free memory zeroed) 5.5 MB at quality 11 in ~36 s,
 * instead of 9.7 MB with gzip -9. */
function brotli(data, name, quality = 10) {
  const packed = brotliCompressSync(data, {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: quality,
      [zlibConstants.BROTLI_PARAM_LGWIN]: 24,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: data.length
    }
  });
  writeFileSync(join(dir, name), packed);
  return packed.length;
}
/** The bundle format: a little-endian u32 header length, a JSON header [[path, size], ...], then the bytes. */
function bundle(entries) {
  const header = Buffer.from(JSON.stringify(entries.map(([p, b]) => [p, b.length])));
  const sizes = Buffer.alloc(4);
  sizes.writeUInt32LE(header.length);
  return Buffer.concat([sizes, header, ...entries.map(([, b]) => b)]);
}
function writeBundle(name, entries, brName) {
  const raw = bundle(entries);
  const packed = gzipSync(raw, { level: 9 });
  writeFileSync(join(dir, name), packed);
  return { size: raw.length, gz: packed.length, br: brName && withBrotli ? brotli(raw, brName) : 0 };
}
const firstFiles = files.filter(([p]) => !isLater(p));
const laterFiles = files.filter(([p]) => isLater(p));
const firstBundle = writeBundle('ck-site-packages.bin.gz', firstFiles, 'ck-site-packages.bin.br');
const laterBytes = writeBundle('ck-site-packages-later.bin.gz', laterFiles).gz;
// The RECORD files also on their own, uncompressed: what a worker fetches synchronously (it has no synchronous
// inflate) when one is opened before the later files have arrived.
const records = laterFiles.filter(([p]) => isRecord(p));
writeFileSync(join(dir, 'ck-records.bin'), bundle(records));

// Leave no trace of Node in the interpreter state, and reset what JS-side state a snapshot cannot carry.
py.runPython(`
import os, sys
os.environ.pop("_", None)
sys.executable = ""
sys.argv[:] = [""]
while sys.path.count("") > 0:
    sys.path.remove("")
# What the snapshot holds lives as long as the page's interpreter: out of the cyclic GC's reach, as the CPython kernel
# freezes its start-up objects (services/shell.py). Otherwise the first collection in the page, during the first
# cell, walked them all (30-45 ms measured on a reload).
import gc; gc.collect(); gc.freeze()
`);
// The table entry of loaded packages is compared with a fresh `{}` when the snapshot is written.
const loaded = py._module.__hiwire_get(6);
for (const key of Object.keys(loaded)) delete loaded[key];

/**
 * Zero the heap's free memory, which still holds whatever the imports left there (sources read, temporary
 * objects, freed arenas): leftovers that cost the brotli memory 0.5 MB and a first result nothing. Done through
 * malloc and free only: take every free block (and the top of the heap) as allocations, zero them, free them all.
 * An allocation is only asked for while the memory is sure not to grow, so the snapshot keeps its size.
 */
function zeroFreeMemory(module) {
  const info = module._malloc(64); // struct mallinfo: ten 32-bit fields, keepcost (the top chunk) last
  const headroom = () => {
    module._mallinfo(info);
    return module.HEAPU32[(info >> 2) + 9] + (module.HEAP8.length - module._sbrk(0));
  };
  const size = module.HEAP8.length;
  const taken = [];
  let zeroed = 0;
  // 128 KB: room for the request and dlmalloc's 64 KB granularity when it extends the heap.
  for (let block = 1 << 20; block >= 16; block >>= 1) {
    while (block + (128 << 10) <= headroom()) {
      const at = module._malloc(block);
      if (!at) break;
      module.HEAPU8.fill(0, at, at + block);
      taken.push(at);
      zeroed += block;
    }
  }
  for (const at of taken) module._free(at);
  module._free(info);
  // Past the heap's end: memory the heap gave back, if it ever shrank.
  module.HEAPU8.fill(0, module._sbrk(0));
  if (module.HEAP8.length !== size) throw new Error('zeroing the free memory grew the memory');
  return zeroed;
}
const zeroed = zeroFreeMemory(py._module);
const snapshot = py.makeMemorySnapshot();
const packed = gzipSync(snapshot, { level: 9 });
writeFileSync(join(dir, 'ck-snapshot.bin.gz'), packed);

/**
 * Where the wasm's data segments lie in memory ([address, bytes] each), or null if a segment is not placed at a
 * constant address (then the memory is shipped as it is).
 */
function dataSegments(wasm) {
  let at = 8;
  const leb = () => {
    let value = 0;
    let shift = 0;
    for (;;) {
      const byte = wasm[at++];
      value += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) return value;
    }
  };
  while (at < wasm.length) {
    const id = wasm[at++];
    const size = leb();
    const end = at + size;
    if (id === 11) {
      const segments = [];
      for (let count = leb(); count > 0; count--) {
        // Active segments of memory 0 at `i32.const N; end`: anything else (passive, computed) and we give up.
        if (leb() !== 0 || wasm[at++] !== 0x41) return null;
        const address = leb();
        if (wasm[at++] !== 0x0b) return null;
        const length = leb();
        segments.push([address, wasm.subarray(at, at + length)]);
        at += length;
      }
      return segments;
    }
    at = end;
  }
  return [];
}
/**
 * The brotli copy of the memory is shipped as its difference (XOR) from the wasm's data segments, the memory a
 * freshly instantiated module starts with: most of that region is unchanged (read-only data), so it becomes zeros
 * (7.2 -> 6.2 MB). The worker undoes it with the memory of the module it has just instantiated. The snapshot's own
 * layout (a header, then the memory from address 0) is checked against the data, never assumed.
 */
function memoryDelta(memory) {
  const segments = dataSegments(readFileSync(join(dir, 'pyodide.asm.wasm')));
  if (!segments?.length) return null;
  const header = new DataView(memory.buffer, memory.byteOffset, 8).getUint32(4, true);
  const start = Math.min(...segments.map(([address]) => address));
  const end = Math.max(...segments.map(([address, bytes]) => address + bytes.length));
  // The largest segment (read-only data) must be found, unchanged, where the header says the memory starts.
  const [largestAddress, largest] = segments.reduce((a, b) => (b[1].length > a[1].length ? b : a));
  const probe = Buffer.from(largest.subarray(0, 4096));
  const where = memory.byteOffset + header + largestAddress;
  if (header + end > memory.length || !Buffer.from(memory.buffer, where, probe.length).equals(probe)) {
    console.error('[snapshot] the snapshot does not hold the memory where expected: shipped without the delta');
    return null;
  }
  const delta = Buffer.from(memory);
  for (const [address, bytes] of segments) {
    for (let i = 0; i < bytes.length; i++) delta[header + address + i] ^= bytes[i];
  }
  return { delta, region: { offset: header + start, address: start, length: end - start } };
}
const delta = withBrotli ? memoryDelta(snapshot) : null;
const packedBr = withBrotli ? brotli(delta?.delta ?? snapshot, 'ck-snapshot.bin.br', 11) : 0;
if (withBrotli) {
  writeFileSync(join(dir, 'brotli-dec.wasm.gz'), gzipSync(readFileSync(brotliDecoder), { level: 9 }));
  // Pyodide's wasm: 2.8 MB instead of 3.5 gzipped. Quality 11 takes ~20 s: kept in ts/.cache by the input's hash.
  const wasm = readFileSync(join(dir, 'pyodide.asm.wasm'));
  const cached = join(dirname(fileURLToPath(import.meta.url)), '..', '.cache', 'brotli',
    `${createHash('sha256').update(wasm).digest('hex')}.br`);
  if (!existsSync(cached)) {
    mkdirSync(dirname(cached), { recursive: true });
    brotli(wasm, 'pyodide.asm.wasm.br', 11);
    copyFileSync(join(dir, 'pyodide.asm.wasm.br'), cached);
  } else {
    copyFileSync(cached, join(dir, 'pyodide.asm.wasm.br'));
  }
}
// The lock is not shipped gzipped beside itself (it would save 0.1 MB): a site that adds entries to
// pyodide-lock.json after the build (tests/browser/authored_site.py does) would get the stale copy, quietly.

manifest.snapshot = {
  memory: 'ck-snapshot.bin.gz',
  files: 'ck-site-packages.bin.gz',
  later: 'ck-site-packages-later.bin.gz',
  // Top-level modules with files in the later bundle: only their imports wait for it.
  laterModules: [
    ...new Set(
      laterFiles
        .filter(([p]) => !isRecord(p))
        .map(([p]) => p.slice(sitePackages.length + 1).split('/')[0].replace(/\.py$/, ''))
    )
  ].sort(),
  // RECORD files: in the later bundle, and empty files until it is written; opening one before that writes them
  // from this bundle of their own.
  records: { bundle: 'ck-records.bin', paths: records.map(([p]) => p) },
  modules: warm.length,
  // The standard library zip the snapshot was taken with: the worker fetches it after the first result (zipimport's
  // directory of it, with the offsets of its members, is in the snapshot, so it must be this very file).
  stdlib: { name: 'python_stdlib.zip', size: statSync(join(dir, 'python_stdlib.zip')).size }
};
if (withBrotli) {
  manifest.snapshot.brotli = {
    decoder: 'brotli-dec.wasm.gz',
    memory: 'ck-snapshot.bin.br',
    memorySize: snapshot.length,
    // The bytes at offset..offset+length are XORed with the fresh module's memory at address..address+length.
    memoryDelta: delta?.region,
    files: 'ck-site-packages.bin.br',
    filesSize: firstBundle.size,
    wasm: 'pyodide.asm.wasm.br'
  };
}
// Pyodide files shipped gzipped beside the originals (ts/scripts/build-labextension.sh): the worker fetches those.
manifest.gzipped = ['pyodide.asm.wasm', 'pyodide.asm.mjs'].filter((f) =>
  existsSync(join(dir, `${f}.gz`))
);
writeFileSync(manifestPath, JSON.stringify(manifest, null, 1));
console.log(
  `[snapshot] ${(snapshot.length / 1e6).toFixed(1)} MB memory, ${(zeroed / 1e6).toFixed(1)} MB of it free and ` +
    `zeroed (${(packed.length / 1e6).toFixed(1)} MB gzip, ` +
    `${(packedBr / 1e6).toFixed(1)} MB brotli), ${firstFiles.length} files (${(firstBundle.gz / 1e6).toFixed(1)} MB ` +
    `gzip, ${(firstBundle.br / 1e6).toFixed(1)} MB brotli) + ${laterFiles.length} later ` +
    `(${(laterBytes / 1e6).toFixed(1)} MB gzip), ` +
    `${warm.length} modules of a first cell imported` +
    (failed.length ? ` (${failed.length} could not be: ${failed.slice(0, 3).join('; ')})` : '') +
    ` in ${((Date.now() - t0) / 1000).toFixed(1)} s`
);
process.exit(0);
