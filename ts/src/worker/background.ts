/**
 * What a kernel loads after it has started, in the background: the later files, the standard library zip behind the
 * snapshot, and the decoded copies written to the cache. Not beside the app's last downloads or a first result.
 */
import { flushDecoded } from '../decodedCache';
import { elapsed } from './page';
import { fetchLaterFiles, later, writeArrived } from './laterFiles';
import { loadStdlib } from './stdlib';

/**
 * When the standard library is fetched after the first execute_reply: the page usually still loads some of its own
 * scripts before it shows the result (measured at 40 Mbit/s: 0.6 s idle, over 1 s under load), and it would share
 * the link. The later files are fetched at once: a first traceback needs some of them (tests/browser/test_packages.py
 * goes offline right after its first cell).
 */
const STDLIB_AFTER_FIRST_REPLY_MS = 3000;
let firstReplySent = false;

/** When the later files are fetched if no cell has answered by then (ms after the kernel started). */
const LATER_FILES_DELAY_MS = 3000;

/**
 * How long no message may have come or gone, with no request running, before the later files are written and the
 * decoded copies cached. Written at once, they made the cell after a kernel's first one wait 400-800 ms (a notebook's
 * Run All); until then an import or a completion that needs them has them written on the spot.
 */
const QUIET_MS = 300;
let lastActivity = 0;
/** Requests running: a "busy" status not yet followed by its "idle". */
let running = 0;

/** Called with every message from the page. */
export function noteIncoming(): void {
  lastActivity = elapsed();
}

/** Called with every message Python sends: the first execute_reply starts the background loads. */
export function noteOutgoing(msgJson: string): void {
  lastActivity = elapsed();
  if (msgJson.includes('"execution_state": "')) {
    if (msgJson.includes('"execution_state": "busy"')) {
      running++;
    } else if (msgJson.includes('"execution_state": "idle"')) {
      running = Math.max(0, running - 1);
    }
  }
  if (!firstReplySent && msgJson.includes('"execute_reply"')) {
    firstReplySent = true;
    setTimeout(loadLaterFiles, 0);
    setTimeout(loadStdlib, STDLIB_AFTER_FIRST_REPLY_MS);
  }
}

/** The kernel has started: the later files once the first cell has answered (or soon anyway). */
export function loadInBackgroundSoon(): void {
  setTimeout(loadLaterFiles, LATER_FILES_DELAY_MS);
  setTimeout(loadStdlib, LATER_FILES_DELAY_MS);
}

let laterStarted = false;

/** Called twice (the first reply, the start's timer): the first call fetches, then writes when quiet. */
function loadLaterFiles(): void {
  if (!laterStarted) {
    laterStarted = true;
    void fetchLaterFiles().then(() => writeWhenQuiet());
  }
}

/** Write the later files, then cache the decoded copies, once the kernel is quiet. */
function writeWhenQuiet(): void {
  const wait = lastActivity + QUIET_MS - elapsed();
  if (later.written || (running === 0 && wait <= 0)) {
    void writeArrived().then(flushDecoded);
    return;
  }
  setTimeout(writeWhenQuiet, Math.max(wait, QUIET_MS / 2));
}
