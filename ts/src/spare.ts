/**
 * The spare kernel worker: started ahead of any kernel so Pyodide and the snapshot download and load while the
 * app is still loading. No imports: this module is also bundled on its own into the labextension's remoteEntry
 * script (ts/src/early.ts), which the page evaluates long before the plugin activates.
 */

/** Name of the global under which the remoteEntry's early start leaves its spare for the plugin's WorkerPool. */
export const EARLY_SPARE_KEY = '__concurrentKernelEarlySpare';
/** Set once the pool has looked for the early spare: one started later would never be taken. */
export const EARLY_CLOSED_KEY = '__concurrentKernelEarlyClosed';
/** Set once an early start is under way (the app pack's loader and the remoteEntry both run early.ts). */
export const EARLY_TRIED_KEY = '__concurrentKernelEarlyTried';
/**
 * Set by the app pack's loader (concurrent_kernel/lite_app_pack.py) when the pack came over a slow link: it then
 * runs early.ts (ck-early.js) as soon as the page's config is merged, long before the remoteEntry script loads.
 */
export const SLOW_LINK_KEY = '__concurrentKernelSlowLink';

/** Performance marks of the page-load timeline (bench/browser_bench.py, tests/browser/test_page_load.py). */
export const MARKS = {
  /** The early start (ck-early.js or the remoteEntry script) made the spare. */
  earlySpare: 'concurrent-kernel:early-spare',
  /** The plugin activated (where a spare not started early is made). */
  activated: 'concurrent-kernel:activated',
  /** A kernel took the early spare as its worker. */
  tookEarlySpare: 'concurrent-kernel:took-early-spare'
} as const;

/** The labextension's package name (its folder under the site's extensions/). */
export const EXTENSION_NAME = 'concurrent-kernel';
export const PLUGIN_ID = 'concurrent-kernel:plugin';
/** The kernelspec name of this kernel. */
export const KERNEL_NAME = 'concurrent';
/** The stock Pyodide kernel's plugin: while it is there, the default kernel name "python" means that kernel. */
export const STOCK_PLUGIN_ID = '@jupyterlite/pyodide-kernel-extension:kernel';

/**
 * Whether the page is to start this kernel, so that a spare worker is worth its downloads (9.5 MB on a cold page)
 * and its CPU: the kernel the URL names (`?kernel=`, the REPL's), else the site's default kernel (this one when
 * none is set, or "python" without the stock kernel: the plugin then makes itself the default). A page for another
 * kernel makes none: measured at 40 Mbit/s, a stock-kernel REPL shared its link with this spare's 9.5 MB. A kernel
 * of this kind started there later gets a worker of its own, and spares follow it (WorkerPool.refill).
 */
export function spareWanted(search: string, defaultKernel: unknown, stockPresent: boolean): boolean {
  const named = new URLSearchParams(search).get('kernel');
  if (named) {
    return named === KERNEL_NAME;
  }
  return !defaultKernel || defaultKernel === KERNEL_NAME || (defaultKernel === 'python' && !stockPresent);
}

/** Settings that decide where the spare comes from (litePluginSettings["concurrent-kernel:plugin"]). */
export interface ISpareSettings {
  indexURL?: string;
  workerUrl?: string;
  prewarm?: boolean;
}

/** A worker told to warm up (load Pyodide from the snapshot), not yet given to a kernel. */
export interface ISpare {
  worker: Worker;
  workerUrl: string;
  indexURL: string;
  /** Whether JupyterLite's service worker controlled the page when the worker was made (it then sees its requests). */
  controlled: boolean;
  /** Whether the worker has reported it is loaded and warmed up. */
  warmed: boolean;
  /** Stop listening to the worker (a kernel takes its messages from here on). */
  release(): void;
}

/** The worker script and Pyodide folder for a site whose base URL is BASE_URL (absolute). */
export function spareUrls(baseUrl: string, conf: ISpareSettings): { workerUrl: string; indexURL: string } {
  const staticDir = new URL(`extensions/${EXTENSION_NAME}/static/`, baseUrl.replace(/\/?$/, '/')).href;
  return {
    indexURL: new URL(conf.indexURL ?? `${staticDir}pyodide/`, baseUrl).href,
    workerUrl: new URL(conf.workerUrl ?? `${staticDir}ck-worker.js`, baseUrl).href
  };
}

/** Make a worker and tell it to load Python and warm up. */
export function startSpare(workerUrl: string, indexURL: string): ISpare {
  const worker = new Worker(workerUrl, { type: 'module', name: 'concurrent-kernel' });
  const spare: ISpare = {
    worker,
    workerUrl,
    indexURL,
    controlled: !!navigator.serviceWorker?.controller,
    warmed: false,
    release: () => worker.removeEventListener('message', onMessage)
  };
  const onMessage = (ev: MessageEvent): void => {
    if (ev.data?.type === 'progress' && ev.data.phase === 'warmed') {
      spare.warmed = true;
    }
  };
  worker.addEventListener('message', onMessage);
  worker.postMessage({ type: 'warm', indexURL });
  return spare;
}

/**
 * The spare the page's early start made for these URLs, if any (it is handed out once). One made for other URLs
 * (the settings changed in between) is stopped.
 */
export function takeEarlySpare(workerUrl: string, indexURL: string): ISpare | null {
  const g = globalThis as unknown as Record<string, ISpare | boolean | undefined>;
  g[EARLY_CLOSED_KEY] = true;
  const early = g[EARLY_SPARE_KEY] as ISpare | undefined;
  if (!early) {
    return null;
  }
  delete g[EARLY_SPARE_KEY];
  if (early.workerUrl === workerUrl && early.indexURL === indexURL) {
    return early;
  }
  early.release();
  early.worker.terminate();
  return null;
}
