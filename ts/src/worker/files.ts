/** Files written into Python's file system by the worker: a bundle all at once, or one file filled on its first open. */
import { log } from './page';
import type { IEmscriptenFS, IEmscriptenNode, IPyodide } from './types';

/**
 * Make NODE's opens run FILL first (Python waits inside the open), until the returned function puts the node's own
 * operations back (FILL or the background load does). A failed FILL fails that open with EIO, an OSError in Python,
 * and the next open tries again. WHAT names the file in the log.
 */
export function fillOnOpen(FS: IEmscriptenFS, eio: number, node: IEmscriptenNode, what: string, fill: () => void): () => void {
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

/** Write the (inflated) file bundle: u32 header length, JSON [[path, size], ...], then the contents in order. */
export function writeFiles(py: IPyodide, bundle: Uint8Array): void {
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
