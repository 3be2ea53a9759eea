/**
 * The worker's line to the page: every message it posts, its log lines (held while nobody listens), and the clock
 * its timings are read from.
 */
import type { FromWorker } from '../protocol';

export const post = (msg: FromWorker, transfer: Transferable[] = []): void =>
  (self as unknown as Worker).postMessage(msg, transfer);

/** Log lines of a spare worker, kept until a kernel takes it (nobody listens before). */
let unheardLogs: FromWorker[] | null = [];

export function log(level: 'info' | 'warn' | 'error', text: string): void {
  if (unheardLogs) {
    unheardLogs.push({ type: 'log', level, text });
  } else {
    post({ type: 'log', level, text });
  }
}

/** A kernel took this worker: post the log lines kept so far, and every later one at once. */
export function startLogging(): void {
  for (const line of unheardLogs ?? []) {
    post(line);
  }
  unheardLogs = null;
}

export const t0 = performance.now();
export const elapsed = (): number => Math.round(performance.now() - t0);
