/** What the worker's modules share once known: the page's options (set when a kernel takes the worker), Python. */
import type { IInitOptions } from '../protocol';
import type { IManifest, IPyodide } from './types';

export const state: {
  /** The kernel's options; null while this is a spare no kernel has taken. */
  options: IInitOptions | null;
  /** Python, once started (from the snapshot or by installing the packages). */
  pyodide: IPyodide | null;
  /** The build's ck-manifest.json, once fetched. */
  manifest: IManifest | null;
  /** Whether the notebook's files hold an IPython profile (.ipython), once the page has looked; null until then. */
  siteProfile: boolean | null;
} = { options: null, pyodide: null, manifest: null, siteProfile: null };
