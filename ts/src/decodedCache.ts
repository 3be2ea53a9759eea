/**
 * Decoded copies of the worker's brotli files (memory snapshot, first files, Pyodide's wasm: 48 MB from 11 MB) in the
 * origin's Cache Storage. The browser's HTTP cache keeps the brotli bytes, so a reload downloads nothing, but this
 * worker decoded them again: 0.4-0.5 s of its CPU, the larger part of a reload's wait. On a reload they are read
 * from here instead. The copies are written after the first result (not while a first visit waits for it), or by
 * a spare that warmed before any kernel took it. The cache is named after the site's Pyodide folder and the
 * manifest's text: a rebuilt site starts a new one and deletes its old one (another site on the same origin keeps
 * its own). Cache Storage exists only in secure contexts (https, localhost): elsewhere, and on any failure, files
 * are decoded as before.
 */

const PREFIX = 'concurrent-kernel-decoded-';

let opened: Promise<Cache | null> = Promise.resolve(null);
const pending: Array<{ url: string; body: Promise<Blob | Uint8Array<ArrayBuffer>>; type?: string }> = [];

async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(bytes.slice(0, 8), b => b.toString(16).padStart(2, '0')).join('');
}

async function open(base: string, manifestText: string): Promise<Cache | null> {
  const storage = (self as unknown as { caches?: CacheStorage }).caches;
  if (!storage) {
    return null;
  }
  const site = `${PREFIX}${await digest(base)}-`;
  const name = site + (await digest(manifestText));
  for (const old of await storage.keys()) {
    if (old.startsWith(site) && old !== name) {
      void storage.delete(old).catch(() => undefined);
    }
  }
  return storage.open(name);
}

/** Open (or start) the cache for the Pyodide folder BASE whose manifest is MANIFEST_TEXT. */
export function openDecodedCache(base: string, manifestText: string): void {
  opened = open(base, manifestText).catch(() => null);
}

/** The cached response for URL (its decoded bytes), or null. */
export async function cachedResponse(url: string): Promise<Response | null> {
  try {
    const cache = await opened;
    return (cache ? await cache.match(url) : undefined) ?? null;
  } catch {
    return null;
  }
}

/** Forget the cached copy of URL (it did not work). */
export async function dropDecoded(url: string): Promise<void> {
  await (await opened)?.delete(url).catch(() => undefined);
}

/** The decoded bytes of URL if the cache has them, exactly SIZE bytes long; otherwise null. */
export async function cachedDecoded(url: string, size: number): Promise<Uint8Array | null> {
  const resp = await cachedResponse(url);
  try {
    const bytes = resp ? new Uint8Array(await resp.arrayBuffer()) : null;
    if (bytes && bytes.byteLength !== size) {
      void dropDecoded(url);
      return null;
    }
    return bytes;
  } catch {
    return null;
  }
}

/** Keep BODY (decoded from URL) to be written to the cache by flushDecoded, with content type TYPE. */
export function keepDecoded(url: string, body: Promise<Blob | Uint8Array<ArrayBuffer>>, type?: string): void {
  body.catch(() => undefined);
  pending.push({ url, body, type });
}

/** Write the kept copies (after the first result), then let them go. */
export async function flushDecoded(): Promise<void> {
  const cache = await opened;
  for (let item = pending.shift(); item; item = pending.shift()) {
    if (cache) {
      try {
        const headers = item.type ? { 'Content-Type': item.type } : undefined;
        await cache.put(item.url, new Response(await item.body, { headers }));
      } catch {
        // not kept: the next load decodes it again
      }
    }
  }
}
