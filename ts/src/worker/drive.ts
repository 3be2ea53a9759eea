/**
 * The notebook's files: JupyterLite's contents mounted at /drive with its DriveFS, through shared buffers on a
 * cross-origin isolated page (the page answers while this worker waits) or through the service worker.
 */
import { ContentsAPI, DriveFS } from '@jupyterlite/services/lib/contents/drivefs';
import type { TDriveMethod, TDriveRequest, TDriveResponse } from '@jupyterlite/services/lib/contents/drivefs';
import { DRIVE_REPLIED, DRIVE_TOO_LARGE, DRIVE_WAITING, IInitOptions, splitLocation } from '../protocol';
import { log, post } from './page';
import { state as worker } from './state';
import type { IPyodide } from './types';

/** Milliseconds a file-system call waits for the page before failing with EIO (the page may be gone). */
const DRIVE_TIMEOUT_MS = 60_000;

/** A drive request answered by the page (DriveContentsProcessor) while this worker waits on driveBuffer. */
function driveRequest(request: unknown): unknown {
  const py = worker.pyodide!;
  const fail = (): never => {
    throw new py.FS.ErrnoError(py.ERRNO_CODES.EIO);
  };
  const sab = worker.options!.driveBuffer!;
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
    return worker.options?.drive === 'shared-buffer' ? new SharedBufferContentsAPI(opts) : super.createAPI(opts);
  }
}

/**
 * Mount JupyterLite's contents at /drive with its DriveFS and make the notebook's folder the working directory.
 * Done after the snapshot restore (the mount lives in JS, outside the snapshot). Returns a notice when not mounted.
 */
export function mountDrive(py: IPyodide, opts: IInitOptions): string | null {
  if (!opts.drive || opts.drive === 'none') {
    return opts.driveNotice ?? 'the notebook\'s files are not available to Python here';
  }
  const [driveName, localPath] = splitLocation(opts.location ?? '');
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
