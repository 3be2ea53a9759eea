/**
 * Pyodide's own files fetched (and the wasm compiled) as soon as the manifest is read, not when loadPyodide asks:
 * the worker's fetch and WebAssembly.instantiateStreaming are wrapped to hand Pyodide what was started early.
 */
import { cachedResponse, dropDecoded, keepDecoded } from '../decodedCache';
import { fetchBrotliStream } from './brotli';
import { elapsed, log } from './page';
import { gunzipped, plainFetch } from './streams';

/**
 * Responses started ahead of the requests Pyodide makes itself (wasm, standard library, lock), by URL: loadPyodide
 * asks for them only once the snapshot has arrived, and its files may be served gzipped (manifest.gzipped).
 */
export const early = new Map<string, Promise<Response>>();
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

export function setOnInstantiated(hook: ((memory: WebAssembly.Memory) => void) | null): void {
  onInstantiated = hook;
}

/** Start fetching BASE + NAME now (its .gz if the site ships one), for Pyodide to find when it asks. */
export function fetchEarly(
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
