import { fillOnOpen } from './files';
import { elapsed, log } from './page';
import { fetchSync, plainFetch } from './streams';
import type { IEmscriptenNode, IModule } from './types';

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
export function deferStdlib(module: IModule, url: string, size: number, timings: Record<string, number>): void {
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

export function loadStdlib(): void {
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
