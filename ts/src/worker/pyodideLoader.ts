/** Pyodide's two scripts (pyodide.mjs and its module factory pyodide.asm.mjs), imported early, and loadPyodide. */
import { elapsed, log } from './page';
import { gunzipped, plainFetch } from './streams';
import type { IModule, IPyodide } from './types';

/** Pyodide's module factory (pyodide.asm.mjs), loaded as soon as the manifest says whether it comes gzipped. */
let moduleFactory: Promise<(settings: unknown) => Promise<IModule>> | null = null;

async function loadModuleFactory(
  base: string,
  gzipped: boolean,
  timings: Record<string, number>
): Promise<(settings: unknown) => Promise<IModule>> {
  let url = base + 'pyodide.asm.mjs';
  if (gzipped) {
    const resp = await plainFetch(url + '.gz');
    if (resp.ok) {
      const text = await new Response(await gunzipped(resp.body!)).blob();
      url = URL.createObjectURL(new Blob([text], { type: 'text/javascript' }));
    }
  }
  try {
    const factory = (await import(/* webpackIgnore: true */ url)).default;
    timings.moduleScript = elapsed();
    return factory;
  } finally {
    if (url.startsWith('blob:')) {
      URL.revokeObjectURL(url);
    }
  }
}

/** pyodide.mjs, imported as the worker starts. */
let pyodideScript: Promise<{ loadPyodide(options: unknown): Promise<unknown> }> | null = null;

/** Import pyodide.mjs now (with the manifest, not after the snapshot). */
export function importPyodideScript(base: string): void {
  pyodideScript = import(/* webpackIgnore: true */ base + 'pyodide.mjs');
  pyodideScript.catch(() => undefined);
}

/** Load the module factory now (its .gz when the site ships one). */
export function importModuleFactory(base: string, gzipped: boolean, timings: Record<string, number>): void {
  moduleFactory = loadModuleFactory(base, gzipped, timings);
  moduleFactory.catch(() => undefined);
}

/** The module factory imported early, else imported now. */
export function getModuleFactory(
  base: string,
  timings: Record<string, number>
): Promise<(settings: unknown) => Promise<IModule>> {
  return moduleFactory ?? loadModuleFactory(base, false, timings);
}

export async function loadPyodideFrom(base: string, extra: Record<string, unknown>): Promise<IPyodide> {
  const mod = await (pyodideScript ?? import(/* webpackIgnore: true */ base + 'pyodide.mjs'));
  if (moduleFactory && !('createPyodideModule' in extra)) {
    extra = { ...extra, createPyodideModule: await moduleFactory };
  }
  return (await mod.loadPyodide({
    indexURL: base,
    lockFileURL: base + 'pyodide-lock.json',
    stdout: (text: string) => log('info', text),
    stderr: (text: string) => log('warn', text),
    ...extra
  })) as IPyodide;
}
