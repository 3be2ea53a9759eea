/**
 * Web Worker running Pyodide and the concurrent-kernel core.
 *
 * The main thread posts raw Jupyter messages (JSON with a "channel" key plus
 * buffers); they are handed to the core's callback transport one call per
 * message. Every outgoing message comes back through one JS callback and is
 * posted to the main thread. Everything is loaded from the site (indexURL).
 *
 * This file takes the page's messages and starts the kernel; the rest is in worker/, by concern:
 * - page.ts: posting to the page, log lines, the clock; state.ts: what the modules share.
 * - kernelBridge.ts: the page transport into and out of the core's callback transport.
 * - warm.ts: phase 1 (a spare's start: manifest, snapshot or packages, warm-up); prefetch.ts: Pyodide's files
 *   fetched and compiled early; pyodideLoader.ts: Pyodide's scripts and loadPyodide.
 * - snapshot.ts: the memory snapshot restored; brotli.ts, streams.ts: brotli and gzip data decoded as it arrives.
 * - files.ts: file bundles and files filled on first open; stdlib.ts: the standard library zip behind the
 *   snapshot; laterFiles.ts: what a first result does not read; background.ts: when those load.
 * - drive.ts: JupyterLite's DriveFS at /drive; packages.ts: wheels, the import check, the lock's URLs.
 * - stdin.ts: input(); interrupt.ts: interrupts from the page; faults.ts: uncaught errors and Python's death.
 */
import { IInitOptions, STDIN_BUFFER_BYTES, ToWorker } from './protocol';
import { loadInBackgroundSoon } from './worker/background';
import { mountDrive } from './worker/drive';
import { watchFatal, watchUncaught } from './worker/faults';
import { blockingSleep, busyFlag, onInterrupt, setKernelInterrupt, useInterruptBuffer } from './worker/interrupt';
import { deliverQueued, fromPage, markFailed, startKernel } from './worker/kernelBridge';
import { pointLockAtDistribution } from './worker/packages';
import { elapsed, log, post, startLogging } from './worker/page';
import { state as worker } from './worker/state';
import { inputRequest } from './worker/stdin';
import { LoadError, warm } from './worker/warm';

/** Phase 2: start the kernel with this page's callbacks. */
async function start(opts: IInitOptions): Promise<void> {
  worker.options = opts;
  startLogging();
  try {
    const timings: Record<string, number> = { ...(await warm(opts.indexURL)), init: elapsed() };
    const py = worker.pyodide!;
    watchFatal(py);
    if (opts.interruptBuffer) {
      useInterruptBuffer(py, opts.interruptBuffer);
    }
    // sys.stdin is at its end, as in a kernel that jupyter_client started (input() asks the front end instead).
    py.setStdin({ stdin: () => undefined });
    const driveNotice = mountDrive(py, opts);
    if (driveNotice) {
      log('warn', driveNotice);
    }
    const packages = opts.packages ?? { pipliteUrls: [], disablePyPIFallback: false };
    const distributionUrl = pointLockAtDistribution(py, packages.distributionUrl);
    const services = JSON.stringify({ ...packages, distributionUrl, driveNotice });
    timings.mounted = elapsed();
    const canInput = !!(opts.stdinBuffer || opts.browsingContextId);
    setKernelInterrupt(
      startKernel(
        py,
        canInput ? inputRequest : null,
        blockingSleep(),
        services,
        !!opts.debugger,
        busyFlag(),
        worker.siteProfile
      )
    );
    timings.started = elapsed();
    post({ type: 'ready', elapsedMs: elapsed(), timings });
    deliverQueued();
    // The later files once the first cell has answered (or soon anyway): not beside the app's last downloads.
    loadInBackgroundSoon();
  } catch (err) {
    markFailed();
    const msg = err instanceof LoadError ? err.message : `concurrent kernel failed while starting the kernel: ${err}`;
    post({ type: 'load-error', error: msg });
  }
}

watchUncaught();

self.onmessage = (ev: MessageEvent<ToWorker>): void => {
  const data = ev.data;
  switch (data.type) {
    case 'warm':
      void warm(data.indexURL).catch(() => undefined);
      break;
    case 'init':
      void start(data.options);
      break;
    case 'msg':
      fromPage(data.msgJson, data.buffers);
      break;
    case 'interrupt':
      onInterrupt(data.seq);
      break;
    case 'site-profile':
      worker.siteProfile = data.found;
      break;
  }
};

export { STDIN_BUFFER_BYTES };
