/**
 * Brotli data (a third smaller than gzip) decoded in the worker as it arrives, by a wasm decoder the site ships:
 * Chromium's DecompressionStream inflates only gzip and deflate. Decoded copies go to the cache (decodedCache.ts).
 */
import { BrotliDecStream, BrotliStreamResultCode, initSync as initBrotli } from 'brotli-dec-wasm/web';
import { cachedDecoded, keepDecoded } from '../decodedCache';
import { elapsed, log } from './page';
import { fetchBytes, gunzipped, plainFetch, readerStream } from './streams';

/**
 * The decoded bytes of the brotli file at URL as they arrive, once the decoder is ready (rejects if it is not, or
 * the file is missing). A host that sends it with Content-Encoding: br has had the browser decode it already.
 */
export async function fetchBrotliStream(url: string, onDone?: () => void): Promise<ReadableStream<Uint8Array>> {
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

/** Fetch and compile the decoder at URL now (the files decoded with it are fetched beside it). */
export function startBrotliDecoder(url: string): void {
  brotliReady = loadBrotli(url);
  brotliReady.catch(() => undefined);
}

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
export async function fetchBrotli(
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
