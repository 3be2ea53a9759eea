/**
 * Early start of the spare kernel worker, prepended to the labextension's remoteEntry script at build time
 * (ts/webpack.extra.js). JupyterLite's bootstrap loads every extension's remoteEntry right after its page config
 * is merged, before the app's own chunks; the plugin activates only once those are loaded and evaluated (measured
 * at 40 Mbit/s: remoteEntry at 0.27 s, activation at 1.7 s). Starting the worker here overlaps Pyodide's and the
 * snapshot's downloads with the app's. The plugin's WorkerPool takes this spare (takeEarlySpare) instead of making
 * its own, so nothing is loaded twice.
 *
 * With the app's chunks in one pack (concurrent_kernel/lite_app_pack.py) the remoteEntry comes only after the pack
 * has run (0.9 s at 40 Mbit/s). So this module is also built on its own as static/ck-early.js, which the pack's
 * loader runs as soon as the page's config is merged when the pack's first bytes came over a slow link (0.3 s).
 *
 * It does nothing outside a JupyterLite page (a JupyterLab server also loads this remoteEntry), when the extension
 * or its plugin is disabled, when the plugin's `prewarm` setting is false, or on a page for another kernel
 * (spareWanted). It makes no spare when the page's scripts came over a fast link (see startNow: the plugin starts it
 * as it activates, as before). On a page that is not cross-origin isolated and not yet controlled by JupyterLite's
 * service worker (a first visit), it registers that service worker first, so that the spare, made here or by the
 * plugin, is one the kernel can keep.
 */
import {
  EARLY_CLOSED_KEY,
  EARLY_SPARE_KEY,
  EARLY_TRIED_KEY,
  EXTENSION_NAME,
  ISpareSettings,
  MARKS,
  PLUGIN_ID,
  SLOW_LINK_KEY,
  spareUrls,
  spareWanted,
  startSpare,
  STOCK_PLUGIN_ID
} from './spare';

/** JupyterLite's plugin that registers its service worker (the kernel's files and stdin go through it). */
const SERVICE_WORKER_PLUGIN = '@jupyterlite/application-extension:service-worker-manager';

function isDisabled(disabled: unknown, id: string): boolean {
  return (
    Array.isArray(disabled) &&
    disabled.some(pattern => {
      if (typeof pattern !== 'string') {
        return false;
      }
      try {
        return pattern === id || new RegExp(pattern).test(id);
      } catch {
        return false;
      }
    })
  );
}

/**
 * Link speed (bytes/s) above which the page waits on the CPU about as much as on bytes (its 18 MB in 2 s). The
 * app's bundle (232 KB) arrived in 1-16 ms on localhost under load, in 50-80 ms at 40 Mbit/s (3-5 MB/s).
 */
const FAST_LINK = 8e6;

/**
 * Whether to make the spare now rather than when the plugin activates. Yes when the page's scripts came from the
 * browser's cache (transferSize below the body size: none, or a 304's headers), a reload: the worker's files are
 * cached too, and its decoding and compiling overlap the app's start (reloads 1.77 vs 2.06 s and 1.59 vs 1.70 s
 * median, sooner in 8 of 10; an earlier build whose worker inflated gzip was 0.3-0.4 s slower under heavier load).
 * Yes when they came over a slow link (the largest under FAST_LINK): the page waits on bytes (40 Mbit/s, cold:
 * 0.2-0.9 s sooner). No on a fast link, where the app's start needs the CPU first: on localhost the spare was
 * loaded before the app had made its kernel and ran its JIT warm-up, 1.4 s of CPU, while the app was starting.
 */
function startNow(): boolean {
  if ((globalThis as unknown as Record<string, unknown>)[SLOW_LINK_KEY] === true) {
    return true; // the app pack's loader timed its pack (lite_app_pack.py): the same test, made sooner
  }
  const entries = (performance.getEntriesByType?.('resource') ?? []) as PerformanceResourceTiming[];
  const fetched = entries.filter(
    e => /\.js(\?|$)/.test(e.name) && e.encodedBodySize > 0 && e.transferSize > e.encodedBodySize
  );
  // The largest (the app's bundle, 232 KB): small files take as long as the scheduling of their few packets.
  const probe = fetched.sort((a, b) => b.encodedBodySize - a.encodedBodySize)[0];
  return !probe || probe.encodedBodySize / (Math.max(probe.responseEnd - probe.responseStart, 1) / 1000) < FAST_LINK;
}

function earlyStart(): void {
  const script = typeof document !== 'undefined' ? document.getElementById('jupyter-config-data') : null;
  const g = globalThis as unknown as Record<string, unknown>;
  // data-jupyter-lite-root marks a JupyterLite page (config-utils.js has merged its config into this script).
  if (
    !script ||
    script.dataset.jupyterLiteRoot === undefined ||
    g[EARLY_SPARE_KEY] ||
    g[EARLY_TRIED_KEY] ||
    typeof Worker === 'undefined'
  ) {
    return;
  }
  const config = JSON.parse(script.textContent || '{}');
  const conf: ISpareSettings = config.litePluginSettings?.[PLUGIN_ID] ?? {};
  if (
    conf.prewarm === false ||
    isDisabled(config.disabledExtensions, EXTENSION_NAME) ||
    isDisabled(config.disabledExtensions, PLUGIN_ID)
  ) {
    return;
  }
  const stockExtension = STOCK_PLUGIN_ID.split(':')[0];
  const stockPresent =
    Array.isArray(config.federated_extensions) &&
    config.federated_extensions.some((e: { name?: unknown }) => e?.name === stockExtension) &&
    !isDisabled(config.disabledExtensions, stockExtension) &&
    !isDisabled(config.disabledExtensions, STOCK_PLUGIN_ID);
  if (!spareWanted(window.location.search, config.defaultKernelName, stockPresent)) {
    return;
  }
  const now = startNow();
  if (now) {
    g[EARLY_TRIED_KEY] = true;
  }
  const baseUrl = new URL(config.baseUrl || '/', window.location.href).href;
  const { workerUrl, indexURL } = spareUrls(baseUrl, conf);
  const start = (): void => {
    if (now && !g[EARLY_CLOSED_KEY]) {
      performance.mark(MARKS.earlySpare);
      g[EARLY_SPARE_KEY] = startSpare(workerUrl, indexURL);
    }
  };
  // A page that is not cross-origin isolated gives the kernel the notebook's files through JupyterLite's service
  // worker, which sees only the requests of workers made while it controls the page: on a first visit (not
  // controlled yet) the kernel replaces a spare made before (WorkerPool.take), its downloads wasted, whether this
  // script or the plugin made it. So register the service worker now, as JupyterLite's plugin will later (the same
  // script URL: the same registration), and make the spare once it controls the page.
  const isolated = typeof SharedArrayBuffer !== 'undefined' && !!globalThis.crossOriginIsolated;
  const sw = navigator.serviceWorker;
  if (!isolated && sw && !sw.controller) {
    if (!isDisabled(config.disabledExtensions, SERVICE_WORKER_PLUGIN)) {
      void controlledByServiceWorker(sw, baseUrl, config.enableServiceWorkerCache).then(ok => ok && start());
    }
    return;
  }
  start();
}

/** Register JupyterLite's service worker (the URL its plugin registers) and wait until it controls the page. */
async function controlledByServiceWorker(
  sw: ServiceWorkerContainer,
  baseUrl: string,
  enableCache: unknown
): Promise<boolean> {
  const url = new URL('service-worker.js', baseUrl.replace(/\/?$/, '/'));
  url.searchParams.set('enableCache', String(enableCache || 'false'));
  const changed = new Promise<void>(resolve =>
    sw.addEventListener('controllerchange', () => resolve(), { once: true })
  );
  try {
    await sw.register(url.href);
  } catch (err) {
    console.warn('concurrent kernel: early service worker registration failed', err);
    return false;
  }
  await Promise.race([changed, new Promise(resolve => setTimeout(resolve, 5000))]);
  return !!sw.controller;
}

try {
  earlyStart();
} catch (err) {
  // The plugin starts its spare at activation instead.
  console.warn('concurrent kernel: early start of the spare worker failed', err);
}
