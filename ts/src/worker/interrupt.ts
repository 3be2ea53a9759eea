/**
 * Interrupts from the page. The page first posts an interrupt (awaiting cells are cancelled through the kernel);
 * if no acknowledgement comes in time it sets Pyodide's interrupt buffer itself, for code that blocks the worker.
 */
import {
  BUSY_ESCALATED,
  BUSY_IDLE,
  BUSY_ON_CPU,
  BUSY_SLOT,
  PAUSE_TAKEN,
  PAUSE_TAKEN_SLOT,
  SIGINT,
  SIGNAL_TAKEN
} from '../protocol';
import { log, post } from './page';
import type { IPyProxy, IPyodide } from './types';

/** The page's interrupt buffer (its layout: protocol.ts INTERRUPT_SLOTS). */
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
    // Only SIGINT ends the wait: the debugger's pause signal (PAUSE_SIGNAL) may be there too.
    for (let left = seconds * 1000; left > 0; left = end - performance.now()) {
      const value = Atomics.load(array, 0);
      if (value === SIGINT) {
        break;
      }
      Atomics.wait(array, 0, value, left);
    }
    if (Atomics.compareExchange(array, 0, SIGINT, 0) !== SIGINT) {
      return false;
    }
    markSignalTaken(array);
    return true;
  };
}

/** Python took the page's SIGINT: the busy flag goes back from escalated, so the page stops watching for a lost one
 * (protocol.ts SIGNAL_TAKEN). Returns the flag's old value. */
function markSignalTaken(array: Int32Array): number {
  return Atomics.compareExchange(array, BUSY_SLOT, BUSY_ESCALATED, BUSY_ON_CPU);
}

// ---- busy flag: the page escalates at once while a cell's step runs (issue 20) ----

/** A step ended or suspended after the page escalated but before Python took the signal: the soft path must run. */
let withdrawn = false;

/**
 * The kernel's busy flag (py/concurrent_kernel/_execution.py busy_flag): `flag(v)` stores 0 or 1 and returns the old
 * value, `flag(-1)` only reads, `flag(SIGNAL_TAKEN)` and `flag(PAUSE_TAKEN)` mark the page's signal taken. When a
 * step leaves the CPU (v = 0) after the page escalated, the signal Python has not yet taken is withdrawn, so it
 * cannot raise KeyboardInterrupt in kernel code; the flag returns 2 and the page's interrupt message then takes the
 * soft path (onInterrupt). Null where there is no buffer.
 */
export function busyFlag(): ((value: number) => number) | null {
  if (!interruptArray) {
    return null;
  }
  const array = interruptArray;
  return (value: number): number => {
    if (value === SIGNAL_TAKEN) {
      return markSignalTaken(array);
    }
    if (value === PAUSE_TAKEN) {
      return Atomics.exchange(array, PAUSE_TAKEN_SLOT, 1);
    }
    if (value < 0) {
      return Atomics.load(array, BUSY_SLOT);
    }
    const old = Atomics.exchange(array, BUSY_SLOT, value);
    if (old !== BUSY_ESCALATED) {
      return old;
    }
    if (value !== BUSY_IDLE) {
      Atomics.store(array, BUSY_SLOT, BUSY_ESCALATED); // a nested step ended: its outer one is still on the CPU
      return BUSY_ON_CPU;
    }
    if (Atomics.compareExchange(array, 0, SIGINT, 0) === SIGINT) {
      withdrawn = true;
      return BUSY_ESCALATED;
    }
    return BUSY_ON_CPU; // Python took the signal inside the step
  };
}

// ---- end busy flag ----

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
      if (Atomics.exchange(interruptArray, 0, 0) === SIGINT) {
        withdrawn = true; // Python never took the signal: its code left the CPU first
      }
    }
  }
  post({ type: 'interrupt-ack', seq, escalated });
  const soft = !escalated || withdrawn; // busy flag: the escalation was withdrawn, interrupt softly instead
  withdrawn = false;
  if (soft && interruptKernel) {
    try {
      interruptKernel();
    } catch (err) {
      log('error', `interrupt failed: ${err}`);
    }
  }
}
