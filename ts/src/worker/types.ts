/** Minimal structural types of the Pyodide and Emscripten APIs the worker uses, and of the build's manifest. */

export interface IPyProxy {
  (...args: unknown[]): unknown;
  callPromising?: (...args: unknown[]) => Promise<unknown>;
  destroy(): void;
}
export interface IPyodide {
  loadPackage(
    names: string[],
    options: { messageCallback: (m: string) => void; errorCallback: (m: string) => void }
  ): Promise<unknown>;
  runPython(code: string, options?: { globals?: unknown }): unknown;
  runPythonAsync(code: string): Promise<unknown>;
  globals: { get(name: string): IPyProxy };
  setInterruptBuffer(buffer: Int32Array): void;
  checkInterrupt(): void;
  setStdin(options: { stdin?: () => string | undefined }): void;
  FS: {
    mkdirTree(path: string): void;
    writeFile(path: string, data: Uint8Array, opts?: { canOwn?: boolean }): void;
    mount(type: unknown, opts: unknown, mountpoint: string): unknown;
    chdir(path: string): void;
    ErrnoError: new (errno: number) => Error;
  };
  PATH: unknown;
  ERRNO_CODES: Record<string, number>;
  version: string;
  _api: { lockfile_packages: Record<string, { file_name: string }>; on_fatal?: (err: unknown) => void };
}
export interface ISnapshotFiles {
  memory: string;
  files: string;
  /** The files a kernel reads only after its first result (make_snapshot.mjs), and their top-level modules. */
  later?: string;
  laterModules?: string[];
  /**
   * The standard library zip the snapshot was taken with (its name and size): Python reads it only for modules the
   * snapshot did not import, so it comes after the first result, or at once when Python opens it before.
   */
  stdlib?: { name: string; size: number };
  /**
   * RECORD files (package tools read them, a first result does not): in the later bundle, and also in a bundle of
   * their own, uncompressed, for an open before the later files arrive (make_snapshot.mjs).
   */
  records?: { bundle: string; paths: string[] };
  /**
   * The memory and the files also as brotli data (a third smaller than gzip), with their sizes once decoded and the
   * decoder (a wasm module, gzipped): Chromium's DecompressionStream inflates only gzip and deflate.
   */
  brotli?: {
    decoder: string;
    memory: string;
    memorySize: number;
    /** The memory file's bytes at offset..+length are XORed with a fresh module's memory at address..+length. */
    memoryDelta?: { offset: number; address: number; length: number };
    files: string;
    filesSize: number;
    wasm?: string;
  };
}
export interface IManifest {
  packages: string[];
  imports: string[];
  /** Wheel files the site ships beside the lock; the lock's other entries are the Pyodide distribution's. */
  shipped?: string[];
  /** Written by ts/scripts/make_snapshot.mjs (file names relative to indexURL). */
  snapshot?: ISnapshotFiles;
  /** Pyodide files the site also ships gzipped, as NAME.gz (a host need not compress them). */
  gzipped?: string[];
}

export interface IModule {
  growMemory(bytes: number): void;
  FS: IEmscriptenFS;
  ERRNO_CODES: Record<string, number>;
  HEAP32: Int32Array;
  /** Addresses of CPython's runtime state and of the offset of its call trampoline in it (Emscripten exports). */
  __PyRuntime?: number;
  __PyEM_EMSCRIPTEN_TRAMPOLINE_OFFSET?: number;
}

/** The parts of Emscripten's FS (MEMFS) that a file read on first open needs. */
export interface IEmscriptenNode {
  contents: Uint8Array | null;
  usedBytes: number;
  stream_ops: { open?: (stream: unknown) => void };
  node_ops: { getattr(node: IEmscriptenNode): { size: number } };
}
export interface IEmscriptenFS {
  readdir(path: string): string[];
  lookupPath(path: string): { node: IEmscriptenNode };
  ErrnoError: new (errno: number) => Error;
}
