/**
 * JupyterLab's debugger panel on JupyterLite pages, for this kernel.
 *
 * The JupyterLite 0.8 app shares @jupyterlab/debugger (4.6.4) but bundles no @jupyterlab/debugger-extension,
 * the plugins that make the panel (the notebook toolbar's toggle, the sidebar with variables, call stack,
 * breakpoints, sources and kernel sources, the commands and their shortcuts). This extension carries that package
 * at the app's version (package.json pins it) and registers its plugins itself, on the lab and notebook pages, once
 * a kernel of the page offers the debugger (its kernel_info says `debugger: true`). So a page that never starts
 * such a kernel loads none of it, and other kernels see the panel as in JupyterLab (no toggle for a kernel
 * without a debugger). An app that has the debugger already (JupyterLab itself) is left alone.
 *
 * Leave it out of a site with `"disabledExtensions": ["concurrent-kernel:debugger"]` in jupyter-lite.json (the
 * kernel then offers no debugger either); disabling `@jupyterlab/debugger-extension` works too, as in JupyterLab.
 *
 * The one change made to the carried plugins: the `main` plugin takes the id `concurrent-kernel:debugger-panel`,
 * under which JupyterLite finds its settings (a federated extension's settings are named after the extension;
 * ts/scripts/build-labextension.sh copies the package's schema there). The other plugins keep their ids.
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ILabShell } from '@jupyterlab/application';
import type { ICodeCellModel } from '@jupyterlab/cells';
import { PageConfig } from '@jupyterlab/coreutils';
import type { IDebugger } from '@jupyterlab/debugger';
import type { INotebookTracker } from '@jupyterlab/notebook';

import { whenDebuggerOffered } from './debuggerSession';
import { KERNEL_NAME } from './spare';

export const DEBUGGER_PLUGIN_ID = 'concurrent-kernel:debugger';
/** The id the carried `main` plugin gets, and its settings' (ts/schema/debugger-panel.json). */
export const PANEL_SETTINGS_ID = 'concurrent-kernel:debugger-panel';
const UPSTREAM = '@jupyterlab/debugger-extension';

/** Whether this site leaves the debugger out (the kernel then offers none either). */
export function debuggerDisabled(): boolean {
  return (
    PageConfig.Extension.isDisabled(DEBUGGER_PLUGIN_ID) || PageConfig.Extension.isDisabled(`${UPSTREAM}:main`)
  );
}

/** Whether this browser can suspend a stopped cell's stack (JSPI): without it the kernel offers no debugger. */
export function canSuspendWasm(): boolean {
  return typeof (WebAssembly as unknown as { Suspending?: unknown }).Suspending === 'function';
}

async function loadPanel(app: JupyterFrontEnd): Promise<void> {
  // The carried package and its CSS are one chunk (ck-lazy-debugger, ts/webpack.extra.js), fetched only here;
  // @jupyterlab/debugger and @jupyterlab/notebook come from the app (shared modules).
  const [extension, debuggerModule, notebookModule] = await Promise.all([
    import('@jupyterlab/debugger-extension'),
    import('@jupyterlab/debugger'),
    import('@jupyterlab/notebook'),
    import('@jupyterlab/debugger/style/base.css')
  ]);
  const plugins = (extension.default as JupyterFrontEndPlugin<unknown>[]).filter(
    plugin => !PageConfig.Extension.isDisabled(plugin.id)
  );
  for (const plugin of plugins) {
    if (plugin.id === `${UPSTREAM}:main`) {
      (plugin as { id: string }).id = PANEL_SETTINGS_ID;
    }
  }
  app.registerPlugins(plugins);
  const started = await Promise.allSettled(plugins.filter(p => p.autoStart).map(p => app.activatePlugin(p.id)));
  started.forEach(result => {
    if (result.status === 'rejected') {
      console.error('concurrent kernel: a debugger plugin failed to start', result.reason);
    }
  });
  // Call stacks, breakpoints and sources name this kernel's cell files "Cell [n]", as the panel names ipykernel's
  // (whose display provider recognises only ipykernel's file names).
  const [service, displays, notebooks] = await Promise.all([
    app.resolveOptionalService(debuggerModule.IDebugger),
    app.resolveOptionalService(debuggerModule.IDebuggerDisplayRegistry),
    app.resolveOptionalService(notebookModule.INotebookTracker)
  ]);
  if (service && displays && notebooks) {
    displays.register({
      canHandle: source => {
        const prefix = service.config.getTmpFileParams(KERNEL_NAME)?.prefix;
        return !!prefix && !!source.path?.startsWith(prefix);
      },
      getDisplayName: source => cellLabel(notebooks, service, source.path ?? '') ?? source.path ?? ''
    });
  }
  // The notebook showing now was opened before the panel's handlers listened for the current widget: give it its
  // toggle as they would have.
  const handler = await app.resolveOptionalService(debuggerModule.IDebuggerHandler);
  const current = app.shell.currentWidget;
  if (handler && current instanceof notebookModule.NotebookPanel) {
    await current.sessionContext.ready;
    await handler.updateContext(current, current.sessionContext);
    app.commands.notifyCommandChanged();
  }
}

/** Whether the app's shell has a right-hand area for the sidebar (JupyterLite's single-widget shells have not). */
function hasRightArea(app: JupyterFrontEnd): boolean {
  try {
    Array.from(app.shell.widgets('right'));
    return true;
  } catch {
    return false;
  }
}

/** "Cell [n]" for the notebook cell whose code compiles under `path` (the panel's hash of its source). */
function cellLabel(
  notebooks: INotebookTracker,
  service: IDebugger,
  path: string
): string | undefined {
  let label: string | undefined;
  notebooks.forEach(panel => {
    for (const cell of panel.content.widgets) {
      const model = cell.model;
      if (label === undefined && model.type === 'code' && service.getCodeId(model.sharedModel.getSource()) === path) {
        const count = (model as ICodeCellModel).executionCount;
        label = (model as ICodeCellModel).executionState === 'running' ? 'Cell [*]' : `Cell [${count ?? ' '}]`;
      }
    }
  });
  return label;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: DEBUGGER_PLUGIN_ID,
  description: "JupyterLab's debugger panel (@jupyterlab/debugger-extension) for kernels that offer a debugger.",
  autoStart: true,
  optional: [ILabShell],
  activate: (app: JupyterFrontEnd, labShell: ILabShell | null): void => {
    if (app.hasPlugin(`${UPSTREAM}:main`) || app.hasPlugin(PANEL_SETTINGS_ID) || debuggerDisabled()) {
      return;
    }
    // The panel lives in a sidebar: the lab and the notebook pages have one, the REPL and the file editor do not.
    if (!labShell && !hasRightArea(app)) {
      return;
    }
    whenDebuggerOffered(() => {
      void loadPanel(app).catch(err => console.error('concurrent kernel: the debugger panel did not load', err));
    });
  }
};

export default plugin;
