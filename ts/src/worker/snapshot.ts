/** Python restored from the build's memory snapshot, and the files that snapshot was taken with. */
import { keepDecoded } from '../decodedCache';
import { fetchBrotli } from './brotli';
import { writeFiles } from './files';
import { awaitLaterFiles, awaitRecords } from './laterFiles';
import { elapsed, log } from './page';
import { early, setOnInstantiated } from './prefetch';
import { getModuleFactory, loadPyodideFrom } from './pyodideLoader';
import { deferStdlib } from './stdlib';
import { fetchBytes } from './streams';
import type { IModule, IPyodide, ISnapshotFiles } from './types';

/**
 * Start Python from the memory snapshot written at build time (ts/scripts/make_snapshot.mjs): the interpreter
 * with every package imported, so neither the installs nor the imports run here. The snapshot holds memory
 * only, so the installed files are written back from their bundle.
 */
export async function restoreSnapshot(
  base: string,
  snapshot: ISnapshotFiles,
  timings: Record<string, number>
): Promise<IPyodide> {
  const br = snapshot.brotli;
  // A memory decoded from the brotli file is its delta from the wasm's data segments (make_snapshot.mjs): undone
  // with the memory of the module about to be instantiated, before that module runs; then kept for the cache.
  let undo: ((memory: WebAssembly.Memory) => void) | null = null;
  let undone = false;
  const delta = br?.memoryDelta;
  const withDelta = delta
    ? (bytes: Uint8Array<ArrayBuffer>): void => {
        undo = memory => {
          xorInto(bytes, delta.offset, memory.buffer, delta.address, delta.length);
          undone = true;
          timings.undelta = elapsed();
          keepDecoded(base + br!.memory, Promise.resolve(bytes));
        };
      }
    : undefined;
  const memory = br
    ? fetchBrotli(base + br.memory, br.memorySize, timings, 'memory', base + snapshot.memory, withDelta)
    : fetchBytes(base + snapshot.memory, timings, 'memory');
  const files = br
    ? fetchBrotli(base + br.files, br.filesSize, timings, 'files', base + snapshot.files)
    : fetchBytes(base + snapshot.files, timings, 'files');
  memory.catch(() => undefined);
  files.catch(() => undefined);
  const createModule = await getModuleFactory(base, timings);
  const bytes = await memory;
  setOnInstantiated(undo);
  if (snapshot.stdlib) {
    // Pyodide writes what it gets as the zip: an empty file here, the real one behind it (deferStdlib).
    early.set(base + snapshot.stdlib.name, Promise.resolve(new Response(new Uint8Array(0))));
  }
  let trampoline: (() => void) | null = null;
  const py = await loadPyodideFrom(base, {
    _loadSnapshot: bytes,
    // Pyodide asks for INITIAL_MEMORY of the snapshot's size, but this build creates its memory inside the wasm
    // module and ignores it: grow the memory before the restore copies the snapshot in.
    createPyodideModule: async (settings: unknown) => {
      const module = await createModule(settings).finally(() => setOnInstantiated(null));
      timings.instantiated = elapsed();
      if (undo && !undone) {
        throw new Error("the module was instantiated without the snapshot's delta being undone");
      }
      module.growMemory(bytes.length);
      trampoline = keepTrampoline(module);
      if (snapshot.stdlib) {
        deferStdlib(module, base + snapshot.stdlib.name, snapshot.stdlib.size, timings);
      }
      return module;
    }
  });
  trampoline!();
  timings.snapshot = elapsed();
  writeFiles(py, await files);
  timings.files = elapsed();
  if (snapshot.later) {
    awaitLaterFiles(py, base + snapshot.later, snapshot.laterModules ?? [], timings);
    if (snapshot.records) {
      awaitRecords(py, base + snapshot.records.bundle, snapshot.records.paths, timings);
    }
  }
  return py;
}

/**
 * CPython calls C function pointers through a trampoline that this runtime chose as the module started (Pyodide's
 * preRun): a small wasm module where the browser has wasm GC, else a JavaScript function. The snapshot's memory holds
 * the choice of the runtime that took it (Node, which has no wasm GC: the JavaScript one), and a JavaScript frame on
 * the stack makes every suspension of Python (JSPI: time.sleep, run_sync) a fatal "SuspendError: trying to suspend
 * JS frames". Read this runtime's choice before the restore; the returned function writes it back after.
 */
function keepTrampoline(module: IModule): () => void {
  const runtime = module.__PyRuntime;
  const offsetAt = module.__PyEM_EMSCRIPTEN_TRAMPOLINE_OFFSET;
  if (runtime === undefined || offsetAt === undefined) {
    log('warn', 'this Pyodide does not export its call trampoline: Python calls that suspend may fail');
    return () => undefined;
  }
  const slot = (): number => (runtime + module.HEAP32[offsetAt >>> 2]) >>> 2;
  const chosen = module.HEAP32[slot()];
  return () => {
    module.HEAP32[slot()] = chosen;
  };
}

/** TARGET[AT..AT+LENGTH] ^= SOURCE[FROM..FROM+LENGTH], a word at a time where both are aligned. */
function xorInto(target: Uint8Array, at: number, source: ArrayBufferLike, from: number, length: number): void {
  let i = 0;
  if ((target.byteOffset + at) % 4 === 0 && from % 4 === 0) {
    const mine = new Uint32Array(target.buffer, target.byteOffset + at, length >> 2);
    const theirs = new Uint32Array(source, from, length >> 2);
    for (; i < mine.length; i++) {
      mine[i] ^= theirs[i];
    }
    i *= 4;
  }
  const mine = target.subarray(at, at + length);
  const theirs = new Uint8Array(source, from, length);
  for (; i < length; i++) {
    mine[i] ^= theirs[i];
  }
}
