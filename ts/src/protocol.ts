/**
 * Messages exchanged between the kernel (main thread) and its Web Worker.
 */

/** Layout of the stdin SharedArrayBuffer: [state, length, ...utf8 bytes]. */
export const STDIN_HEADER_BYTES = 8;
export const STDIN_BUFFER_BYTES = 1 << 20;

/** Options the main thread sends once to start Pyodide and the kernel. */
export interface IInitOptions {
  /** Directory URL holding pyodide.mjs, the lock, the manifest and wheels. */
  indexURL: string;
  /** JupyterLite base URL (for the service-worker stdin endpoint). */
  baseUrl: string;
  kernelId: string;
  /** Service-worker browsing context id (stdin over sync XHR), if any. */
  browsingContextId?: string;
  /** Int32Array[2]: [0] Pyodide's interrupt buffer, [1] interrupt handshake. */
  interruptBuffer?: SharedArrayBuffer;
  /** stdin replies when cross-origin isolated (see STDIN_* constants). */
  stdinBuffer?: SharedArrayBuffer;
}

export type ToWorker =
  | { type: 'warm'; indexURL: string }
  | { type: 'init'; options: IInitOptions }
  | { type: 'msg'; msgJson: string; buffers: ArrayBuffer[] }
  | { type: 'interrupt'; seq: number };

export type FromWorker =
  | { type: 'progress'; phase: string; elapsedMs: number }
  | { type: 'ready'; elapsedMs: number; timings: Record<string, number> }
  | { type: 'load-error'; error: string }
  | { type: 'msg'; msgJson: string; buffers: ArrayBuffer[] }
  | { type: 'handler-error'; msgJson: string; error: string }
  | { type: 'input_request'; msgJson: string }
  | { type: 'interrupt-ack'; seq: number; escalated: boolean }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; text: string };
