/**
 * The files a kernel reads only after its first result (modules not imported yet, type stubs, RECORD files):
 * fetched in the background and written once the kernel is quiet, or at once (fetched synchronously if they have
 * not arrived) when Python needs one before.
 */
import { elapsed, log } from './page';
import { fetchOk, fetchSync, inflatedBytes } from './streams';
import { fillOnOpen, writeFiles } from './files';
import type { IEmscriptenFS, IPyProxy, IPyodide } from './types';

/** A message from the page; completions wait for the later files (jedi reads their type stubs). */
export interface IHeldMessage {
  msgJson: string;
  buffers: ArrayBuffer[];
}

/** Hands held messages on to Python (the page transport sets it: kernelBridge.ts). */
let deliverHeld: (msgJson: string, buffers: ArrayBuffer[]) => void = () => undefined;

export function setHeldDelivery(deliver: (msgJson: string, buffers: ArrayBuffer[]) => void): void {
  deliverHeld = deliver;
}

/**
 * The later file bundle: fetched once a kernel has started (not beside the app and the snapshot, which the first
 * result needs) and written when it arrives; until then an import of one of its modules fetches it synchronously.
 */
export const later = {
  url: '',
  written: true,
  requested: false,
  py: null as IPyodide | null,
  done: null as IPyProxy | null,
  held: [] as IHeldMessage[],
  /** The bundle as it came (gzip data), until it is written (when the kernel is quiet, or when Python needs it). */
  arrived: null as Uint8Array<ArrayBuffer> | null,
  timings: {} as Record<string, number>,
  /** Undo the open hooks of files that wait for the later files (awaitRecords). */
  placeholders: [] as Array<() => void>
};

/**
 * Python side of the later files: a finder consulted after every other (so only by imports that found nothing)
 * that, for a module of the later bundle, has it written at once (fetched synchronously if it has not arrived)
 * and looks again. Returns the function that removes it once the files are written.
 */
const LATER_GLUE = `
def _ck_later_files(fetch_sync, write, top_level_json):
    import importlib, importlib.machinery, json, sys, zlib
    from pyodide.ffi import to_js

    top_level = frozenset(json.loads(top_level_json))

    class LaterFiles:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name.partition(".")[0] not in top_level:
                return None
            try:
                data = fetch_sync(name)
            except Exception as e:
                raise ImportError(f"{name}: the kernel's files for it could not be fetched ({e})", name=name) from None
            if data is not None:
                raw = data.to_bytes()
                write(to_js(zlib.decompress(raw, 31) if raw[:2] == b"\\x1f\\x8b" else raw))
            done()
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    def done():
        if LaterFiles in sys.meta_path:
            sys.meta_path.remove(LaterFiles)
        importlib.invalidate_caches()

    sys.meta_path.append(LaterFiles)
    return done

_ck_later_files
`;

export function awaitLaterFiles(py: IPyodide, url: string, modules: string[], timings: Record<string, number>): void {
  Object.assign(later, { url, written: false, py, timings });
  const install = py.runPython(LATER_GLUE) as IPyProxy;
  try {
    later.done = install(fetchLaterSync, writeLater, JSON.stringify(modules)) as IPyProxy;
  } finally {
    install.destroy();
  }
}

/**
 * Fetch the later files in the background and keep them as they came (`later.arrived`, gzip data): inflating their
 * 25 MB and writing their ~6,000 files takes the worker's thread for a few hundred ms, which a next cell would wait
 * for. writeArrived does that when background.ts finds the kernel quiet, or when a completion waits for them; an
 * import that needs them first inflates and writes them itself (the finder of LATER_GLUE).
 */
export async function fetchLaterFiles(): Promise<void> {
  if (later.written || later.requested) {
    return;
  }
  later.requested = true;
  try {
    const data = new Uint8Array(await (await fetchOk(later.url)).arrayBuffer());
    later.timings['fetched later files'] = elapsed();
    if (!later.written) {
      later.arrived = data; // (an import may have fetched and written them meanwhile)
    }
  } catch (err) {
    // Imports still fetch them synchronously; completions go ahead without them.
    log('warn', `the later files did not load in the background (${String(err)})`);
    later.held.splice(0).forEach(m => deliverHeld(m.msgJson, m.buffers));
    return;
  }
  if (later.held.length) {
    await writeArrived(); // a completion waits for them
  }
}

let inflating: Promise<void> | null = null;

/** Inflate and write the later files if they have arrived and are not written yet. */
export function writeArrived(): Promise<void> {
  const data = later.arrived;
  if (!data || later.written) {
    return Promise.resolve();
  }
  inflating ??= inflatedBytes(new Response(data).body!)
    .then(
      inflated => {
        later.timings['inflated later files'] = elapsed();
        writeLater(inflated);
      },
      err => {
        later.arrived = null;
        log('warn', `the later files could not be inflated (${String(err)}); an import fetches them again`);
      }
    )
    .finally(() => (inflating = null));
  return inflating;
}

function fetchLaterSync(module: string): Uint8Array | null {
  if (later.written) {
    return null;
  }
  if (later.arrived) {
    return later.arrived; // here already (gzip data, which the finder inflates): no download
  }
  log('info', `importing ${module}: fetching the later files now`);
  const data = fetchSync(later.url);
  later.timings.laterFetchedSync = elapsed();
  return data;
}

function writeLater(bytes: Uint8Array): void {
  later.arrived = null;
  if (!later.written) {
    restorePlaceholders(); // written over, as files like any other
    writeFiles(later.py!, bytes);
    laterWritten();
  }
}

/**
 * RECORD files until the later files are written: empty files whose first open writes them all at once, from their
 * own uncompressed bundle fetched synchronously (Python waits inside the open, with the GIL released: JavaScript
 * only, and no synchronous inflate exists here). A failed fetch fails that open (OSError) and the next one tries
 * again: an empty RECORD would read as a package with no files.
 */
export function awaitRecords(py: IPyodide, url: string, paths: string[], timings: Record<string, number>): void {
  const FS = py.FS as unknown as IEmscriptenFS;
  for (const path of paths) {
    py.FS.mkdirTree(path.slice(0, path.lastIndexOf('/')));
    py.FS.writeFile(path, new Uint8Array(0));
    const fill = (): void => {
      log('info', `${path} opened: fetching the package records now`);
      const data = fetchSync(url);
      timings.recordsFetchedSync = elapsed();
      restorePlaceholders();
      writeFiles(py, data);
    };
    later.placeholders.push(fillOnOpen(FS, py.ERRNO_CODES.EIO, FS.lookupPath(path).node, 'the package records', fill));
  }
}

/** Give the files that waited for the later files (awaitRecords) their own operations back. */
function restorePlaceholders(): void {
  later.placeholders.splice(0).forEach(restore => restore());
}

/** Called once the later files are on disk: drop the finder, then deliver the completions that waited. */
function laterWritten(): void {
  later.written = true;
  later.timings.laterFiles = elapsed();
  setTimeout(() => {
    // Not from inside Python (the sync path runs in an import): the finder is removed, then messages flow.
    const done = later.done;
    later.done = null;
    if (done) {
      try {
        done();
      } finally {
        done.destroy();
      }
    }
    later.held.splice(0).forEach(m => deliverHeld(m.msgJson, m.buffers));
  }, 0);
}
