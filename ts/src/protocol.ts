/**
 * Messages exchanged between the kernel (main thread) and its Web Worker.
 */

/** Layout of the stdin SharedArrayBuffer: [state, length, ...utf8 bytes]. */
export const STDIN_HEADER_BYTES = 8;
export const STDIN_BUFFER_BYTES = 1 << 20;

/**
 * The interrupt SharedArrayBuffer, an Int32Array of INTERRUPT_SLOTS: [0] the signal for Python (Pyodide's interrupt
 * buffer), [1] the handshake of the page's latest interrupt (its sequence number, negated once the page set [0]),
 * [BUSY_SLOT] the worker's busy flag (BUSY_*), [PAUSE_TAKEN_SLOT] 1 once Python took the page's PAUSE_SIGNAL.
 */
export const INTERRUPT_SLOTS = 4;
export const BUSY_SLOT = 2;
export const PAUSE_TAKEN_SLOT = 3;
/** No cell's step is on the CPU: the worker answers an interrupt message itself. */
export const BUSY_IDLE = 0;
/** A cell's step runs synchronously: the worker cannot answer before it ends, so the page sets [0] at once. */
export const BUSY_ON_CPU = 1;
/** The page claimed the flag and set (or is setting) [0]. */
export const BUSY_ESCALATED = 2;
/**
 * What Python's SIGINT handler passes to the busy flag (py/concurrent_kernel/_execution.py took_sigint): the signal
 * was taken, so the flag goes from BUSY_ESCALATED back to BUSY_ON_CPU and the page stops watching for a lost one.
 */
export const SIGNAL_TAKEN = -2;
/** What the debugger's pause handler passes to the busy flag: PAUSE_TAKEN_SLOT is set to 1. */
export const PAUSE_TAKEN = -3;

/** What slot [0] of the interrupt buffer holds for Python: Pyodide raises KeyboardInterrupt for SIGINT. */
export const SIGINT = 2;
/**
 * The signal that pauses busy code (services/debugger/monitoring.py PAUSE_SIGNAL, SIGUSR1): a busy cell holds the
 * worker, so the panel's pause request waits behind it; on a cross-origin isolated page the page also puts this
 * signal in Pyodide's interrupt buffer, which Python checks as it runs.
 */
export const PAUSE_SIGNAL = 10;

/** Options the main thread sends once to start Pyodide and the kernel. */
/** A kernel's location (IInitOptions.location) as [its drive's name, "" for the default one; the folder in it]. */
export function splitLocation(location: string): [string, string] {
  const colon = location.indexOf(':');
  return colon >= 0 ? [location.slice(0, colon), location.slice(colon + 1)] : ['', location];
}

export interface IInitOptions {
  /** Directory URL holding pyodide.mjs, the lock, the manifest and wheels. */
  indexURL: string;
  /** JupyterLite base URL (for the service-worker stdin endpoint). */
  baseUrl: string;
  kernelId: string;
  /** Service-worker browsing context id (stdin over sync XHR), if any. */
  browsingContextId?: string;
  /** Int32Array[INTERRUPT_SLOTS]: the signal for Python, the interrupt handshake, the busy flag (see above). */
  interruptBuffer?: SharedArrayBuffer;
  /** stdin replies when cross-origin isolated (see STDIN_* constants). */
  stdinBuffer?: SharedArrayBuffer;
  /** The notebook's folder in JupyterLite's contents ("" = root, "drive:path" for another drive). */
  location?: string;
  /**
   * How the contents are mounted at /drive (JupyterLite's DriveFS): through the service worker (sync XHR to
   * api/drive), through `driveBuffer` (cross-origin isolated pages), or not at all (`driveNotice` says why; for
   * 'service-worker' it is what to say if the service worker does not answer).
   */
  drive?: 'service-worker' | 'shared-buffer' | 'none';
  driveNotice?: string;
  /** Drive replies when drive is 'shared-buffer': [state, length, ...utf8 JSON]; see DRIVE_* constants. */
  driveBuffer?: SharedArrayBuffer;
  /** Where packages come from (services/packages.py); URLs are absolute. */
  packages?: IPackageSettings;
  /** Offer JupyterLab's debugger (services/debugger/monitoring.py): the page found JSPI and the site wants it. */
  debugger?: boolean;
}

/** Package sources, in order: the site's piplite wheels, the Pyodide distribution, then a package index. */
export interface IPackageSettings {
  /** piplite all.json indexes of wheels shipped with the site. */
  pipliteUrls: string[];
  /** Base URL of the Pyodide distribution for lock entries the site does not ship (default: its CDN). */
  distributionUrl?: string;
  /** Package indexes (micropip index_urls) tried last, when online (default: PyPI). */
  indexUrls?: string[];
  /** Never fetch from indexUrls (the site's wheels and the distribution only). */
  disablePyPIFallback: boolean;
}

/** Drive reply states in driveBuffer[0]: waiting, reply in the buffer, reply too large (fetch it). */
export const DRIVE_WAITING = 0;
export const DRIVE_REPLIED = 1;
export const DRIVE_TOO_LARGE = 2;
export const DRIVE_BUFFER_BYTES = 1 << 20;

export type ToWorker =
  | { type: 'warm'; indexURL: string }
  | { type: 'init'; options: IInitOptions }
  | { type: 'msg'; msgJson: string; buffers: ArrayBuffer[] }
  | { type: 'interrupt'; seq: number }
  /** Whether the notebook's files hold an IPython profile at .ipython, which the kernel then uses (the page looks
   * while Python loads, so the kernel's start need not ask it synchronously while its thread is busy). */
  | { type: 'site-profile'; found: boolean };

export type FromWorker =
  | { type: 'progress'; phase: string; elapsedMs: number }
  | { type: 'ready'; elapsedMs: number; timings: Record<string, number> }
  | { type: 'load-error'; error: string }
  | { type: 'msg'; msgJson: string; buffers: ArrayBuffer[] }
  | { type: 'handler-error'; msgJson: string; error: string }
  /** Python died (a Pyodide fatal error): the kernel must be restarted. */
  | { type: 'fatal'; error: string }
  /** An error nothing caught in the worker (a Python exception in a JavaScript callback): the kernel goes on. */
  | { type: 'uncaught'; error: string }
  /** The kernel ended itself (do_shutdown, exit in a cell): restart it, or shut it down. */
  | { type: 'ended'; restart: boolean }
  | { type: 'input_request'; msgJson: string }
  | { type: 'interrupt-ack'; seq: number; escalated: boolean }
  | { type: 'drive-request'; request: unknown }
  | { type: 'drive-fetch'; buffer: SharedArrayBuffer }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string };
