/** input() and getpass() in Python: the page answers while the worker waits. */
import { STDIN_HEADER_BYTES } from '../protocol';
import { post } from './page';
import { state as worker } from './state';

/** Synchronous stdin: Atomics on a SharedArrayBuffer, else sync XHR to the service worker. */
export function inputRequest(msgJson: string): string {
  const opts = worker.options!;
  if (opts.stdinBuffer) {
    const state = new Int32Array(opts.stdinBuffer, 0, 2);
    Atomics.store(state, 0, 0);
    post({ type: 'input_request', msgJson });
    Atomics.wait(state, 0, 0);
    const len = Atomics.load(state, 1);
    const bytes = new Uint8Array(opts.stdinBuffer, STDIN_HEADER_BYTES, len).slice();
    Atomics.store(state, 0, 0);
    return new TextDecoder().decode(bytes);
  }
  if (!opts.browsingContextId) {
    throw new Error(
      'input() is unavailable: the page is not cross-origin isolated and no service worker is active'
    );
  }
  const xhr = new XMLHttpRequest();
  xhr.open('POST', new URL('api/stdin/kernel', opts.baseUrl).href, false);
  xhr.send(
    JSON.stringify({ browsingContextId: opts.browsingContextId, data: JSON.parse(msgJson) })
  );
  const reply = JSON.parse(xhr.responseText);
  if (reply && typeof reply === 'object' && 'error' in reply) {
    throw new Error(`stdin request failed: ${reply.error}`);
  }
  return JSON.stringify(reply);
}
