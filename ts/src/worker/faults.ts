/**
 * Errors no code in the worker caught.
 *
 * A Python exception raised in a JavaScript callback (a `create_proxy` function a timer or a promise called) is the
 * user's, like an exception in a CPython thread: the page shows it in the newest cell and the kernel goes on.
 * Pyodide's fatal errors (a C stack overflow, wasm memory exhausted, `os._exit` ending the interpreter) leave Python
 * unusable: the page is told the kernel died (it restarts it, as a Jupyter server restarts a dead kernel process).
 */
import { post } from './page';
import type { IPyodide } from './types';

let died = false;

/** Whether ERR is one of Pyodide's fatal errors (Python can no longer be used). */
export function isFatal(err: unknown): boolean {
  return !!err && typeof err === 'object' && (err as { pyodide_fatal_error?: unknown }).pyodide_fatal_error === true;
}

/** Tell the page, once, that Python died of ERR. */
export function reportFatal(err: unknown): void {
  if (!died) {
    died = true;
    post({ type: 'fatal', error: describe(err) });
  }
}

/** Whether Python has died in this worker (messages for it are dropped). */
export function hasDied(): boolean {
  return died;
}

/** Report uncaught errors and rejections to the page instead of letting them reach its worker.onerror. */
export function watchUncaught(): void {
  const handle = (err: unknown): void => {
    if (isFatal(err)) {
      reportFatal(err);
    } else if (!died) {
      post({ type: 'uncaught', error: describe(err) });
    }
  };
  self.addEventListener('error', (ev: ErrorEvent) => {
    ev.preventDefault();
    handle(ev.error ?? ev.message);
  });
  self.addEventListener('unhandledrejection', (ev: PromiseRejectionEvent) => {
    ev.preventDefault();
    handle(ev.reason);
  });
}

/** Pyodide calls this itself on a fatal error, whoever called into Python (the error may be caught on its way). */
export function watchFatal(py: IPyodide): void {
  py._api.on_fatal = reportFatal;
}

/** What the user reads: the error's own text, and what it means for the usual causes. */
function describe(err: unknown): string {
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && /Program terminated/.test(String((err as Error)?.message))) {
    return `Python exited with status ${status} (os._exit, or C code that ended the process)`;
  }
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (/Maximum call stack size exceeded/.test(text)) {
    return `${text} (deep recursion in C code, such as json or pickle of deeply nested data, overflowed the stack)`;
  }
  if (/out of memory|\bOOM\b|Memory\.grow|allocation failed/i.test(text)) {
    return `${text} (Python ran out of WebAssembly memory)`;
  }
  return text;
}
