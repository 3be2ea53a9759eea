/**
 * A JupyterLite kernel that forwards raw messages to a Pyodide Web Worker.
 *
 * It implements IKernel directly: every message (any channel, with buffers) is
 * posted to the worker and handleMessage returns at once, so JupyterLite's
 * per-kernel mutex never serialises requests; concurrency is the core's job.
 */
import type { Contents, KernelMessage } from '@jupyterlab/services';
import type { IKernel, TDriveMethod, TDriveRequest } from '@jupyterlite/services';
import { DriveContentsProcessor } from '@jupyterlite/services';
import { PromiseDelegate, UUID } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import {
  BUSY_ESCALATED,
  BUSY_IDLE,
  BUSY_ON_CPU,
  BUSY_SLOT,
  DRIVE_BUFFER_BYTES,
  DRIVE_REPLIED,
  DRIVE_TOO_LARGE,
  FromWorker,
  IInitOptions,
  INTERRUPT_SLOTS,
  IPackageSettings,
  PAUSE_SIGNAL,
  PAUSE_TAKEN_SLOT,
  SIGINT,
  STDIN_BUFFER_BYTES,
  STDIN_HEADER_BYTES,
  splitLocation,
  ToWorker
} from './protocol';
import { DEBUGGER_STATE_CHANNEL, DebuggerSessionKeeper, noteDebuggerOffered } from './debuggerSession';
import { ISpare, MARKS, startSpare, takeEarlySpare } from './spare';

/**
 * Longest hold of a request's messages after its busy status (_deliver): a short cell's messages reach the app
 * in one task. Measured (Chromium, 2 busy cores): the app's reaction to a busy status took 3-5 ms of the page's
 * thread plus a frame, and a `1+1` result posted by the worker meanwhile waited behind it.
 */
const HOLD_MS = 5;

/** Milliseconds the worker gets to acknowledge an interrupt before we escalate. */
const INTERRUPT_ACK_MS = 250;

/** Milliseconds between the page's first looks at a signal it set for Python (_watchSignal). */
const SIGNAL_LOOK_MS = 20;
/** The longest wait between two looks, for a signal Python has not checked yet (a long call in C). */
const SIGNAL_LOOK_MAX_MS = 1000;
/** How many times the page sets a signal again that Python did not say it took. */
const SIGNAL_RESETS = 3;

/**
 * Quiet time before the next spare worker is warmed. Warming one takes ~1.5 s of CPU; done at once, it slowed
 * the user's first cells by half (measured: first 50 round trips 17 ms p50 instead of 8 ms on 2 cores).
 */
const QUIET_MS = 2000;
/**
 * How long a kernel that offers the debugger must be quiet before the page loads the debugger panel (debugger.ts):
 * loading it straight after kernel_info made the cell after a notebook's first one wait ~150 ms.
 */
const PANEL_QUIET_MS = 500;

export const NOT_ISOLATED_NOTICE =
  'Interrupt: awaiting cells were cancelled, but blocking code (e.g. `while True: pass`) cannot be ' +
  'interrupted because this page is not cross-origin isolated (serve it with ' +
  'Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp). ' +
  'Restart the kernel to stop it.\n';

export namespace ConcurrentKernel {
  export interface IOptions extends IKernel.IOptions {
    /** URL of the bundled worker script. */
    workerUrl: string;
    /** Directory URL holding Pyodide, the lock, the manifest and the wheels. */
    indexURL: string;
    baseUrl: string;
    browsingContextId?: string;
    /** A worker already loading Pyodide (see WorkerPool); a new one is made otherwise. */
    worker?: Worker;
    /** The app's contents: mounted in Python at /drive (JupyterLite's DriveFS). */
    contentsManager?: Contents.IManager;
    /** Whether JupyterLite's service worker answers api/drive (used when the page is not cross-origin isolated). */
    serviceWorkerEnabled?: boolean;
    /** Package sources (see services/packages.py). */
    packages?: IPackageSettings;
    /** A worker to start Python in again after Python died or the kernel restarted itself (the pool's spare); a
     * new one by default. */
    takeWorker?: () => Worker;
    /** The kernel shut itself down (do_shutdown(False)): the plugin shuts it down in the app's kernel client. */
    onShutDown?: (kernel: ConcurrentKernel) => void;
    /** Offer the debugger (./debugger.ts). */
    debugger?: boolean;
    /** The path of the notebook this kernel runs for (its debug session is kept under it across a reload). */
    sessionPath?: () => string | undefined;
    /**
     * Called once, when Python is running and the kernel has then been quiet for QUIET_MS (or is disposed):
     * the pool warms the next spare then, not while the user's first cells compete with it for the CPU.
     */
    onQuiet?: () => void;
  }
}

/**
 * Keeps one spare worker that starts Python (from the snapshot) and warms it up ahead of time, so opening a
 * notebook does not wait for the download, the start-up and a cold JIT. The first spare is the one the page's
 * early start made (ts/src/early.ts, in the remoteEntry script) when there is one.
 */
export class WorkerPool {
  constructor(
    private readonly _workerUrl: string,
    private readonly _indexURL: string,
    private readonly _enabled: boolean
  ) {}

  /** Number of spare workers alive (0 or 1). */
  get spareCount(): number {
    return this._spare ? 1 : 0;
  }

  /** Whether the spare has Python loaded and warmed up, ready for a kernel. */
  get spareWarmed(): boolean {
    return !!this._spare?.warmed;
  }

  /** Whether the current spare is the one started early by the remoteEntry script (not by this pool). */
  get spareStartedEarly(): boolean {
    return this._spareEarly;
  }

  /**
   * Hand out the spare (or a fresh worker). `serviceWorker`: the kernel reaches its files through JupyterLite's
   * service worker, which sees only the requests of workers made while it controlled the page: a spare made
   * before (the first visit) is replaced.
   */
  take(serviceWorker = false): Worker {
    if (!this._spare && this._enabled) {
      this._adoptEarly();
    }
    let spare = this._spare;
    const early = this._spareEarly;
    this._spare = null;
    this._spareEarly = false;
    if (spare && serviceWorker && !spare.controlled) {
      spare.release();
      spare.worker.terminate();
      spare = null;
    }
    if (spare && early) {
      performance.mark(MARKS.tookEarlySpare);
    }
    spare?.release(); // the pool stops listening: a taken worker's messages are its kernel's
    return spare?.worker ?? this._create();
  }

  /** Start warming a spare if there is none (the page's early spare first). */
  refill(): void {
    if (this._enabled && !this._spare && !this._adoptEarly()) {
      this._spare = startSpare(this._workerUrl, this._indexURL);
    }
  }

  private _adoptEarly(): boolean {
    const early = takeEarlySpare(this._workerUrl, this._indexURL);
    if (early) {
      this._spare = early;
      this._spareEarly = true;
    }
    return !!early;
  }

  private _create(): Worker {
    return new Worker(this._workerUrl, { type: 'module', name: 'concurrent-kernel' });
  }

  private _spare: ISpare | null = null;
  private _spareEarly = false;
}

export const DRIVE_NOT_ANSWERED_NOTICE =
  "The notebook's files are not available to Python in this kernel: JupyterLite's service worker does not " +
  'answer its file requests (reload the page to let it). Python runs in a private in-memory folder.';

export const DRIVE_UNAVAILABLE_NOTICE =
  "The notebook's files are not available to Python in this page: JupyterLite's service worker is not " +
  'active (private windows and some browsers disable it) and the page is not cross-origin isolated. ' +
  'Python runs in a private in-memory folder; files it writes are not saved.';

type AnyMsg = KernelMessage.IMessage & { channel: string; buffers?: (ArrayBuffer | ArrayBufferView)[] };

/** Every live kernel, so the kernel client's interrupt can reach it. */
export const liveKernels = new Map<string, ConcurrentKernel>();

export class ConcurrentKernel implements IKernel {
  constructor(options: ConcurrentKernel.IOptions) {
    this.id = options.id;
    this.name = options.name;
    this.location = options.location;
    this._sendMessage = options.sendMessage;
    this._isolated = typeof SharedArrayBuffer !== 'undefined' && !!globalThis.crossOriginIsolated;
    this._onQuiet = options.onQuiet;
    this._options = options;
    this._debuggerSession = options.sessionPath
      ? new DebuggerSessionKeeper(options.baseUrl, options.sessionPath)
      : null;
    this._worker = this._startWorker(
      options.worker ?? new Worker(options.workerUrl, { type: 'module', name: 'concurrent-kernel' })
    );
    liveKernels.set(this.id, this);
    // The worker queues messages until Python is up, so the kernel is usable at once.
    this._ready.resolve();
  }

  readonly id: string;
  readonly name: string;
  readonly location: string;

  get ready(): Promise<void> {
    return this._ready.promise;
  }

  /** Resolves when Python is running (rejects with the load error). */
  get started(): Promise<void> {
    return this._started.promise;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  get disposed(): ISignal<this, void> {
    return this._disposed;
  }

  /** Whether interrupts can stop blocking code (SharedArrayBuffer available). */
  get crossOriginIsolated(): boolean {
    return this._isolated;
  }

  /** How many times Python died or the kernel restarted itself, and Python started again here (a fresh worker,
   * the same kernel id). */
  get restarts(): number {
    return this._restarts;
  }

  /** Load timings reported by the worker (ms since the worker started). */
  get timings(): Record<string, number> {
    return { ...this._timings };
  }

  async handleMessage(msg: KernelMessage.IMessage): Promise<void> {
    const m = msg as AnyMsg;
    if (this._isDisposed) {
      return;
    }
    if (m?.header?.msg_type === 'input_reply' && this._stdinBuffer && this._awaitingInput) {
      this._writeInputReply(m);
      return;
    }
    if (!m || typeof m !== 'object' || !m.header || typeof m.header.msg_type !== 'string') {
      console.error('concurrent kernel: dropping malformed message', msg);
      return;
    }
    if (this._loadError !== null) {
      this._replyWithError(m, 'KernelLoadError', this._loadError);
      return;
    }
    // Checked before the message counts as pending: a request refused here gets its error reply at once.
    const { buffers, ...rest } = m;
    if (buffers !== undefined && buffers !== null && !(Array.isArray(buffers) && buffers.every(isBinary))) {
      this._refuse(m, 'buffers must be a list of ArrayBuffers or typed arrays');
      return;
    }
    let msgJson: string;
    try {
      msgJson = JSON.stringify(rest);
    } catch (err) {
      this._refuse(m, `message could not be serialised: ${err}`);
      return;
    }
    if (m.header.session) {
      this._lastSession = m.header.session;
    }
    if (m.header.msg_type.endsWith('_request')) {
      this._pending.set(m.header.msg_id, m);
    }
    if (m.header.msg_type === 'execute_request') {
      this._executing.set(m.header.msg_id, m);
      this._lastExecute = m;
    }
    if (m.header.msg_type === 'debug_request') {
      const command = (m.content as { command?: unknown }).command;
      if (command === 'pause' && this._interruptBuffer && this._pythonReady) {
        // A busy cell would see the pause request only once it finishes: signal it through the interrupt buffer
        // (unless an interrupt is waiting there), until Python took it or the cell's step ended.
        const ctl = new Int32Array(this._interruptBuffer);
        Atomics.store(ctl, PAUSE_TAKEN_SLOT, 0);
        if (Atomics.compareExchange(ctl, 0, 0, PAUSE_SIGNAL) === 0) {
          this._watchSignal(
            ctl,
            PAUSE_SIGNAL,
            () => Atomics.load(ctl, PAUSE_TAKEN_SLOT) !== 0 || Atomics.load(ctl, BUSY_SLOT) === BUSY_IDLE
          );
        }
      }
      // Before the panel's first request after a reload: the session this notebook's kernel had (debuggerSession.ts).
      const kept = this._debuggerSession?.handOver();
      if (kept) {
        this._post({ type: 'msg', msgJson: kept, buffers: [] });
      }
    }
    trace('in', m);
    const out: ArrayBuffer[] = (buffers ?? []).map(b => copyBuffer(b));
    this._post({ type: 'msg', msgJson, buffers: out }, out);
  }

  /**
   * Interrupt the kernel: the worker cancels awaiting cells; if it does not
   * answer quickly (blocking code) and the page is cross-origin isolated, the
   * Pyodide interrupt buffer raises KeyboardInterrupt in the running code.
   */
  interrupt(): void {
    if (this._isDisposed) {
      return;
    }
    if (!this._pythonReady) {
      // An interrupt during Pyodide's load breaks startup: ignore it.
      return;
    }
    const seq = ++this._interruptSeq;
    const ctl = this._interruptBuffer ? new Int32Array(this._interruptBuffer) : null;
    if (ctl) {
      Atomics.store(ctl, 1, seq);
    }
    this._post({ type: 'interrupt', seq });
    // A cell's step is on the CPU (the worker's busy flag, worker/interrupt.ts busyFlag): the worker cannot answer
    // before it ends, so raise KeyboardInterrupt in it now. Claiming the flag lets the worker withdraw the signal if
    // the step leaves the CPU before Python takes it; the interrupt message then takes the soft path.
    if (ctl && Atomics.compareExchange(ctl, BUSY_SLOT, BUSY_ON_CPU, BUSY_ESCALATED) === BUSY_ON_CPU) {
      this._escalate(ctl, seq);
      return;
    }
    setTimeout(() => {
      if (this._isDisposed || this._ackedSeq >= seq) {
        return;
      }
      if (ctl) {
        this._escalate(ctl, seq);
      } else {
        this._notifyExecuting(NOT_ISOLATED_NOTICE);
      }
    }, INTERRUPT_ACK_MS);
    if (!ctl) {
      console.warn(NOT_ISOLATED_NOTICE);
    }
  }

  /** Set Pyodide's interrupt buffer for interrupt SEQ, unless the worker already claimed it (took the soft path). */
  private _escalate(ctl: Int32Array, seq: number): void {
    if (Atomics.compareExchange(ctl, 1, seq, -seq) !== seq) {
      return;
    }
    // After the wait for an answer, a step may be on the CPU: claim it too, so that its end withdraws the signal.
    Atomics.compareExchange(ctl, BUSY_SLOT, BUSY_ON_CPU, BUSY_ESCALATED);
    Atomics.store(ctl, 0, SIGINT);
    Atomics.notify(ctl, 0); // wakes a time.sleep that blocks the worker (worker/interrupt.ts blockingSleep)
    // Python shows it took the signal by turning the busy flag back from BUSY_ESCALATED (its SIGINT handler, a
    // blocking sleep); or the step ends, or the worker answers.
    this._watchSignal(
      ctl,
      SIGINT,
      () => this._interruptSeq !== seq || this._ackedSeq >= seq || Atomics.load(ctl, BUSY_SLOT) !== BUSY_ESCALATED
    );
    if (this._awaitingInput && this._pendingInput) {
      // input() blocks in Atomics.wait, where the interrupt buffer is not checked:
      // wake it with an empty reply; KeyboardInterrupt follows as Python resumes.
      this._writeInputReply({
        ...this._pendingInput,
        header: { ...this._pendingInput.header, msg_type: 'input_reply' },
        parent_header: this._pendingInput.header,
        content: { status: 'ok', value: '' }
      } as AnyMsg);
    }
  }

  /**
   * Set SIGNAL in the interrupt buffer again if Pyodide lost it, until SETTLED() says it was taken or is no longer
   * needed. Pyodide's check reads the signal slot and then stores 0 there in a second, separate step: a signal the
   * page stores between the two is wiped unseen, and `while True: pass` ran on after its interrupt (measured: 2 of
   * 150). A slot found empty on two looks in a row, not settled, means the signal was wiped. At most
   * SIGNAL_RESETS times: a handler of the user's own (signal.signal) does not say it took the signal.
   */
  private _watchSignal(ctl: Int32Array, signal: number, settled: () => boolean): void {
    let empty = 0;
    let resets = 0;
    let delay = SIGNAL_LOOK_MS;
    const look = (): void => {
      if (this._isDisposed || settled()) {
        return;
      }
      if (Atomics.load(ctl, 0) === signal) {
        empty = 0; // not checked yet: Python is in a long call in C
        delay = Math.min(delay * 2, SIGNAL_LOOK_MAX_MS);
      } else if (++empty >= 2) {
        if (resets === SIGNAL_RESETS) {
          return;
        }
        empty = 0;
        delay = SIGNAL_LOOK_MS;
        if (Atomics.compareExchange(ctl, 0, 0, signal) === 0) {
          resets++;
          Atomics.notify(ctl, 0);
        }
      }
      setTimeout(look, delay);
    };
    setTimeout(look, delay);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._releaseHeld(); // a shut-down kernel's last replies and statuses still reach the clients
    this._isDisposed = true;
    this._worker.terminate();
    liveKernels.delete(this.id);
    if (this._stdinBuffer && this._awaitingInput) {
      // Release nothing: the worker is gone. Just forget the state.
      this._awaitingInput = false;
    }
    this._started.promise.catch(() => undefined);
    this._started.reject(new Error('kernel disposed'));
    this._runOnQuiet();
    this._disposed.emit();
    Signal.clearData(this);
  }

  /** Start Python in WORKER for this kernel: its shared buffers, its file system, its package sources. */
  private _startWorker(worker: Worker): Worker {
    const options = this._options;
    worker.onmessage = (ev: MessageEvent<FromWorker>) => {
      if (worker === this._worker) {
        this._onWorkerMessage(ev.data);
      }
    };
    worker.onerror = (ev: ErrorEvent) => {
      ev.preventDefault();
      if (worker !== this._worker) {
        return;
      }
      const error = `the kernel worker failed: ${ev.message || 'could not load ' + options.workerUrl}`;
      if (this._pythonReady) {
        this._reportUncaught(error); // the worker reports its own errors: this one escaped it, Python goes on
      } else {
        this._fail(error);
      }
    };
    const init: IInitOptions = {
      indexURL: options.indexURL,
      baseUrl: options.baseUrl,
      kernelId: this.id,
      browsingContextId: options.browsingContextId,
      location: options.location,
      packages: options.packages,
      debugger: !!options.debugger
    };
    if (this._isolated) {
      this._interruptBuffer = new SharedArrayBuffer(INTERRUPT_SLOTS * Int32Array.BYTES_PER_ELEMENT);
      this._stdinBuffer = new SharedArrayBuffer(STDIN_BUFFER_BYTES);
      init.interruptBuffer = this._interruptBuffer;
      init.stdinBuffer = this._stdinBuffer;
    }
    // The notebook's files, as the stock kernel mounts them: shared buffers when isolated, else the service worker.
    if (this._isolated && options.contentsManager) {
      this._driveProcessor = new DriveContentsProcessor({ contentsManager: options.contentsManager });
      this._driveBuffer = new SharedArrayBuffer(DRIVE_BUFFER_BYTES);
      init.drive = 'shared-buffer';
      init.driveBuffer = this._driveBuffer;
    } else if (options.serviceWorkerEnabled && options.browsingContextId) {
      init.drive = 'service-worker';
      init.driveNotice = DRIVE_NOT_ANSWERED_NOTICE; // said only if the worker's first drive request fails
    } else {
      init.drive = 'none';
      init.driveNotice = DRIVE_UNAVAILABLE_NOTICE;
    }
    this._lastActivity = performance.now();
    this._quietPending = true;
    worker.postMessage({ type: 'init', options: init } satisfies ToWorker);
    if (init.drive !== 'none' && options.contentsManager) {
      this._lookForSiteProfile(worker, options.contentsManager);
    }
    return worker;
  }

  /**
   * Tell WORKER whether the notebook's files hold an IPython profile at .ipython (the path DriveFS looks up for
   * /drive/.ipython; any failure is "no", as DriveFS's lookup has it), while Python loads: the kernel's start then
   * need not ask the page synchronously, when the page's thread is busy starting the app (20-25 ms of a reload).
   */
  private _lookForSiteProfile(worker: Worker, contents: Contents.IManager): void {
    const [driveName] = splitLocation(this._options.location ?? '');
    void contents
      .get(`${driveName ? driveName + ':' : ''}/.ipython`, { content: false })
      .then(
        model => model.type === 'directory',
        () => false
      )
      .then(found => worker.postMessage({ type: 'site-profile', found } satisfies ToWorker));
  }

  private _post(msg: ToWorker, transfer: Transferable[] = []): void {
    this._lastActivity = performance.now();
    this._worker.postMessage(msg, transfer);
  }

  /** Call onQuiet once no message went to or came from the worker for QUIET_MS. */
  private _callWhenQuiet(): void {
    this._whenQuiet(QUIET_MS, () => this._runOnQuiet());
  }

  /** Call FN once no message went to or came from the worker for MS (or the kernel is disposed). */
  private _whenQuiet(ms: number, fn: () => void): void {
    const check = (): void => {
      const quietFor = performance.now() - this._lastActivity;
      if (this._isDisposed || quietFor >= ms) {
        fn();
      } else {
        setTimeout(check, ms - quietFor);
      }
    };
    setTimeout(check, ms);
  }

  /** Once per worker started (the pool refills its spare, which a restart may have taken). */
  private _runOnQuiet(): void {
    if (this._quietPending) {
      this._quietPending = false;
      this._onQuiet?.();
    }
  }

  private _onWorkerMessage(data: FromWorker): void {
    if (this._isDisposed) {
      return;
    }
    this._lastActivity = performance.now();
    switch (data.type) {
      case 'msg': {
        let msg: AnyMsg;
        try {
          msg = JSON.parse(data.msgJson);
        } catch (err) {
          console.error('concurrent kernel: invalid JSON from the kernel', err, data.msgJson);
          return;
        }
        if ((msg.channel as string) === DEBUGGER_STATE_CHANNEL) {
          this._debuggerSession?.keep((msg as unknown as { state: unknown }).state);
          return;
        }
        if (
          msg.header?.msg_type === 'kernel_info_reply' &&
          (msg.content as { debugger?: unknown })?.debugger === true &&
          !this._debuggerOfferNoted
        ) {
          // The panel's loading takes the page's thread for ~150 ms: not in front of the first cells' messages.
          this._debuggerOfferNoted = true;
          this._whenQuiet(PANEL_QUIET_MS, noteDebuggerOffered);
        }
        if (data.buffers.length) {
          msg.buffers = data.buffers;
        }
        this._route(msg);
        this._track(msg);
        trace('out', msg);
        this._deliver(msg as KernelMessage.IMessage);
        if (this._restarted && msg.header.msg_type === 'status') {
          // As a Jupyter server's restart ends: the clients that were told "restarting" see the new kernel idle
          // once it has said it is starting (its other statuses are those of requests, which a front end may not
          // track: kernel_info's are untracked on JupyterLite sites that list jupyter_server's defaults).
          this._restarted = false;
          this._emitStatus('idle');
        }
        break;
      }
      case 'ready':
        this._pythonReady = true;
        this._timings = { ...data.timings, ready: data.elapsedMs };
        this._started.resolve();
        this._callWhenQuiet();
        console.info(`concurrent kernel ${this.id} ready in ${data.elapsedMs} ms`, data.timings);
        break;
      case 'progress':
        console.debug(`concurrent kernel: ${data.phase} (${data.elapsedMs} ms)`);
        break;
      case 'load-error':
        this._fail(data.error);
        break;
      case 'fatal':
        if (this._pythonReady) {
          this._died(data.error);
        } else {
          this._fail(`Python died while the kernel started: ${data.error}`);
        }
        break;
      case 'uncaught':
        this._reportUncaught(data.error);
        break;
      case 'ended':
        this._ended(data.restart);
        break;
      case 'handler-error': {
        let msg: AnyMsg | null = null;
        try {
          msg = JSON.parse(data.msgJson);
        } catch {
          msg = null;
        }
        console.error('concurrent kernel: error handling message', data.error);
        if (msg?.header?.msg_id && this._pending.has(msg.header.msg_id)) {
          this._pending.delete(msg.header.msg_id);
          this._executing.delete(msg.header.msg_id);
          this._replyWithError(msg, 'KernelHandlerError', data.error);
        }
        break;
      }
      case 'input_request': {
        this._awaitingInput = true;
        const msg = JSON.parse(data.msgJson) as AnyMsg;
        msg.channel = 'stdin';
        this._pendingInput = msg;
        this._deliver(msg as KernelMessage.IMessage);
        break;
      }
      case 'interrupt-ack':
        this._ackedSeq = Math.max(this._ackedSeq, data.seq);
        break;
      case 'drive-request':
        void this._onDriveRequest(data.request as TDriveRequest<TDriveMethod>);
        break;
      case 'drive-fetch': {
        const bytes = this._driveOverflow ?? new Uint8Array(0);
        this._driveOverflow = null;
        new Uint8Array(data.buffer, 8, bytes.length).set(bytes);
        const state = new Int32Array(data.buffer, 0, 2);
        Atomics.store(state, 0, DRIVE_REPLIED);
        Atomics.notify(state, 0);
        break;
      }
      case 'log':
        (data.level === 'error' ? console.error : data.level === 'warn' ? console.warn : console.log)(
          `[concurrent kernel] ${data.text}`
        );
        break;
    }
  }

  /** Answer the worker's file-system call (it waits on driveBuffer) with the app's contents manager. */
  private async _onDriveRequest(request: TDriveRequest<TDriveMethod>): Promise<void> {
    let reply: { response?: unknown; error?: string };
    try {
      reply = { response: (await this._driveProcessor!.processDriveRequest(request)) ?? null };
    } catch (err) {
      reply = { error: String((err as Error)?.message ?? err) };
    }
    if (this._isDisposed || !this._driveBuffer) {
      return;
    }
    const bytes = new TextEncoder().encode(JSON.stringify(reply));
    const state = new Int32Array(this._driveBuffer, 0, 2);
    if (bytes.length <= this._driveBuffer.byteLength - 8) {
      new Uint8Array(this._driveBuffer, 8, bytes.length).set(bytes);
      Atomics.store(state, 1, bytes.length);
      Atomics.store(state, 0, DRIVE_REPLIED);
    } else {
      this._driveOverflow = bytes; // the worker asks for it with a buffer of this size
      Atomics.store(state, 1, bytes.length);
      Atomics.store(state, 0, DRIVE_TOO_LARGE);
    }
    Atomics.notify(state, 0);
  }

  private _writeInputReply(msg: AnyMsg): void {
    const sab = this._stdinBuffer!;
    const { buffers: _b, ...rest } = msg;
    void _b;
    const bytes = new TextEncoder().encode(JSON.stringify({ ...rest, channel: 'stdin' }));
    const state = new Int32Array(sab, 0, 2);
    const room = sab.byteLength - STDIN_HEADER_BYTES;
    new Uint8Array(sab, STDIN_HEADER_BYTES, Math.min(bytes.length, room)).set(bytes.subarray(0, room));
    Atomics.store(state, 1, Math.min(bytes.length, room));
    Atomics.store(state, 0, 1);
    Atomics.notify(state, 0);
    this._awaitingInput = false;
    this._pendingInput = null;
  }

  /**
   * LiteKernelClient picks the client socket by header.session: use the
   * session of the request (or the last client seen for unparented messages).
   */
  private _route(msg: AnyMsg): void {
    const parentSession = (msg.parent_header as Partial<KernelMessage.IHeader> | undefined)?.session;
    const session = parentSession || this._lastSession;
    if (session && msg.header) {
      msg.header.session = session;
    }
  }

  /** Remember which execute requests are running (for interrupt notices). */
  private _track(msg: AnyMsg): void {
    if (msg.header?.msg_type?.endsWith('_reply')) {
      const parent = (msg.parent_header as KernelMessage.IHeader | undefined)?.msg_id;
      if (parent) {
        this._executing.delete(parent);
        this._pending.delete(parent);
      }
    }
  }

  private _notifyExecuting(text: string): void {
    const running = [...this._executing.values()];
    const target = running[running.length - 1];
    if (!target) {
      return;
    }
    this._emit(target, 'iopub', 'stream', { name: 'stderr', text });
  }

  /**
   * Python died (a Pyodide fatal error): it is started again in this kernel (_restartInPlace), and what was pending
   * gets KernelDied with the reason.
   */
  private _died(reason: string): void {
    const notice = `The kernel died: ${reason}. It restarts: variables and imports are gone.`;
    console.error(`concurrent kernel ${this.id}: ${notice}`);
    this._restartInPlace('KernelDied', notice);
  }

  /**
   * The kernel ended itself (ipykernel's `kernel.do_shutdown(restart)`, `exit` in a cell: the core's
   * exit_callback), once the request that asked has its reply. RESTART: started again here, as a Jupyter server's
   * kernel manager starts a new process (JupyterLab: "Kernel Restarting"); else shut down as JupyterLab's own shut
   * down does (the clients see it dead; the app's kernel client forgets it).
   */
  private _ended(restart: boolean): void {
    if (restart) {
      this._restartInPlace('KernelRestarted', 'The kernel restarted itself (do_shutdown(True), or exit in a cell).');
      return;
    }
    this._worker.terminate();
    this._answerPending('KernelShutDown', 'The kernel shut itself down (do_shutdown(False)).');
    this._emitStatus('dead');
    this._options.onShutDown?.(this);
  }

  /**
   * Start Python again in a new worker, under the same kernel id: what was pending is answered with ENAME and
   * NOTICE, the clients are told the kernel is restarting (iopub status "restarting", what a Jupyter server says
   * when a kernel process died and it starts it again: JupyterLab shows "Kernel Restarting", forgets the old
   * kernel's comms and reconnects), and "idle" once the new Python has said "starting". Messages sent meanwhile
   * wait for it, as at a first start. The notebook is untouched.
   */
  private _restartInPlace(ename: string, notice: string): void {
    if (this._isDisposed) {
      return;
    }
    this._worker.terminate();
    this._answerPending(ename, notice);
    this._emitStatus('restarting');
    this._pythonReady = false;
    this._awaitingInput = false;
    this._pendingInput = null;
    this._started = new PromiseDelegate<void>();
    this._worker = this._startWorker(this._options.takeWorker?.() ?? this._newWorker());
    this._restarts += 1;
    this._restarted = true;
  }

  /** Every request still waiting for its reply gets an error one (the worker that had it is gone). */
  private _answerPending(ename: string, notice: string): void {
    const pending = [...this._pending.values()];
    this._pending.clear();
    this._executing.clear();
    for (const m of pending) {
      this._replyWithError(m, ename, notice);
    }
  }

  private _newWorker(): Worker {
    return new Worker(this._options.workerUrl, { type: 'module', name: 'concurrent-kernel' });
  }

  /** An error the worker did not catch (a Python exception in a JavaScript callback): to the newest cell. */
  private _reportUncaught(error: string): void {
    console.error(`concurrent kernel: ${error}`);
    if (this._lastExecute) {
      this._emit(this._lastExecute, 'iopub', 'stream', { name: 'stderr', text: error.endsWith('\n') ? error : error + '\n' });
    }
  }

  /** A status message with no parent request (iopub), for every client. */
  private _emitStatus(state: string): void {
    const msg = {
      channel: 'iopub',
      header: {
        msg_id: UUID.uuid4(),
        msg_type: 'status',
        username: '',
        session: this._lastSession,
        date: new Date().toISOString(),
        version: '5.4'
      },
      parent_header: {},
      metadata: {},
      content: { execution_state: state },
      buffers: []
    };
    this._deliver(msg as unknown as KernelMessage.IMessage);
  }

  private _fail(error: string): void {
    if (this._loadError !== null) {
      return;
    }
    this._loadError = error;
    console.error(`concurrent kernel: ${error}`);
    this._started.promise.catch(() => undefined);
    this._started.reject(new Error(error));
    // Requests already posted will never be answered by the worker: answer them here.
    const pending = [...this._pending.values()];
    this._pending.clear();
    this._executing.clear();
    for (const m of pending) {
      this._replyWithError(m, 'KernelLoadError', error);
    }
  }

  /** Answer a request locally with an error (busy, error output, reply, idle). */
  /** A message the worker cannot be given: a request gets a MalformedMessage error reply, anything else a log line. */
  private _refuse(m: AnyMsg, reason: string): void {
    if (m.header.msg_type.endsWith('_request')) {
      this._replyWithError(m, 'MalformedMessage', reason);
    } else {
      console.error(`concurrent kernel: dropping ${m.header.msg_type}: ${reason}`);
    }
  }

  private _replyWithError(req: AnyMsg, ename: string, evalue: string): void {
    const type = req.header.msg_type;
    if (!type.endsWith('_request')) {
      return;
    }
    const traceback = [`\u001b[0;31m${ename}\u001b[0m: ${evalue}`];
    this._emit(req, 'iopub', 'status', { execution_state: 'busy' });
    if (type === 'execute_request') {
      this._emit(req, 'iopub', 'error', { ename, evalue, traceback });
    }
    const replyType = type.replace(/_request$/, '_reply');
    const content: Record<string, unknown> = { status: 'error', ename, evalue, traceback };
    if (type === 'execute_request') {
      content.execution_count = null;
    } else if (type === 'kernel_info_request') {
      Object.assign(content, {
        status: 'ok',
        protocol_version: '5.4',
        implementation: 'concurrent-kernel',
        implementation_version: '0',
        language_info: { name: 'python', version: '3', mimetype: 'text/x-python', file_extension: '.py' },
        banner: `concurrent kernel failed to start: ${evalue}`,
        help_links: []
      });
    }
    const channel = req.channel === 'control' ? 'control' : 'shell';
    this._emit(req, channel, replyType, content);
    this._emit(req, 'iopub', 'status', { execution_state: 'idle' });
  }

  /**
   * Every message to the clients goes here, in order. From a request's busy status, they are held until its idle
   * (or HOLD_MS), then handed over together: the app then runs a short cell's result in the same task as its busy,
   * before its own reaction to the busy (toolbar and status widgets, a frame), which otherwise came first.
   */
  private _deliver(msg: KernelMessage.IMessage): void {
    const status = msg.header?.msg_type === 'status' ? (msg.content as { execution_state?: string }).execution_state : '';
    const parent = (msg.parent_header as Partial<KernelMessage.IHeader> | undefined)?.msg_id ?? '';
    if (this._held === null) {
      if (status === 'busy' && parent && !this._isDisposed) {
        this._held = [msg];
        this._heldFor = parent;
        this._heldSince = performance.now();
        this._heldTimer = setTimeout(() => this._releaseHeld(), HOLD_MS);
      } else {
        this._sendMessage(msg);
      }
      return;
    }
    this._held.push(msg);
    // The timer alone may fire late (a hidden page's timers wait up to a second): the next message looks too.
    if ((status === 'idle' && parent === this._heldFor) || performance.now() - this._heldSince >= HOLD_MS) {
      this._releaseHeld();
    }
  }

  /** Hand the held messages over, in order. */
  private _releaseHeld(): void {
    const held = this._held;
    this._held = null;
    clearTimeout(this._heldTimer);
    for (const m of held ?? []) {
      this._sendMessage(m);
    }
  }

  private _emit(parent: AnyMsg, channel: string, msgType: string, content: Record<string, unknown>): void {
    const msg = {
      channel,
      header: {
        msg_id: UUID.uuid4(),
        msg_type: msgType,
        username: parent.header.username ?? '',
        session: parent.header.session,
        date: new Date().toISOString(),
        version: '5.4'
      },
      parent_header: parent.header,
      metadata: {},
      content,
      buffers: []
    };
    this._deliver(msg as unknown as KernelMessage.IMessage);
  }

  /** JupyterLite's delivery to the clients (through _deliver). */
  private _sendMessage: IKernel.SendMessage;
  /** Messages held since a request's busy (see HOLD_MS), or null. */
  private _held: KernelMessage.IMessage[] | null = null;
  /** The request whose idle releases the held messages. */
  private _heldFor = '';
  private _heldSince = 0;
  private _heldTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private _debuggerSession: DebuggerSessionKeeper | null;
  private _onQuiet?: () => void;
  private _options: ConcurrentKernel.IOptions;
  private _quietPending = false;
  private _debuggerOfferNoted = false;
  /** How many times Python died and was started again in this kernel. */
  private _restarts = 0;
  /** Python is starting again after it died: say "idle" after its "starting". */
  private _restarted = false;
  /** The newest execute request: where output with no request behind it goes (as ipykernel sends it). */
  private _lastExecute: AnyMsg | null = null;
  private _lastActivity = 0;
  private _worker: Worker;
  private _isolated: boolean;
  private _interruptBuffer: SharedArrayBuffer | null = null;
  private _stdinBuffer: SharedArrayBuffer | null = null;
  private _driveBuffer: SharedArrayBuffer | null = null;
  private _driveProcessor: DriveContentsProcessor | null = null;
  private _driveOverflow: Uint8Array | null = null;
  private _awaitingInput = false;
  private _pendingInput: AnyMsg | null = null;
  private _interruptSeq = 0;
  private _ackedSeq = 0;
  private _pythonReady = false;
  private _loadError: string | null = null;
  private _lastSession = '';
  private _pending = new Map<string, AnyMsg>();
  private _executing = new Map<string, AnyMsg>();
  private _timings: Record<string, number> = {};
  private _isDisposed = false;
  private _disposed = new Signal<this, void>(this);
  private _ready = new PromiseDelegate<void>();
  private _started = new PromiseDelegate<void>();
}

/** Message trace for debugging and tests: set `window.__ckTrace = []` to record. */
function trace(direction: 'in' | 'out', msg: AnyMsg): void {
  const sink = (globalThis as unknown as { __ckTrace?: unknown[] }).__ckTrace;
  if (Array.isArray(sink)) {
    const { buffers: _b, ...rest } = msg;
    void _b;
    sink.push({ direction, ...JSON.parse(JSON.stringify(rest)) });
  }
}

/** A buffer a message may carry: an ArrayBuffer (shared or not) or a view of one. */
function isBinary(b: unknown): b is ArrayBufferLike | ArrayBufferView {
  return (
    b instanceof ArrayBuffer ||
    ArrayBuffer.isView(b) ||
    (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer)
  );
}

function copyBuffer(b: ArrayBufferLike | ArrayBufferView): ArrayBuffer {
  if (!ArrayBuffer.isView(b)) {
    return new Uint8Array(b).slice().buffer; // a copy: the worker is given it (transfer), the page keeps its own
  }
  const view = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return view.slice().buffer;
}
