/**
 * JupyterLite plugin registering the "concurrent" kernel.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { IServiceWorkerManager } from '@jupyterlite/apputils';
import { IKernelClient, IKernelSpecs } from '@jupyterlite/services';

import debuggerPlugin, { canSuspendWasm, debuggerDisabled } from './debugger';
import { fastSendsFor } from './fastSocket';
import { ConcurrentKernel, WorkerPool, liveKernels } from './kernel';
import type { IPackageSettings } from './protocol';
import { KERNEL_NAME, MARKS, PLUGIN_ID, spareUrls, spareWanted, STOCK_PLUGIN_ID } from './spare';

export { ConcurrentKernel, WorkerPool, liveKernels } from './kernel';

/** Optional settings under litePluginSettings["concurrent-kernel:plugin"] in jupyter-lite.json. */
interface ISettings {
  /** Directory URL with pyodide.mjs, pyodide-lock.json, ck-manifest.json and wheels. */
  indexURL?: string;
  /** URL of the worker script. */
  workerUrl?: string;
  /** Keep one worker with Pyodide loaded ahead of time (default true). */
  prewarm?: boolean;
  /** piplite all.json indexes of wheels shipped with the site (default: the stock kernel's, from the piplite addon). */
  pipliteUrls?: string[];
  /** Base URL of the Pyodide distribution for its packages the site does not ship (default: its public CDN). */
  pyodideDistUrl?: string;
  /** Package indexes tried last, when online (default: PyPI). */
  indexUrls?: string[];
  /** Never use indexUrls (default false). */
  disablePyPIFallback?: boolean;
}

/**
 * The stock Pyodide kernel's settings: the piplite build addon (`piplite_urls`, the site's pypi/ folder) writes the
 * site's wheel indexes there, and they are the same wheels for this kernel. Its other settings stay its own.
 */

const LOGO =
  'data:image/svg+xml;base64,' +
  btoa(
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">' +
      '<rect width="64" height="64" rx="10" fill="#1f5f8b"/>' +
      '<path d="M14 20h36M14 32h36M14 44h36" stroke="#ffd43b" stroke-width="6" stroke-linecap="round"/>' +
      '</svg>'
  );

function settings(id = PLUGIN_ID): ISettings {
  try {
    return JSON.parse(PageConfig.getOption('litePluginSettings') || '{}')[id] ?? {};
  } catch {
    return {};
  }
}

/** Package sources with absolute URLs (the app's config loader has made them relative to the site). */
function packageSettings(conf: ISettings, baseUrl: string): IPackageSettings {
  const stock = settings(STOCK_PLUGIN_ID);
  const abs = (u: string): string => new URL(u, baseUrl).href.replace(/%7Bpackage_name%7D/g, '{package_name}');
  return {
    pipliteUrls: (conf.pipliteUrls ?? stock.pipliteUrls ?? []).map(abs),
    distributionUrl: conf.pyodideDistUrl ? abs(conf.pyodideDistUrl) : undefined,
    indexUrls: conf.indexUrls?.map(abs),
    disablePyPIFallback: !!conf.disablePyPIFallback
  };
}

/**
 * Whether JupyterLite's service worker answers this page's requests (registered and controlling the page, so the
 * kernel's worker, made by the page, goes through it too), waiting a little for it to settle.
 */
async function serviceWorkerReady(serviceWorker: IServiceWorkerManager | null): Promise<boolean> {
  const sw = navigator.serviceWorker;
  const controlled = (): boolean => !!serviceWorker?.enabled && !!sw?.controller;
  if (!serviceWorker || !sw || controlled()) {
    return controlled();
  }
  const settled = (async () => {
    await serviceWorker.ready;
    if (!sw.controller) {
      await new Promise(resolve => sw.addEventListener('controllerchange', resolve, { once: true }));
    }
    return controlled();
  })().catch(() => false);
  const timeout = new Promise<boolean>(resolve => setTimeout(() => resolve(false), 5000));
  return Promise.race([settled, timeout]);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A Pyodide kernel running the concurrent-kernel core in a Web Worker.',
  autoStart: true,
  requires: [IKernelSpecs],
  optional: [IKernelClient, IServiceWorkerManager],
  activate: (
    app: JupyterFrontEnd,
    kernelSpecs: IKernelSpecs,
    kernelClient: IKernelClient | null,
    serviceWorker: IServiceWorkerManager | null
  ): void => {
    performance.mark(MARKS.activated);
    const baseUrl = new URL(PageConfig.getBaseUrl(), window.location.href).href;
    const conf = settings();
    // The same URLs as the remoteEntry script's early start (ts/src/early.ts), so the pool takes that spare.
    const { workerUrl, indexURL } = spareUrls(baseUrl, conf);

    const pool = new WorkerPool(workerUrl, indexURL, conf.prewarm ?? true);
    // A cross-origin isolated page mounts the files through shared buffers; only otherwise is the service worker
    // needed (and waited for).
    const isolated = typeof SharedArrayBuffer !== 'undefined' && !!globalThis.crossOriginIsolated;
    // JupyterLite's own settings name "python" (the stock Pyodide kernel) as the default kernel. On a site without
    // that kernel the default names nothing: make this one the default (New Notebook, a REPL without ?kernel=).
    // Notebooks asking for "python" (jupyterlite-sphinx's try_examples) then get it as the site's Python kernel.
    const configuredDefault = PageConfig.getOption('defaultKernelName');
    const stockPresent = app.hasPlugin(STOCK_PLUGIN_ID) && !PageConfig.Extension.isDisabled(STOCK_PLUGIN_ID);
    if (!configuredDefault || (configuredDefault === 'python' && !stockPresent)) {
      PageConfig.setOption('defaultKernelName', KERNEL_NAME);
    }
    // Warm a spare right away (its own thread), so the first notebook finds Pyodide loaded: the one the
    // remoteEntry script started long before this activation, or a new one. On a first visit to a page that is not
    // isolated, a spare made before JupyterLite's service worker controls the page would be replaced by the kernel
    // (take) and its downloads wasted: it is made once the service worker controls the page (or gave up). With the
    // app's chunks in one pack (lite_app_pack.py) the plugin activates before that service worker is registered.
    // Only on a page for this kernel (spareWanted): elsewhere the first kernel of this kind refills the pool.
    if (spareWanted(window.location.search, configuredDefault, stockPresent)) {
      if (!isolated && serviceWorker && navigator.serviceWorker && !navigator.serviceWorker.controller) {
        void serviceWorkerReady(serviceWorker).then(() => pool.refill());
      } else {
        pool.refill();
      }
    }

    // The debugger (./debugger.ts): offered where a stopped cell can suspend its stack, unless the site leaves
    // it out. The kernelspec says so as the CPython kernel's does (JupyterLab shows its panel only then).
    const offerDebugger = canSuspendWasm() && !debuggerDisabled();
    // Before the app connects to any kernel: this kernel's requests then skip mock-socket's 4 ms timer
    // (fastSocket.ts); other kernels' sockets keep mock-socket's own send.
    fastSendsFor(app.serviceManager.kernels.serverSettings as unknown as { WebSocket: unknown }, id =>
      liveKernels.has(id)
    );
    kernelSpecs.register({
      spec: {
        name: KERNEL_NAME,
        display_name: 'Python (concurrent)',
        language: 'python',
        argv: [],
        metadata: { debugger: offerDebugger },
        resources: { 'logo-32x32': LOGO, 'logo-64x64': LOGO }
      },
      create: async options => {
        const serviceWorkerEnabled = isolated ? false : await serviceWorkerReady(serviceWorker);
        return new ConcurrentKernel({
          ...options,
          workerUrl,
          indexURL,
          baseUrl,
          browsingContextId: serviceWorker?.browsingContextId,
          worker: pool.take(serviceWorkerEnabled),
          onQuiet: () => pool.refill(),
          takeWorker: () => pool.take(serviceWorkerEnabled),
          onShutDown: kernel => void kernelClient?.shutdown(kernel.id),
          contentsManager: app.serviceManager.contents,
          serviceWorkerEnabled,
          packages: packageSettings(conf, baseUrl),
          debugger: offerDebugger,
          sessionPath: () => sessionPath(app, options.id)
        });
      }
    });

    // JupyterLite's interrupt only cancels its own message queue: tell our kernel too.
    if (kernelClient) {
      const original = kernelClient.interrupt.bind(kernelClient);
      kernelClient.interrupt = async (kernelId: string): Promise<void> => {
        liveKernels.get(kernelId)?.interrupt();
        return original(kernelId);
      };
    } else {
      console.warn('concurrent kernel: no IKernelClient, interrupts will not reach the kernel');
    }
    const w = window as unknown as { concurrentKernels: typeof liveKernels; concurrentKernelPool: WorkerPool };
    w.concurrentKernels = liveKernels;
    w.concurrentKernelPool = pool;
  }
};

/** The path of the notebook (or console) whose session runs this kernel, once the session lists it. */
function sessionPath(app: JupyterFrontEnd, kernelId: string): string | undefined {
  for (const session of app.serviceManager.sessions.running()) {
    if (session.kernel?.id === kernelId) {
      return session.path;
    }
  }
  return undefined;
}

export default [plugin, debuggerPlugin];
