/**
 * The page's side of the kernel's debugger: when a kernel offers it (so the panel loads, ./debugger.ts), and the
 * debug session of a notebook kept across a page reload.
 *
 * A JupyterLite kernel dies with its page, where a CPython kernel outlives a reload with its debug session, its
 * breakpoints and its stopped cells. So the kernel tells the page its session on a channel of their own
 * (services/debugger: attached or not, breakpoints with their cells' sources, exception filters; never a Jupyter
 * message), the page keeps the last one in the origin's localStorage under the notebook's path, and hands it to
 * the first kernel of that notebook after the reload, before the panel's first debug request. The panel's
 * `debugInfo` then shows the session and JupyterLab puts the breakpoints back in the cells. A kernel restarted in
 * the same page starts without a session, as a restarted CPython kernel does.
 */

/** The page's and the kernel's channel (transports/callback.py DEBUGGER_STATE_CHANNEL). */
export const DEBUGGER_STATE_CHANNEL = 'ck-debugger-state';

const offerListeners = new Set<() => void>();
let offered = false;

/** A kernel said `debugger: true` in its kernel_info_reply. */
export function noteDebuggerOffered(): void {
  if (!offered) {
    offered = true;
    offerListeners.forEach(listener => listener());
    offerListeners.clear();
  }
}

/** Call `listener` once a kernel of this page offers the debugger (at once if one did). */
export function whenDebuggerOffered(listener: () => void): void {
  if (offered) {
    listener();
  } else {
    offerListeners.add(listener);
  }
}

/** Notebooks whose kernel in this page got (or declined) the kept session: later kernels of them start fresh. */
const handedOver = new Set<string>();

function storageKey(baseUrl: string, path: string): string {
  return `concurrent-kernel:debugger:${baseUrl}:${path}`;
}

function storage(): Storage | null {
  try {
    return globalThis.localStorage ?? null;
  } catch {
    return null; // storage blocked (a sandboxed frame, some privacy settings): no session across reloads
  }
}

/** One kernel's part: keep what its kernel says, and give its notebook's kept session back once. */
export class DebuggerSessionKeeper {
  constructor(
    private readonly _baseUrl: string,
    private readonly _path: () => string | undefined
  ) {}

  /** The kernel's new state (a message on DEBUGGER_STATE_CHANNEL). */
  keep(state: unknown): void {
    const path = this._path();
    const store = storage();
    if (path === undefined || !store || !state || typeof state !== 'object') {
      return;
    }
    const key = storageKey(this._baseUrl, path);
    try {
      if ((state as { started?: unknown }).started) {
        store.setItem(key, JSON.stringify(state));
      } else {
        store.removeItem(key);
      }
    } catch (err) {
      console.warn('concurrent kernel: the debugger session could not be kept for a reload', err);
    }
  }

  /** Before the first debug request: the message giving the kernel its notebook's kept session, if any. */
  handOver(): string | null {
    if (this._done) {
      return null;
    }
    this._done = true;
    const path = this._path();
    const store = storage();
    if (path === undefined || !store || handedOver.has(path)) {
      return null;
    }
    handedOver.add(path);
    const saved = store.getItem(storageKey(this._baseUrl, path));
    if (!saved) {
      return null;
    }
    try {
      return JSON.stringify({ channel: DEBUGGER_STATE_CHANNEL, state: JSON.parse(saved) });
    } catch {
      store.removeItem(storageKey(this._baseUrl, path));
      return null;
    }
  }

  private _done = false;
}
