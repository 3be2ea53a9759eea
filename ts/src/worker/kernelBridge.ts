/**
 * The page transport: messages from the page go into the core's callback transport, one call per message and
 * without waiting on execution; every message Python sends comes back through one callback and is posted.
 */
import { noteIncoming, noteOutgoing } from './background';
import { hasDied, isFatal, reportFatal } from './faults';
import { later, setHeldDelivery, writeArrived } from './laterFiles';
import { post } from './page';
import type { IPyProxy, IPyodide } from './types';

let receive: IPyProxy | null = null;

/** Whether this browser can suspend wasm (JSPI), as Pyodide decides it: callPromising throws where it cannot. */
const JSPI = 'Suspending' in WebAssembly || 'Suspender' in WebAssembly;
/** Messages that arrived before the kernel was started. */
let queue: Array<{ msgJson: string; buffers: ArrayBuffer[] }> = [];
let failed = false;

/** Python glue: adapts the JS callbacks to the core's callback transport. */
const GLUE = `
from pyodide.ffi import to_js as _to_js

def _ck_start(js_send, js_input, js_sleep, js_ended, services_json, debugger, js_busy=None, site_profile=None):
    from concurrent_kernel import callback_transport

    def send(msg_json, buffers):
        # None reaches JS as undefined (most messages have no buffers): an empty list's to_js cost ~20 us a message.
        js_send(msg_json, _to_js([bytes(b) for b in buffers]) if buffers else None)

    def input_request(msg_json):
        return js_input(msg_json)

    handle = callback_transport.start(
        send, input_request if js_input is not None else None, blocking_sleep=js_sleep, exit_callback=js_ended,
        debugger=debugger,
        busy_flag=js_busy,
        site_profile=site_profile,
    )
    from concurrent_kernel.services import packages
    packages.setup(handle.kernel, services_json)

    def receive(msg_json, buffers):
        handle.receive(msg_json, [b.to_bytes() for b in buffers] if buffers else None)

    return receive, handle.interrupt
`;

/**
 * Start the kernel in PY with the page's callbacks (INPUT answers an input() that cannot suspend its stack, SLEEP is
 * a time.sleep that cannot: either may be null), the package settings and BUSY (interrupt.ts busyFlag, or null);
 * returns the kernel's interrupt function.
 * DEBUGGER: offer JupyterLab's debugger (the page asks for it; a stopped cell suspends its stack, so only with JSPI).
 * SITE_PROFILE: whether the notebook's files hold an IPython profile, if the page has said (state.siteProfile).
 */
export function startKernel(
  py: IPyodide,
  input: ((msgJson: string) => string) | null,
  sleep: ((seconds: number) => boolean) | null,
  servicesJson: string,
  debugger_: boolean,
  busy: ((value: number) => number) | null = null,
  siteProfile: boolean | null = null
): IPyProxy {
  py.runPython(GLUE);
  const startFn = py.globals.get('_ck_start');
  // undefined, not null: Pyodide gives Python JS null as JsNull, not None.
  const offer = debugger_ && JSPI;
  const result = startFn(
    sendOut,
    input ?? undefined,
    sleep ?? undefined,
    ended,
    servicesJson,
    offer,
    busy ?? undefined,
    siteProfile ?? undefined
  ) as IPyProxy & {
    toJs(): IPyProxy[];
  };
  const [receiveFn, interruptKernel] = result.toJs();
  receive = receiveFn;
  result.destroy();
  startFn.destroy();
  return interruptKernel;
}

/** Hand Python the messages that arrived while it started. */
export function deliverQueued(): void {
  const pending = queue;
  queue = [];
  for (const m of pending) {
    deliver(m.msgJson, m.buffers);
  }
}

/** The kernel did not start: messages from the page are dropped (the page answers them with the load error). */
export function markFailed(): void {
  failed = true;
}

/** A message from the page: to Python, or queued until the kernel has started. */
export function fromPage(msgJson: string, buffers: ArrayBuffer[]): void {
  if (failed || hasDied()) {
    return;
  }
  if (receive) {
    deliver(msgJson, buffers);
  } else {
    queue.push({ msgJson, buffers });
  }
}

/** The kernel ended itself (do_shutdown, exit in a cell): the page restarts it or shuts it down. */
function ended(restart: boolean): void {
  post({ type: 'ended', restart: !!restart });
}

function sendOut(msgJson: string, buffers: Uint8Array[] | null | undefined): void {
  noteOutgoing(msgJson);
  const out: ArrayBuffer[] = [];
  for (const b of buffers ?? []) {
    const copy = new Uint8Array(b.byteLength);
    copy.set(b);
    out.push(copy.buffer);
  }
  post({ type: 'msg', msgJson, buffers: out }, out);
}

function deliver(msgJson: string, buffers: ArrayBuffer[]): void {
  noteIncoming();
  if (!later.written && msgJson.includes('complete_request') && msgTypeOf(msgJson) === 'complete_request') {
    later.held.push({ msgJson, buffers }); // completions read jedi's type stubs: they come with the later files
    void writeArrived(); // written at once if they are here (then the held messages go on)
    return;
  }
  const bufs = buffers.map(b => new Uint8Array(b));
  try {
    const r = receive!;
    if (r.callPromising && JSPI) {
      // Entering Python this way lets the core block on coroutines (JSPI).
      r.callPromising(msgJson, bufs).catch(err => reportHandlerError(msgJson, err));
    } else {
      r(msgJson, bufs);
    }
  } catch (err) {
    reportHandlerError(msgJson, err);
  }
}

setHeldDelivery(deliver);

function msgTypeOf(msgJson: string): string | undefined {
  try {
    return (JSON.parse(msgJson) as { header?: { msg_type?: string } }).header?.msg_type;
  } catch {
    return undefined;
  }
}

function reportHandlerError(msgJson: string, err: unknown): void {
  if (isFatal(err)) {
    reportFatal(err);
  } else {
    post({ type: 'handler-error', msgJson, error: String((err as Error)?.message ?? err) });
  }
}
