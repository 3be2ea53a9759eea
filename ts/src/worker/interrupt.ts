/**
 * Interrupts from the page. The page first posts an interrupt (awaiting cells are cancelled through the kernel);
 * if no acknowledgement comes in time it sets Pyodide's interrupt buffer itself, for code that blocks the worker.
 */
import { log, post } from './page';
import type { IPyProxy, IPyodide } from './types';

/** [0] Pyodide's interrupt buffer, [1] the handshake with the page (protocol.ts IInitOptions.interruptBuffer). */
let interruptArray: Int32Array | null = null;
let interruptKernel: IPyProxy | null = null;

/** Give Pyodide the page's interrupt buffer (cross-origin isolated pages only). */
export function useInterruptBuffer(py: IPyodide, buffer: SharedArrayBuffer): void {
  const all = new Int32Array(buffer);
  interruptArray = all;
  py.setInterruptBuffer(all.subarray(0, 1));
}

/**
 * time.sleep for a Python stack that cannot be suspended (services/suspend.py): the worker waits on the interrupt
 * buffer, so it uses no CPU and an interrupt (the page sets the buffer and notifies) ends the wait. Returns whether
 * an interrupt ended it, having taken the signal (Python raises KeyboardInterrupt itself). Null where there is no
 * buffer (the page is not cross-origin isolated): Python's own sleep then.
 */
export function blockingSleep(): ((seconds: number) => boolean) | null {
  if (!interruptArray) {
    return null;
  }
  const array = interruptArray;
  return (seconds: number): boolean => {
    const end = performance.now() + seconds * 1000;
    // Only SIGINT ends the wait: the debugger's pause signal (debuggerSession.ts PAUSE_SIGNAL) may be there too.
    for (let left = seconds * 1000; left > 0; left = end - performance.now()) {
      const value = Atomics.load(array, 0);
      if (value === 2) {
        break;
      }
      Atomics.wait(array, 0, value, left);
    }
    return Atomics.compareExchange(array, 0, 2, 0) === 2;
  };
}

/** The kernel's own interrupt (cancels awaiting cells), once it has started. */
export function setKernelInterrupt(interrupt: IPyProxy): void {
  interruptKernel = interrupt;
}

export function onInterrupt(seq: number): void {
  let escalated = false;
  if (interruptArray) {
    // Claim the handshake; if the main thread already escalated, the interrupt
    // buffer was set for blocking code and must not fire again later.
    const old = Atomics.compareExchange(interruptArray, 1, seq, 0);
    if (old === -seq) {
      escalated = true;
      Atomics.store(interruptArray, 1, 0);
      Atomics.store(interruptArray, 0, 0);
    }
  }
  post({ type: 'interrupt-ack', seq, escalated });
  if (!escalated && interruptKernel) {
    try {
      interruptKernel();
    } catch (err) {
      log('error', `interrupt failed: ${err}`);
    }
  }
}
