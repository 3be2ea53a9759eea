/**
 * Phase 1 of a worker, run ahead of any kernel in a spare: the manifest, Pyodide's files fetched at once, Python
 * restored from the snapshot (or Pyodide plus the packages installed), the import check, and the JIT warm-up.
 */
import { flushDecoded, openDecodedCache } from '../decodedCache';
import { startBrotliDecoder } from './brotli';
import { checkImports, loadPackages } from './packages';
import { elapsed, log, post, t0 } from './page';
import { early, fetchEarly } from './prefetch';
import { importModuleFactory, importPyodideScript, loadPyodideFrom } from './pyodideLoader';
import { restoreSnapshot } from './snapshot';
import { state as worker } from './state';
import type { IManifest, IPyProxy, IPyodide } from './types';

/** Cells the warm-up runs at most (measured: round trips reach their steady speed after ~50-100). */
const WARM_UP_CELLS = 60;

/** Error carrying the loading phase it happened in. */
export class LoadError extends Error {}

let warming: Promise<Record<string, number>> | null = null;

/**
 * Phase 1 (may run ahead of any kernel, in a spare worker): Python from the snapshot (or Pyodide plus the
 * packages), the import check, and the JIT warm-up.
 */
export function warm(indexURL: string): Promise<Record<string, number>> {
  if (!warming) {
    warming = doWarm(indexURL);
    warming.catch(() => undefined);
  }
  return warming;
}

async function doWarm(indexURL: string): Promise<Record<string, number>> {
  const timings: Record<string, number> = {};
  let phase = 'fetching the manifest';
  try {
    const base = indexURL.endsWith('/') ? indexURL : indexURL + '/';
    importPyodideScript(base); // with the manifest, not after the snapshot
    const manifestResp = await fetch(base + 'ck-manifest.json');
    if (!manifestResp.ok) {
      throw new Error(`HTTP ${manifestResp.status} for ${manifestResp.url}`);
    }
    const manifestText = await manifestResp.text();
    const manifest = JSON.parse(manifestText) as IManifest;
    openDecodedCache(base, manifestText);
    worker.manifest = manifest;
    timings.manifest = elapsed();
    timings.origin = performance.timeOrigin + t0;
    // Everything at once: Pyodide's own files would otherwise be asked for only after the snapshot arrived.
    const gzipped = new Set(manifest.gzipped ?? []);
    const brotli = manifest.snapshot?.brotli;
    if (brotli) {
      startBrotliDecoder(base + brotli.decoder);
    }
    for (const name of ['pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json']) {
      if (name !== manifest.snapshot?.stdlib?.name) {
        fetchEarly(base, name, gzipped.has(name), timings, name === 'pyodide.asm.wasm' ? brotli?.wasm : undefined);
      }
    }
    importModuleFactory(base, gzipped.has('pyodide.asm.mjs'), timings);
    let py: IPyodide | null = null;
    let restored = false;
    let loadErrors: string[] = [];
    if (manifest.snapshot) {
      phase = 'restoring the Python snapshot';
      try {
        py = await restoreSnapshot(base, manifest.snapshot, timings);
        restored = true;
      } catch (err) {
        // A snapshot is an optimisation: fall back to installing the wheels (with the real standard library).
        early.delete(base + (manifest.snapshot.stdlib?.name ?? ''));
        log('warn', `snapshot not used (${String(err)}); installing the packages`);
      }
    }
    if (!py) {
      phase = 'loading Pyodide';
      py = await loadPyodideFrom(base, {});
      timings.loadPyodide = elapsed();
      phase = 'loading packages';
      loadErrors = await loadPackages(py, manifest.packages);
      timings.loadPackages = elapsed();
    }
    phase = 'checking imports';
    checkImports(py, manifest.imports, loadErrors);
    timings.imports = elapsed();
    worker.pyodide = py;
    if (restored) {
      // Only a restored interpreter needs it: one that installed and imported has already run plenty of Python.
      await warmUp(py, timings); // never throws: a failed warm-up is logged and the kernel starts anyway
    }
    post({ type: 'progress', phase: 'warmed', elapsedMs: elapsed() });
    if (!worker.options) {
      // A spare no kernel has taken: it writes the decoded copies while it waits. A kernel that was waiting for it
      // writes them after its first result instead (sendOut).
      setTimeout(() => void flushDecoded(), 0);
    }
    return timings;
  } catch (err) {
    throw new LoadError(`concurrent kernel failed while ${phase}: ${(err as Error)?.message ?? String(err)}`);
  }
}

/**
 * Run the kernel's code once in a throwaway kernel (callback_transport.warm_up): a restored interpreter has run
 * none of it in this page, so the browser's wasm JIT is cold. Stops as soon as a notebook takes this worker.
 */
async function warmUp(py: IPyodide, timings: Record<string, number>): Promise<void> {
  let run: IPyProxy | null = null;
  try {
    run = py.runPython('from concurrent_kernel.callback_transport import warm_up\nwarm_up') as IPyProxy;
    timings.warmUpCells = Number(await (run(WARM_UP_CELLS, () => worker.options === null, true) as Promise<number>));
  } catch (err) {
    log('warn', `warm-up failed (the kernel starts anyway): ${String(err)}`);
  } finally {
    run?.destroy();
  }
  timings.warmUp = elapsed();
}
