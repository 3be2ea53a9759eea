/**
 * Requests to this kernel without JupyterLite's 4 ms timer.
 *
 * JupyterLite's kernel connections are mock-socket WebSockets: each message a client sends reaches the in-page
 * server (and so the kernel's handleMessage) through `setTimeout(..., 4)`. Measured in Chromium: 4.5 ms of a 7.5 ms
 * `1+1` round trip passed there before the kernel saw the request. For this kernel's sockets, sending hands the
 * message over in the next task instead (a MessageChannel turn, which the browser does not clamp), in the order
 * sent, with the same data and the same listeners as mock-socket's own send. Other kernels' sockets are untouched.
 */

/** What this module needs of mock-socket's WebSocket class (an EventTarget of its own, with custom arguments). */
interface IMockSocket {
  url: string;
  readyState: number;
  send(data: unknown): void;
  dispatchEvent(event: { type: string; origin: string; data: unknown }, ...args: unknown[]): boolean;
}

type MockSocketClass = new (url: string, protocols?: string | string[]) => IMockSocket;

const OPEN = 1;
const PATCHED = Symbol('concurrent-kernel fast sends');

/** A FIFO of callbacks run in later tasks: one MessageChannel message per callback, so none waits on a timer. */
class TaskQueue {
  constructor() {
    this._channel.port1.onmessage = () => {
      const run = this._queue.shift();
      run?.();
    };
  }

  push(run: () => void): void {
    this._queue.push(run);
    this._channel.port2.postMessage(0);
  }

  private _channel = new MessageChannel();
  private _queue: Array<() => void> = [];
}

/**
 * Make SETTINGS' WebSocket class (a kernel manager's, shared by its kernel connections) send without the timer to
 * the kernels for which IS_OURS(kernelId) holds. Idempotent; does nothing unless it is mock-socket's class.
 */
export function fastSendsFor(settings: { WebSocket: unknown }, isOurs: (kernelId: string) => boolean): void {
  const Base = settings.WebSocket as MockSocketClass & { [PATCHED]?: boolean };
  if (typeof Base !== 'function' || Base[PATCHED] || typeof Base.prototype?.dispatchEvent !== 'function') {
    return;
  }
  const queue = new TaskQueue();
  class FastSocket extends Base {
    send(data: unknown): void {
      const id = kernelIdOf(this.url);
      if (this.readyState !== OPEN || id === null || !isOurs(id)) {
        super.send(data); // mock-socket's own checks, errors and timer
        return;
      }
      // As mock-socket's send: strings and ArrayBuffers (a kernel connection sends ArrayBuffers), dispatched on
      // this socket with the data as the listener's argument (where the in-page server's socket listens).
      const payload = data instanceof ArrayBuffer || data instanceof Blob ? data : String(data);
      queue.push(() => {
        if (this.readyState === OPEN) {
          this.dispatchEvent({ type: 'server::message', origin: this.url, data: payload }, payload);
        }
      });
    }
  }
  (FastSocket as unknown as { [PATCHED]: boolean })[PATCHED] = true;
  settings.WebSocket = FastSocket;
}

/** The kernel id in a kernel channels URL (`.../api/kernels/<id>/channels?...`), or null. */
export function kernelIdOf(url: string): string | null {
  const m = /\/api\/kernels\/([^/?#]+)\/channels(?:[?#]|$)/.exec(url);
  return m ? decodeURIComponent(m[1]) : null;
}
