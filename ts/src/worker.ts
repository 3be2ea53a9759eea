/**
 * Web Worker running Pyodide and the concurrent-kernel core.
 *
 * The main thread posts raw Jupyter messages (JSON with a "channel" key plus
 * buffers); they are handed to the core's callback transport one call per
 * message. Every outgoing message comes back through one JS callback and is
 * posted to the main thread. Everything is loaded from the site (indexURL).
 */
import { ContentsAPI, DriveFS } from '@jupyterlite/services/lib/contents/drivefs';
import type { TDriveMethod, TDriveRequest, TDriveResponse } from '@jupyterlite/services/lib/contents/drivefs';
import { BrotliDecStream, BrotliStreamResultCode, initSync as initBrotli } from 'brotli-dec-wasm/web';
import {
  cachedDecoded,
  cachedResponse,
  dropDecoded,
  flushDecoded,
  keepDecoded,
  openDecodedCache
} from './decodedCache';

import {
  DRIVE_REPLIED,
  DRIVE_TOO_LARGE,
  DRIVE_WAITING,
  FromWorker,
  IInitOptions,
  STDIN_BUFFER_BYTES,
  STDIN_HEADER_BYTES,
  ToWorker
} from './protocol';

/* Minimal structural types of the Pyodide API used here. */
interface IPyProxy {
  (...args: unknown[]): unknown;
  callPromising?: (...args: unknown[]) => Promise<unknown>;
  destroy(): void;
}
interface IPyodide {
  loadPackage(
    names: string[],
    options: { messageCallback: (m: string) => void; errorCallback: (m: string) => void }
  ): Promise<unknown>;
  runPython(code: string, options?: { globals?: unknown }): unknown;
  runPythonAsync(code: string): Promise<unknown>;
  globals: { get(name: string): IPyProxy };
  setInterruptBuffer(buffer: Int32Array): void;
  checkInterrupt(): void;
  FS: {
    mkdirTree(path: string): void;
    writeFile(path: string, data: Uint8Array, opts?: { canOwn?: boolean }): void;
    mount(type: unknown, opts: unknown, mountpoint: string): unknown;
    chdir(path: string): void;
    ErrnoError: new (errno: number) => Error;
  };
  PATH: unknown;
  ERRNO_CODES: Record<string, number>;
  version: string;
  _api: { lockfile_packages: Record<string, { file_name: string }> };
}
interface ISnapshotFiles {
  memory: string;
  files: string;
  /** The files a kernel reads only after its first result (make_snapshot.mjs), and their top-level modules. */
  later?: string;
  laterModules?: string[];
  /**
   * The standard library zip the snapshot was taken with (its name and size): Python reads it only for modules the
   * snapshot did not import, so it comes after the first result, or at once when Python opens it before.
   */
  stdlib?: { name: string; size: number };
  /**
   * RECORD files (package tools read them, a first result does not): in the later bundle, and also in a bundle of
   * their own, uncompressed, for an open before the later files arrive (make_snapshot.mjs).
   */
  records?: { bundle: string; paths: string[] };
  /**
   * The memory and the files also as brotli data (a third smaller than gzip), with their sizes once decoded and the
   * decoder (a wasm module, gzipped): Chromium's DecompressionStream inflates only gzip and deflate.
   */
  brotli?: {
    decoder: string;
    memory: string;
    memorySize: number;
    /** The memory file's bytes at offset..+length are XORed with a fresh module's memory at address..+length. */
    memoryDelta?: { offset: number; address: number; length: number };
    files: string;
    filesSize: number;
    wasm?: string;
  };
}
interface IManifest {
  packages: string[];
  imports: string[];
  /** Wheel files the site ships beside the lock; the lock's other entries are the Pyodide distribution's. */
  shipped?: string[];
  /** Written by ts/scripts/make_snapshot.mjs (file names relative to indexURL). */
  snapshot?: ISnapshotFiles;
  /** Pyodide files the site also ships gzipped, as NAME.gz (a host need not compress them). */
  gzipped?: string[];
}

const post = (msg: FromWorker, transfer: Transferable[] = []): void =>
  (self as unknown as Worker).postMessage(msg, transfer);

/** Log lines of a spare worker, kept until a kernel takes it (nobody listens before). */
let unheardLogs: FromWorker[] | null = [];

function log(level: 'info' | 'warn' | 'error', text: string): void {
  if (unheardLogs) {
    unheardLogs.push({ type: 'log', level, text });
  } else {
    post({ type: 'log', level, text });
  }
}

const t0 = performance.now();
const elapsed = (): number => Math.round(performance.now() - t0);

/**
 * Responses started ahead of the requests Pyodide makes itself (wasm, standard library, lock), by URL: loadPyodide
 * asks for them only once the snapshot has arrived, and its files may be served gzipped (manifest.gzipped).
 */
const early = new Map<string, Promise<Response>>();
const plainFetch = self.fetch.bind(self);
self.fetch = ((input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  const started = early.get(input instanceof Request ? input.url : String(input));
  if (started) {
    early.delete(input instanceof Request ? input.url : String(input));
    return started;
  }
  return plainFetch(input, init);
}) as typeof fetch;

const CONTENT_TYPES: Record<string, string> = {
  wasm: 'application/wasm',
  mjs: 'text/javascript',
  json: 'application/json'
};

/**
 * The wasm module, compiled while it downloads (and while the snapshot downloads), not once Pyodide asks for it:
 * Pyodide's instantiateStreaming of the marker response it gets from fetch instantiates this module instead.
 */
let compiledWasm: Promise<WebAssembly.Module> | null = null;
const compiledMarker = new WeakSet<Response>();
const plainInstantiateStreaming = WebAssembly.instantiateStreaming.bind(WebAssembly);
WebAssembly.instantiateStreaming = (async (
  source: Response | PromiseLike<Response>,
  imports?: WebAssembly.Imports
): Promise<WebAssembly.WebAssemblyInstantiatedSource> => {
  const resp = await source;
  const made =
    compiledWasm && compiledMarker.has(resp)
      ? await compiledWasm.then(async module => ({ module, instance: await WebAssembly.instantiate(module, imports) }))
      : await plainInstantiateStreaming(resp, imports);
  const memory = made.instance.exports.memory;
  if (onInstantiated && memory instanceof WebAssembly.Memory) {
    onInstantiated(memory); // before any of the module's code has run: its memory is its data segments
  }
  return made;
}) as typeof WebAssembly.instantiateStreaming;

/** Called with the memory of the next module instantiated, before it runs (the snapshot's delta is undone then). */
let onInstantiated: ((memory: WebAssembly.Memory) => void) | null = null;

/** Start fetching BASE + NAME now (its .gz if the site ships one), for Pyodide to find when it asks. */
function fetchEarly(
  base: string,
  name: string,
  gzipped: boolean,
  timings: Record<string, number>,
  brotliName?: string
): void {
  const url = base + name;
  const type = CONTENT_TYPES[name.split('.').pop()!];
  const onDone = (): number => (timings[`fetched ${name}`] = elapsed());
  const gzip = (): Promise<Response> =>
    (gzipped ? plainFetch(url + '.gz') : plainFetch(url)).then(async resp => {
      if (!resp.ok) {
        return gzipped ? plainFetch(url) : resp;
      }
      const body = await gunzipped(resp.body!, onDone);
      return new Response(body, { headers: { 'Content-Type': type ?? resp.headers.get('Content-Type') ?? '' } });
    });
  const fetched = (): Promise<Response> =>
    brotliName
      ? fetchBrotliStream(base + brotliName, onDone).then(
          body => {
            // The decoded bytes also go to the cache (decodedCache.ts), written after the first result.
            const [use, keep] = body.tee();
            keepDecoded(base + brotliName, new Response(keep).blob(), type);
            return new Response(use, { headers: { 'Content-Type': type ?? '' } });
          },
          err => {
            log('warn', `${brotliName} not used (${String(err)}): fetching ${gzipped ? name + '.gz' : name}`);
            return gzip();
          }
        )
      : gzip();
  if (name.endsWith('.wasm')) {
    // Compiled from the decoded copy a reload finds in the cache (decodedCache.ts), else as it downloads.
    const cached = brotliName ? cachedResponse(base + brotliName) : Promise.resolve(null);
    compiledWasm = cached.then(async resp => {
      if (resp) {
        timings[`cached ${name}`] = elapsed();
        try {
          return await WebAssembly.compileStreaming(resp);
        } catch (err) {
          log('warn', `the cached ${name} did not compile (${String(err)}): fetching it`);
          void dropDecoded(base + brotliName!);
        }
      }
      return WebAssembly.compileStreaming(await fetched());
    });
    compiledWasm.then(() => (timings[`compiled ${name}`] = elapsed())).catch(() => undefined);
    const marker = new Response(null);
    compiledMarker.add(marker);
    early.set(url, Promise.resolve(marker));
  } else {
    const got = fetched();
    got.catch(() => undefined);
    early.set(url, got);
  }
}

/**
 * READER's bytes as a stream again, after HEAD (chunks already read from it; FINISHED: it had ended there). ONDONE
 * is called when the last byte has arrived.
 */
function readerStream(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  onDone?: () => void,
  head: Uint8Array[] = [],
  finished = false
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      head.forEach(chunk => controller.enqueue(chunk));
      if (finished) {
        onDone?.();
        controller.close();
      }
    },
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) {
        onDone?.();
        controller.close();
      } else {
        controller.enqueue(value);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    }
  });
}

/**
 * The bytes of BODY, inflated as they arrive if they are gzip data (a host may or may not have undone the gzip
 * itself, with Content-Encoding: so look at the bytes). ONDONE is called when the last byte has arrived.
 */
async function gunzipped(body: ReadableStream<Uint8Array>, onDone?: () => void): Promise<ReadableStream<Uint8Array>> {
  const reader = body.getReader();
  const head: Uint8Array[] = [];
  let seen = 0;
  let finished = false;
  while (seen < 2) {
    const { done, value } = await reader.read();
    if (done) {
      finished = true;
      break;
    }
    head.push(value);
    seen += value.byteLength;
  }
  const first = head[0];
  const isGzip = !!first && (first.byteLength > 1 ? first[1] : head[1][0]) === 0x8b && first[0] === 0x1f;
  const stream = readerStream(reader, onDone, head, finished);
  const inflate = new DecompressionStream('gzip') as unknown as TransformStream<Uint8Array, Uint8Array>;
  return isGzip ? stream.pipeThrough(inflate) : stream;
}

let options: IInitOptions | null = null;
let pyodide: IPyodide | null = null;
let loadedManifest: IManifest | null = null;
let receive: IPyProxy | null = null;
let interruptKernel: IPyProxy | null = null;
let interruptArray: Int32Array | null = null;
/** Messages that arrived before the kernel was started. */
let queue: Array<{ msgJson: string; buffers: ArrayBuffer[] }> = [];
let failed = false;

/** Python glue: adapts the JS callbacks to the core's callback transport. */
const GLUE = `
from pyodide.ffi import to_js as _to_js

def _ck_start(js_send, js_input, services_json):
    from concurrent_kernel import callback_transport

    def send(msg_json, buffers):
        bufs = [bytes(b) for b in buffers] if buffers else []
        js_send(msg_json, _to_js(bufs))

    def input_request(msg_json):
        return js_input(msg_json)

    handle = callback_transport.start(send, input_request if js_input is not None else None)
    from concurrent_kernel.services import packages
    packages.setup(handle.kernel, services_json)

    def receive(msg_json, buffers):
        handle.receive(msg_json, [b.to_bytes() for b in buffers] if buffers else None)

    return receive, handle.interrupt
`;

function sendOut(msgJson: string, buffers: Uint8Array[] | null | undefined): void {
  if (!firstReplySent && msgJson.includes('"execute_reply"')) {
    firstReplySent = true;
    setTimeout(loadLaterFiles, 0);
    setTimeout(() => void flushDecoded(), 0);
    setTimeout(loadStdlib, STDLIB_AFTER_FIRST_REPLY_MS);
  }
  const out: ArrayBuffer[] = [];
  for (const b of buffers ?? []) {
    const copy = new Uint8Array(b.byteLength);
    copy.set(b);
    out.push(copy.buffer);
  }
  post({ type: 'msg', msgJson, buffers: out }, out);
}

/** Synchronous stdin: Atomics on a SharedArrayBuffer, else sync XHR to the service worker. */
function inputRequest(msgJson: string): string {
  const opts = options!;
  if (opts.stdinBuffer) {
    const state = new Int32Array(opts.stdinBuffer, 0, 2);
    Atomics.store(state, 0, 0);
    post({ type: 'input_request', msgJson });
    Atomics.wait(state, 0, 0);
    const len = Atomics.load(state, 1);
    const bytes = new Uint8Array(opts.stdinBuffer, STDIN_HEADER_BYTES, len).slice();
    Atomics.store(state, 0, 0);
    return new TextDecoder().decode(bytes);
  }
  if (!opts.browsingContextId) {
    throw new Error(
      'input() is unavailable: the page is not cross-origin isolated and no service worker is active'
    );
  }
  const xhr = new XMLHttpRequest();
  xhr.open('POST', new URL('api/stdin/kernel', opts.baseUrl).href, false);
  xhr.send(
    JSON.stringify({ browsingContextId: opts.browsingContextId, data: JSON.parse(msgJson) })
  );
  const reply = JSON.parse(xhr.responseText);
  if (reply && typeof reply === 'object' && 'error' in reply) {
    throw new Error(`stdin request failed: ${reply.error}`);
  }
  return JSON.stringify(reply);
}

function deliver(msgJson: string, buffers: ArrayBuffer[]): void {
  if (!later.written && msgJson.includes('complete_request') && msgTypeOf(msgJson) === 'complete_request') {
    later.held.push({ msgJson, buffers }); // completions read jedi's type stubs: they come with the later files
    return;
  }
  const bufs = buffers.map(b => new Uint8Array(b));
  try {
    const r = receive!;
    if (r.callPromising) {
      // Entering Python this way lets the core block on coroutines (JSPI).
      r.callPromising(msgJson, bufs).catch(err => reportHandlerError(msgJson, err));
    } else {
      r(msgJson, bufs);
    }
  } catch (err) {
    reportHandlerError(msgJson, err);
  }
}

function msgTypeOf(msgJson: string): string | undefined {
  try {
    return (JSON.parse(msgJson) as { header?: { msg_type?: string } }).header?.msg_type;
  } catch {
    return undefined;
  }
}

function reportHandlerError(msgJson: string, err: unknown): void {
  post({ type: 'handler-error', msgJson, error: String((err as Error)?.message ?? err) });
}

/** Cells the warm-up runs at most (measured: round trips reach their steady speed after ~50-100). */
const WARM_UP_CELLS = 60;

/** Error carrying the loading phase it happened in. */
class LoadError extends Error {}

let warming: Promise<Record<string, number>> | null = null;

/**
 * Phase 1 (may run ahead of any kernel, in a spare worker): Python from the snapshot (or Pyodide plus the
 * packages), the import check, and the JIT warm-up.
 */
function warm(indexURL: string): Promise<Record<string, number>> {
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
    pyodideScript = import(/* webpackIgnore: true */ base + 'pyodide.mjs'); // with the manifest, not after the snapshot
    pyodideScript.catch(() => undefined);
    const manifestResp = await fetch(base + 'ck-manifest.json');
    if (!manifestResp.ok) {
      throw new Error(`HTTP ${manifestResp.status} for ${manifestResp.url}`);
    }
    const manifestText = await manifestResp.text();
    const manifest = JSON.parse(manifestText) as IManifest;
    openDecodedCache(base, manifestText);
    loadedManifest = manifest;
    timings.manifest = elapsed();
    timings.origin = performance.timeOrigin + t0;
    // Everything at once: Pyodide's own files would otherwise be asked for only after the snapshot arrived.
    const gzipped = new Set(manifest.gzipped ?? []);
    const brotli = manifest.snapshot?.brotli;
    if (brotli) {
      brotliReady = loadBrotli(base + brotli.decoder);
      brotliReady.catch(() => undefined);
    }
    for (const name of ['pyodide.asm.wasm', 'python_stdlib.zip', 'pyodide-lock.json']) {
      if (name !== manifest.snapshot?.stdlib?.name) {
        fetchEarly(base, name, gzipped.has(name), timings, name === 'pyodide.asm.wasm' ? brotli?.wasm : undefined);
      }
    }
    moduleFactory = loadModuleFactory(base, gzipped.has('pyodide.asm.mjs'), timings);
    moduleFactory.catch(() => undefined);
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
    pyodide = py;
    if (restored) {
      // Only a restored interpreter needs it: one that installed and imported has already run plenty of Python.
      await warmUp(py, timings); // never throws: a failed warm-up is logged and the kernel starts anyway
    }
    post({ type: 'progress', phase: 'warmed', elapsedMs: elapsed() });
    if (!options) {
      // A spare no kernel has taken: it writes the decoded copies while it waits. A kernel that was waiting for it
      // writes them after its first result instead (sendOut).
      setTimeout(() => void flushDecoded(), 0);
    }
    return timings;
  } catch (err) {
    throw new LoadError(`concurrent kernel failed while ${phase}: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Pyodide's module factory (pyodide.asm.mjs), loaded as soon as the manifest says whether it comes gzipped. */
let moduleFactory: Promise<(settings: unknown) => Promise<IModule>> | null = null;

interface IModule {
  growMemory(bytes: number): void;
  FS: IEmscriptenFS;
  ERRNO_CODES: Record<string, number>;
}

/** The parts of Emscripten's FS (MEMFS) that a file read on first open needs. */
interface IEmscriptenNode {
  contents: Uint8Array | null;
  usedBytes: number;
  stream_ops: { open?: (stream: unknown) => void };
  node_ops: { getattr(node: IEmscriptenNode): { size: number } };
}
interface IEmscriptenFS {
  readdir(path: string): string[];
  lookupPath(path: string): { node: IEmscriptenNode };
  ErrnoError: new (errno: number) => Error;
}

async function loadModuleFactory(
  base: string,
  gzipped: boolean,
  timings: Record<string, number>
): Promise<(settings: unknown) => Promise<IModule>> {
  let url = base + 'pyodide.asm.mjs';
  if (gzipped) {
    const resp = await plainFetch(url + '.gz');
    if (resp.ok) {
      const text = await new Response(await gunzipped(resp.body!)).blob();
      url = URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
    }
  }
  try {
    const factory = (await import(/* webpackIgnore: true */ url)).default;
    timings.moduleScript = elapsed();
    return factory;
  } finally {
    if (url.startsWith('blob:')) {
      URL.revokeObjectURL(url);
    }
  }
}

/** pyodide.mjs, imported as the worker starts. */
let pyodideScript: Promise<{ loadPyodide(options: unknown): Promise<unknown> }> | null = null;

async function loadPyodideFrom(base: string, extra: Record<string, unknown>): Promise<IPyodide> {
  const mod = await (pyodideScript ?? import(/* webpackIgnore: true */ base + 'pyodide.mjs'));
  if (moduleFactory && !('createPyodideModule' in extra)) {
    extra = { ...extra, createPyodideModule: await moduleFactory };
  }
  return (await mod.loadPyodide({
    indexURL: base,
    lockFileURL: base + 'pyodide-lock.json',
    stdout: (text: string) => log('info', text),
    stderr: (text: string) => log('warn', text),
    ...extra
  })) as IPyodide;
}

/** Fetch a file; gzip data (our snapshot files) is inflated as it arrives, whatever the server's Content-Encoding. */
async function fetchBytes(url: string, timings: Record<string, number>, name: string): Promise<Uint8Array> {
  const resp = await fetch(url);
  if (!resp.ok) {
    throw new Error(`HTTP ${resp.status} for ${resp.url}`);
  }
  const body = await gunzipped(resp.body!, () => (timings[`fetched ${name}`] = elapsed()));
  const data = new Uint8Array(await new Response(body).arrayBuffer());
  timings[`inflated ${name}`] = elapsed();
  return data;
}

/**
 * The decoded bytes of the brotli file at URL as they arrive, once the decoder is ready (rejects if it is not, or
 * the file is missing). A host that sends it with Content-Encoding: br has had the browser decode it already.
 */
async function fetchBrotliStream(url: string, onDone?: () => void): Promise<ReadableStream<Uint8Array>> {
  const resp = await plainFetch(url); // asked for beside the decoder, not after it
  if (!resp.ok) {
    throw new Error(`HTTP ${resp.status} for ${resp.url}`);
  }
  try {
    await (brotliReady ?? Promise.reject(new Error('no brotli decoder')));
  } catch (err) {
    void resp.body?.cancel().catch(() => undefined);
    throw err;
  }
  const reader = resp.body!.getReader();
  if (/\bbr\b/.test(resp.headers.get('Content-Encoding') ?? '')) {
    return readerStream(reader, onDone);
  }
  const decoder = new BrotliDecStream();
  let code = BrotliStreamResultCode.NeedsMoreInput;
  let freed = false;
  const free = (): void => {
    if (!freed) {
      freed = true;
      decoder.free();
    }
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        // Read until some output is enqueued: a pull that enqueues nothing is not called again, and a small chunk
        // (a slow link's) can leave all its bytes inside the decoder; the reader then waited forever (a hang seen
        // at 40 Mbit/s with one build's snapshot and not another's).
        let enqueued = false;
        while (!enqueued) {
          const { done, value } = await reader.read();
          if (done) {
            onDone?.();
            free();
            if (code !== BrotliStreamResultCode.ResultSuccess) {
              throw new Error(`${url}: the brotli data ends early`);
            }
            controller.close();
            return;
          }
          let used = 0;
          do {
            const result = decoder.dec(value.subarray(used), BROTLI_OUTPUT_CHUNK);
            const chunk = result.buf;
            code = result.code;
            used += result.input_offset;
            result.free();
            if (chunk.byteLength) {
              controller.enqueue(chunk);
              enqueued = true;
            }
          } while (code === BrotliStreamResultCode.NeedsMoreOutput);
          if (code !== BrotliStreamResultCode.NeedsMoreInput && code !== BrotliStreamResultCode.ResultSuccess) {
            throw new Error(`${url}: brotli decoder error ${code}`);
          }
        }
      } catch (err) {
        free();
        void reader.cancel().catch(() => undefined);
        controller.error(err);
      }
    },
    cancel(reason) {
      free();
      return reader.cancel(reason);
    }
  });
}

/** The brotli decoder, compiled and set up (manifest.snapshot.brotli.decoder). */
let brotliReady: Promise<void> | null = null;

async function loadBrotli(url: string): Promise<void> {
  const resp = await plainFetch(url);
  if (!resp.ok) {
    throw new Error(`HTTP ${resp.status} for ${resp.url}`);
  }
  const body = await gunzipped(resp.body!);
  initBrotli({
    module: await WebAssembly.compileStreaming(new Response(body, { headers: { 'Content-Type': 'application/wasm' } }))
  });
}

/** Bytes out of one call of the brotli decoder (the rest of the input waits for the next call). */
const BROTLI_OUTPUT_CHUNK = 1 << 20;

/**
 * Fetch brotli data of SIZE bytes decoded, decoded as it arrives; if that fails (no decoder, a host that decoded
 * it already, ...), fetch the gzip file at FALLBACK instead.
 */
async function fetchBrotli(
  url: string,
  size: number,
  timings: Record<string, number>,
  name: string,
  fallback: string,
  decoded?: (bytes: Uint8Array<ArrayBuffer>) => void
): Promise<Uint8Array> {
  try {
    return await decodeBrotli(url, size, timings, name, decoded);
  } catch (err) {
    log('warn', `${url} not used (${String(err)}): fetching ${fallback}`);
    return fetchBytes(fallback, timings, name);
  }
}

/** URL's bytes from the decoded cache, else decoded from the brotli file; then DECODED sees them (if given, it keeps
 * them for the cache itself: they are not the cached bytes yet). */
async function decodeBrotli(
  url: string,
  size: number,
  timings: Record<string, number>,
  name: string,
  decoded?: (bytes: Uint8Array<ArrayBuffer>) => void
): Promise<Uint8Array> {
  const cached = await cachedDecoded(url, size);
  if (cached) {
    timings[`cached ${name}`] = elapsed();
    return cached;
  }
  const reader = (await fetchBrotliStream(url, () => (timings[`fetched ${name}`] = elapsed()))).getReader();
  const out = new Uint8Array(size);
  let filled = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    if (filled + value.byteLength > size) {
      void reader.cancel();
      throw new Error(`it decodes to more than ${size} bytes`);
    }
    out.set(value, filled);
    filled += value.byteLength;
  }
  if (filled !== size) {
    throw new Error(`it decodes to ${filled} bytes, not ${size}`);
  }
  timings[`inflated ${name}`] = elapsed();
  if (decoded) {
    decoded(out);
  } else {
    keepDecoded(url, Promise.resolve(out));
  }
  return out;
}

/**
 * Start Python from the memory snapshot written at build time (ts/scripts/make_snapshot.mjs): the interpreter
 * with every package imported, so neither the installs nor the imports run here. The snapshot holds memory
 * only, so the installed files are written back from their bundle.
 */
async function restoreSnapshot(
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
  const createModule = await (moduleFactory ?? loadModuleFactory(base, false, timings));
  const bytes = await memory;
  onInstantiated = undo;
  if (snapshot.stdlib) {
    // Pyodide writes what it gets as the zip: an empty file here, the real one behind it (deferStdlib).
    early.set(base + snapshot.stdlib.name, Promise.resolve(new Response(new Uint8Array(0))));
  }
  const py = await loadPyodideFrom(base, {
    _loadSnapshot: bytes,
    // Pyodide asks for INITIAL_MEMORY of the snapshot's size, but this build creates its memory inside the wasm
    // module and ignores it: grow the memory before the restore copies the snapshot in.
    createPyodideModule: async (settings: unknown) => {
      const module = await createModule(settings).finally(() => (onInstantiated = null));
      timings.instantiated = elapsed();
      if (undo && !undone) {
        throw new Error("the module was instantiated without the snapshot's delta being undone");
      }
      module.growMemory(bytes.length);
      if (snapshot.stdlib) {
        deferStdlib(module, base + snapshot.stdlib.name, snapshot.stdlib.size, timings);
      }
      return module;
    }
  });
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

/**
 * The standard library zip behind a snapshot: Python already imported what a first result needs from it, and
 * zipimport's directory of it is in the snapshot, so the file is read only for other modules (or tracebacks through
 * them). Until it is fetched in the background (with the later files), the first open of it fetches it synchronously.
 */
const stdlib = {
  url: '',
  size: 0,
  node: null as IEmscriptenNode | null,
  loaded: true,
  requested: false,
  restore: null as (() => void) | null,
  timings: {} as Record<string, number>
};

/** Make Pyodide's (empty) standard library zip a file filled on its first open or when the background load ends. */
function deferStdlib(module: IModule, url: string, size: number, timings: Record<string, number>): void {
  const FS = module.FS;
  const name = FS.readdir('/lib').find(n => /^python\d+\.zip$/.test(n));
  if (!name) {
    throw new Error('Pyodide wrote no standard library zip in /lib');
  }
  const node = FS.lookupPath(`/lib/${name}`).node;
  const nodeOps = node.node_ops;
  Object.assign(stdlib, { url, size, node, loaded: false, timings });
  // An OSError if the fetch fails: the import fails with it.
  const restoreOpen = fillOnOpen(FS, module.ERRNO_CODES.EIO, node, 'the standard library', () => {
    if (!stdlib.loaded) {
      fillStdlib(fetchStdlibSync());
    }
  });
  stdlib.restore = () => {
    restoreOpen();
    node.node_ops = nodeOps;
  };
  node.node_ops = {
    ...nodeOps,
    getattr(n: IEmscriptenNode): { size: number } {
      const attr = nodeOps.getattr(n);
      if (!stdlib.loaded) {
        attr.size = stdlib.size;
      }
      return attr;
    }
  };
}

function fetchStdlibSync(): Uint8Array {
  log('info', 'Python opened its standard library zip: fetching it now');
  const data = fetchSync(stdlib.url);
  stdlib.timings.stdlibFetchedSync = elapsed();
  return data;
}

/**
 * Make NODE's opens run FILL first (Python waits inside the open), until the returned function puts the node's own
 * operations back (FILL or the background load does). A failed FILL fails that open with EIO, an OSError in Python,
 * and the next open tries again. WHAT names the file in the log.
 */
function fillOnOpen(FS: IEmscriptenFS, eio: number, node: IEmscriptenNode, what: string, fill: () => void): () => void {
  const streamOps = node.stream_ops;
  // A copy: MEMFS shares these tables between all its files.
  node.stream_ops = {
    ...streamOps,
    open(stream: unknown): void {
      try {
        fill();
      } catch (err) {
        log('error', `${what} could not be fetched: ${String(err)}`);
        throw new FS.ErrnoError(eio);
      }
      streamOps.open?.(stream);
    }
  };
  return () => {
    node.stream_ops = streamOps;
  };
}

/** GET URL synchronously (a worker may block: Python is waiting inside an open or an import). */
function fetchSync(url: string): Uint8Array {
  const xhr = new XMLHttpRequest();
  xhr.open('GET', url, false);
  xhr.responseType = 'arraybuffer';
  xhr.send();
  if (xhr.status !== 200) {
    throw new Error(`HTTP ${xhr.status} for ${url}`);
  }
  return new Uint8Array(xhr.response as ArrayBuffer);
}

/** Put the zip's bytes in place: they must be those the snapshot was taken with (zipimport's offsets). */
function fillStdlib(data: Uint8Array): void {
  if (stdlib.loaded) {
    return;
  }
  if (data.byteLength !== stdlib.size) {
    throw new Error(`${stdlib.url} is ${data.byteLength} bytes, the snapshot was taken with ${stdlib.size}`);
  }
  const node = stdlib.node!;
  node.contents = data;
  node.usedBytes = data.byteLength;
  stdlib.loaded = true;
  stdlib.restore?.();
  stdlib.timings.stdlib = elapsed();
}

function loadStdlib(): void {
  if (stdlib.loaded || stdlib.requested) {
    return;
  }
  stdlib.requested = true;
  plainFetch(stdlib.url)
    .then(async resp => {
      if (!resp.ok) {
        throw new Error(`HTTP ${resp.status} for ${resp.url}`);
      }
      fillStdlib(new Uint8Array(await resp.arrayBuffer()));
    })
    .catch(err => log('warn', `the standard library did not load in the background (${String(err)})`));
}

/**
 * The later file bundle: fetched once a kernel has started (not beside the app and the snapshot, which the first
 * result needs) and written when it arrives; until then an import of one of its modules fetches it synchronously.
 */
const later = {
  url: '',
  written: true,
  requested: false,
  py: null as IPyodide | null,
  done: null as IPyProxy | null,
  held: [] as Array<{ msgJson: string; buffers: ArrayBuffer[] }>,
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

function awaitLaterFiles(py: IPyodide, url: string, modules: string[], timings: Record<string, number>): void {
  Object.assign(later, { url, written: false, py, timings });
  const install = py.runPython(LATER_GLUE) as IPyProxy;
  try {
    later.done = install(fetchLaterSync, writeLater, JSON.stringify(modules)) as IPyProxy;
  } finally {
    install.destroy();
  }
}

/**
 * When the standard library is fetched after the first execute_reply: the page usually still loads some of its own
 * scripts before it shows the result (measured at 40 Mbit/s: 0.6 s idle, over 1 s under load), and it would share
 * the link. The later files come at once: a first traceback needs some of them (tests/browser/test_packages.py
 * goes offline right after its first cell).
 */
const STDLIB_AFTER_FIRST_REPLY_MS = 3000;
let firstReplySent = false;

/** When the later files are fetched if no cell has answered by then (ms after the kernel started). */
const LATER_FILES_DELAY_MS = 3000;

function loadLaterFiles(): void {
  if (later.written || later.requested) {
    return;
  }
  later.requested = true;
  const py = later.py!;
  fetchBytes(later.url, later.timings, 'later files').then(
    data => {
      writeLater(data);
    },
    err => {
      // Imports still fetch them synchronously; completions go ahead without them.
      log('warn', `the later files did not load in the background (${String(err)})`);
      later.held.splice(0).forEach(m => deliver(m.msgJson, m.buffers));
    }
  );
}

function fetchLaterSync(module: string): Uint8Array | null {
  if (later.written) {
    return null;
  }
  log('info', `importing ${module}: fetching the later files now`);
  const data = fetchSync(later.url);
  later.timings.laterFetchedSync = elapsed();
  return data;
}

function writeLater(bytes: Uint8Array): void {
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
function awaitRecords(py: IPyodide, url: string, paths: string[], timings: Record<string, number>): void {
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
    later.held.splice(0).forEach(m => deliver(m.msgJson, m.buffers));
  }, 0);
}

/**
 * Run the kernel's code once in a throwaway kernel (callback_transport.warm_up): a restored interpreter has run
 * none of it in this page, so the browser's wasm JIT is cold. Stops as soon as a notebook takes this worker.
 */
async function warmUp(py: IPyodide, timings: Record<string, number>): Promise<void> {
  let run: IPyProxy | null = null;
  try {
    run = py.runPython('from concurrent_kernel.callback_transport import warm_up\nwarm_up') as IPyProxy;
    timings.warmUpCells = Number(await (run(WARM_UP_CELLS, () => options === null) as Promise<number>));
  } catch (err) {
    log('warn', `warm-up failed (the kernel starts anyway): ${String(err)}`);
  } finally {
    run?.destroy();
  }
  timings.warmUp = elapsed();
}

/** Write the (inflated) file bundle: u32 header length, JSON [[path, size], ...], then the contents in order. */
function writeFiles(py: IPyodide, bundle: Uint8Array): void {
  const view = new DataView(bundle.buffer, bundle.byteOffset, bundle.byteLength);
  const headerLength = view.getUint32(0, true);
  const entries = JSON.parse(new TextDecoder().decode(bundle.subarray(4, 4 + headerLength))) as [string, number][];
  let offset = 4 + headerLength;
  const made = new Set<string>();
  for (const [path, size] of entries) {
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (!made.has(dir)) {
      py.FS.mkdirTree(dir);
      made.add(dir);
    }
    py.FS.writeFile(path, bundle.subarray(offset, offset + size), { canOwn: true });
    offset += size;
  }
  if (offset !== bundle.byteLength) {
    throw new Error(`the file bundle is ${bundle.byteLength} bytes, its header describes ${offset}`);
  }
}

/** Install the wheels; returns what loadPackage reported as errors (it does not throw for a missing file). */
async function loadPackages(py: IPyodide, packages: string[]): Promise<string[]> {
  const errors: string[] = [];
  await py.loadPackage(packages, {
    messageCallback: () => undefined,
    errorCallback: (m: string) => errors.push(m)
  });
  return errors;
}

/** loadPackage does not fail when a file is missing, and a snapshot's files come apart from it: check both. */
function checkImports(py: IPyodide, imports: string[], loadErrors: string[]): void {
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

/** Milliseconds a file-system call waits for the page before failing with EIO (the page may be gone). */
const DRIVE_TIMEOUT_MS = 60_000;

/** A drive request answered by the page (DriveContentsProcessor) while this worker waits on driveBuffer. */
function driveRequest(request: unknown): unknown {
  const py = pyodide!;
  const fail = (): never => {
    throw new py.FS.ErrnoError(py.ERRNO_CODES.EIO);
  };
  const sab = options!.driveBuffer!;
  const state = new Int32Array(sab, 0, 2);
  Atomics.store(state, 0, DRIVE_WAITING);
  post({ type: 'drive-request', request });
  if (Atomics.wait(state, 0, DRIVE_WAITING, DRIVE_TIMEOUT_MS) === 'timed-out') {
    fail();
  }
  const length = Atomics.load(state, 1);
  let bytes: Uint8Array;
  if (Atomics.load(state, 0) === DRIVE_REPLIED) {
    bytes = new Uint8Array(sab, 8, length).slice();
  } else if (Atomics.load(state, 0) === DRIVE_TOO_LARGE) {
    const big = new SharedArrayBuffer(8 + length);
    const bigState = new Int32Array(big, 0, 2);
    post({ type: 'drive-fetch', buffer: big });
    if (Atomics.wait(bigState, 0, DRIVE_WAITING, DRIVE_TIMEOUT_MS) === 'timed-out') {
      fail();
    }
    bytes = new Uint8Array(big, 8, length).slice();
  } else {
    return fail();
  }
  const reply = JSON.parse(new TextDecoder().decode(bytes)) as { response?: unknown; error?: string };
  if (reply.error !== undefined) {
    log('warn', `drive request failed: ${reply.error}`);
    fail();
  }
  return reply.response ?? null;
}

/** DriveFS's contents API over driveBuffer (cross-origin isolated pages), as the stock kernel does with SABs. */
class SharedBufferContentsAPI extends ContentsAPI {
  request<T extends TDriveMethod>(data: TDriveRequest<T>): TDriveResponse<T> {
    return driveRequest(data) as TDriveResponse<T>;
  }
}

class KernelDriveFS extends DriveFS {
  createAPI(opts: DriveFS.IOptions): ContentsAPI {
    // Called from DriveFS's constructor: read the mode from the module's options, not from a field.
    return options?.drive === 'shared-buffer' ? new SharedBufferContentsAPI(opts) : super.createAPI(opts);
  }
}

/**
 * Mount JupyterLite's contents at /drive with its DriveFS and make the notebook's folder the working directory.
 * Done after the snapshot restore (the mount lives in JS, outside the snapshot). Returns a notice when not mounted.
 */
function mountDrive(py: IPyodide, opts: IInitOptions): string | null {
  if (!opts.drive || opts.drive === 'none') {
    return opts.driveNotice ?? 'the notebook\'s files are not available to Python here';
  }
  let driveName = '';
  let localPath = opts.location ?? '';
  const colon = localPath.indexOf(':');
  if (colon >= 0) {
    driveName = localPath.slice(0, colon);
    localPath = localPath.slice(colon + 1);
  }
  const mountpoint = '/drive';
  try {
    const driveFS = new KernelDriveFS({
      FS: py.FS as never,
      PATH: py.PATH as never,
      ERRNO_CODES: py.ERRNO_CODES as never,
      baseUrl: opts.baseUrl,
      driveName,
      mountpoint,
      browsingContextId: opts.browsingContextId
    });
    if (opts.drive === 'service-worker') {
      // A worker the service worker does not control gets the static server's error here, not the contents.
      driveFS.API.lookup(mountpoint);
    }
    py.FS.mkdirTree(mountpoint);
    py.FS.mount(driveFS, {}, mountpoint);
  } catch (err) {
    if (opts.drive === 'service-worker') {
      return opts.driveNotice ?? `the notebook's files are not available (${err})`;
    }
    return `the notebook's files could not be mounted (${err})`;
  }
  try {
    py.FS.chdir(localPath ? `${mountpoint}/${localPath.replace(/^\/+|\/+$/g, '')}` : mountpoint);
  } catch {
    py.FS.chdir(mountpoint);
  }
  return null;
}

/**
 * Point the lock's entries that the site does not ship at the Pyodide distribution (default: the CDN of this
 * Pyodide version), so loadPackage and micropip fetch them from there; shipped wheels stay relative (the site).
 * Nothing is fetched here: only when a cell asks for such a package.
 */
function pointLockAtDistribution(py: IPyodide, distributionUrl: string | undefined): string {
  const url = distributionUrl ?? `https://cdn.jsdelivr.net/pyodide/v${py.version}/full/`;
  const base = url.endsWith('/') ? url : url + '/';
  const shipped = loadedManifest?.shipped;
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

/** Phase 2: start the kernel with this page's callbacks. */
async function start(opts: IInitOptions): Promise<void> {
  options = opts;
  for (const line of unheardLogs ?? []) {
    post(line);
  }
  unheardLogs = null;
  try {
    const timings: Record<string, number> = { ...(await warm(opts.indexURL)), init: elapsed() };
    const py = pyodide!;
    if (opts.interruptBuffer) {
      const all = new Int32Array(opts.interruptBuffer);
      interruptArray = all;
      py.setInterruptBuffer(all.subarray(0, 1));
    }
    const driveNotice = mountDrive(py, opts);
    if (driveNotice) {
      log('warn', driveNotice);
    }
    const packages = opts.packages ?? { pipliteUrls: [], disablePyPIFallback: false };
    const distributionUrl = pointLockAtDistribution(py, packages.distributionUrl);
    const services = JSON.stringify({ ...packages, distributionUrl, driveNotice });
    timings.mounted = elapsed();
    py.runPython(GLUE);
    const startFn = py.globals.get('_ck_start');
    const canInput = !!(opts.stdinBuffer || opts.browsingContextId);
    const result = startFn(sendOut, canInput ? inputRequest : null, services) as IPyProxy & {
      toJs(): IPyProxy[];
    };
    [receive, interruptKernel] = result.toJs();
    result.destroy();
    startFn.destroy();
    timings.started = elapsed();
    post({ type: 'ready', elapsedMs: elapsed(), timings });
    const pending = queue;
    queue = [];
    for (const m of pending) {
      deliver(m.msgJson, m.buffers);
    }
    // The later files once the first cell has answered (or soon anyway): not beside the app's last downloads.
    setTimeout(loadLaterFiles, LATER_FILES_DELAY_MS);
    setTimeout(loadStdlib, LATER_FILES_DELAY_MS);
  } catch (err) {
    failed = true;
    const msg = err instanceof LoadError ? err.message : `concurrent kernel failed while starting the kernel: ${err}`;
    post({ type: 'load-error', error: msg });
  }
}

function onInterrupt(seq: number): void {
  let escalated = false;
  if (interruptArray) {
    // Claim the handshake; if the main thread already escalated, the interrupt
    // buffer was set for blocking code and must not fire again later.
    const old = Atomics.compareExchange(interruptArray, 1, seq, 0);
    if (old === -seq) {
      escalated = true;
      Atomics.store(interruptArray, 1, 0);
      Atomics.store(interruptArray, 0, 0);
    }
  }
  post({ type: 'interrupt-ack', seq, escalated });
  if (!escalated && interruptKernel) {
    try {
      interruptKernel();
    } catch (err) {
      log('error', `interrupt failed: ${err}`);
    }
  }
}

self.onmessage = (ev: MessageEvent<ToWorker>): void => {
  const data = ev.data;
  switch (data.type) {
    case 'warm':
      void warm(data.indexURL).catch(() => undefined);
      break;
    case 'init':
      void start(data.options);
      break;
    case 'msg':
      if (failed) {
        return;
      }
      if (receive) {
        deliver(data.msgJson, data.buffers);
      } else {
        queue.push({ msgJson: data.msgJson, buffers: data.buffers });
      }
      break;
    case 'interrupt':
      onInterrupt(data.seq);
      break;
  }
};

export { STDIN_BUFFER_BYTES };
