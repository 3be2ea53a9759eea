/**
 * What a kernel loads after it has started, in the background: the later files, the standard library zip behind the
 * snapshot, and the decoded copies written to the cache. Not beside the app's last downloads or a first result.
 */
import { flushDecoded } from '../decodedCache';
import { loadLaterFiles } from './laterFiles';
import { loadStdlib } from './stdlib';

/**
 * When the standard library is fetched after the first execute_reply: the page usually still loads some of its own
 * scripts before it shows the result (measured at 40 Mbit/s: 0.6 s idle, over 1 s under load), and it would share
 * the link. The later files come at once: a first traceback needs some of them (tests/browser/test_packages.py
 * goes offline right after its first cell).
 */
const STDLIB_AFTER_FIRST_REPLY_MS = 3000;
let firstReplySent = false;

/** When the later files are fetched if no cell has answered by then (ms after the kernel started). */
const LATER_FILES_DELAY_MS = 3000;

/** Called with every message Python sends: the first execute_reply starts the background loads. */
export function noteOutgoing(msgJson: string): void {
  if (!firstReplySent && msgJson.includes('"execute_reply"')) {
    firstReplySent = true;
    setTimeout(loadLaterFiles, 0);
    setTimeout(() => void flushDecoded(), 0);
    setTimeout(loadStdlib, STDLIB_AFTER_FIRST_REPLY_MS);
  }
}

/** The kernel has started: the later files once the first cell has answered (or soon anyway). */
export function loadInBackgroundSoon(): void {
  setTimeout(loadLaterFiles, LATER_FILES_DELAY_MS);
  setTimeout(loadStdlib, LATER_FILES_DELAY_MS);
}
