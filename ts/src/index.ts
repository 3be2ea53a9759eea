/**
 * JupyterLite plugin registering the "concurrent" kernel.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IServiceWorkerManager } from '@jupyterlite/apputils';
import { IKernelClient, IKernelSpecs } from '@jupyterlite/services';

import { ConcurrentKernel, WorkerPool, liveKernels } from './kernel';

export { ConcurrentKernel, WorkerPool, liveKernels } from './kernel';

const PLUGIN_ID = 'concurrent-kernel:plugin';
const EXTENSION_NAME = 'concurrent-kernel';

/** Optional settings under litePluginSettings["concurrent-kernel:plugin"] in jupyter-lite.json. */
interface ISettings {
  /** Directory URL with pyodide.mjs, pyodide-lock.json, ck-manifest.json and wheels. */
  indexURL?: string;
  /** URL of the worker script. */
  workerUrl?: string;
  /** Keep one worker with Pyodide loaded ahead of time (default true). */
  prewarm?: boolean;
}

const LOGO =
  'data:image/svg+xml;base64,' +
  btoa(
    '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" viewBox="0 0 64 64">' +
      '<rect width="64" height="64" rx="10" fill="#1f5f8b"/>' +
      '<path d="M14 20h36M14 32h36M14 44h36" stroke="#ffd43b" stroke-width="6" stroke-linecap="round"/>' +
      '</svg>'
  );

function settings(): ISettings {
  try {
    return JSON.parse(PageConfig.getOption('litePluginSettings') || '{}')[PLUGIN_ID] ?? {};
  } catch {
    return {};
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'A Pyodide kernel running the concurrent-kernel core in a Web Worker.',
  autoStart: true,
  requires: [IKernelSpecs],
  optional: [IKernelClient, IServiceWorkerManager],
  activate: (
    _app: JupyterFrontEnd,
    kernelSpecs: IKernelSpecs,
    kernelClient: IKernelClient | null,
    serviceWorker: IServiceWorkerManager | null
  ): void => {
    const baseUrl = new URL(PageConfig.getBaseUrl(), window.location.href).href;
    const staticDir = URLExt.join(baseUrl, 'extensions', EXTENSION_NAME, 'static/');
    const conf = settings();
    const indexURL = new URL(conf.indexURL ?? URLExt.join(staticDir, 'pyodide/'), baseUrl).href;
    const workerUrl = new URL(conf.workerUrl ?? URLExt.join(staticDir, 'ck-worker.js'), baseUrl).href;

    const pool = new WorkerPool(workerUrl, indexURL, conf.prewarm ?? true);
    // Warm a spare right away (its own thread), so the first notebook finds Pyodide loaded.
    pool.refill();

    kernelSpecs.register({
      spec: {
        name: 'concurrent',
        display_name: 'Python (concurrent)',
        language: 'python',
        argv: [],
        resources: { 'logo-32x32': LOGO, 'logo-64x64': LOGO }
      },
      create: async options =>
        new ConcurrentKernel({
          ...options,
          workerUrl,
          indexURL,
          baseUrl,
          browsingContextId: serviceWorker?.browsingContextId,
          worker: pool.take(),
          onQuiet: () => pool.refill()
        })
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

export default plugin;
