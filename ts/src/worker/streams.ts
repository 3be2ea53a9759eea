/** Streams of fetched bytes: inflated as they arrive when they are gzip data, read whole, or read synchronously. */

import { elapsed } from './page';

/** The worker's own fetch, before prefetch.ts wraps it (the wrapped one hands out responses started early). */
export const plainFetch = self.fetch.bind(self);

/**
 * READER's bytes as a stream again, after HEAD (chunks already read from it; FINISHED: it had ended there). ONDONE
 * is called when the last byte has arrived.
 */
export function readerStream(
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
export async function gunzipped(body: ReadableStream<Uint8Array>, onDone?: () => void): Promise<ReadableStream<Uint8Array>> {
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

/** GET URL; an HTTP error status throws. */
export async function fetchOk(url: string): Promise<Response> {
  const resp = await fetch(url);
  if (!resp.ok) {
    throw new Error(`HTTP ${resp.status} for ${resp.url}`);
  }
  return resp;
}

/** All of BODY, inflated if it is gzip data (gunzipped). */
export async function inflatedBytes(body: ReadableStream<Uint8Array>, onDone?: () => void): Promise<Uint8Array> {
  return new Uint8Array(await new Response(await gunzipped(body, onDone)).arrayBuffer());
}

/** Fetch a file; gzip data (our snapshot files) is inflated as it arrives, whatever the server's Content-Encoding. */
export async function fetchBytes(url: string, timings: Record<string, number>, name: string): Promise<Uint8Array> {
  const resp = await fetchOk(url);
  const data = await inflatedBytes(resp.body!, () => (timings[`fetched ${name}`] = elapsed()));
  timings[`inflated ${name}`] = elapsed();
  return data;
}

/** GET URL synchronously (a worker may block: Python is waiting inside an open or an import). */
export function fetchSync(url: string): Uint8Array {
  const xhr = new XMLHttpRequest();
  xhr.open('GET', url, false);
  xhr.responseType = 'arraybuffer';
  xhr.send();
  if (xhr.status !== 200) {
    throw new Error(`HTTP ${xhr.status} for ${url}`);
  }
  return new Uint8Array(xhr.response as ArrayBuffer);
}
