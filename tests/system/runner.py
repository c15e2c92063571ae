"""The common main of the system tests: start a fixture, run the test
cases against it, stop it whatever happens, check nothing was left
behind, and print "N passed, N failed" as the last line (scripts/test.sh
sums those lines)."""

import signal
import sys
import time
import traceback
import unittest


def run(name, fixture, cases, leftovers=lambda: []):
    """Returns the exit status. leftovers() lists what the fixture failed
    to clean up; each is counted as a failure."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    # A harness that stops us with SIGTERM still gets the cleanup below.
    signal.signal(signal.SIGTERM, interrupt)
    passed = failed = skipped = 0
    started = time.monotonic()
    try:
        try:
            fixture.start()
        except Exception:
            traceback.print_exc(file=sys.stdout)
            failed = 1
        else:
            suite = unittest.TestSuite()
            for case in cases:
                suite.addTests(unittest.TestLoader().loadTestsFromTestCase(case))
            stream = unittest.runner._WritelnDecorator(sys.stdout)
            result = unittest.TextTestResult(stream, descriptions=True, verbosity=2)
            try:
                suite.run(result)
            except KeyboardInterrupt:
                print("interrupted")
                failed += 1
            result.printErrors()
            bad = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
            failed += bad
            # A setUpClass that fails counts as an error of no test run.
            passed += max(0, result.testsRun - bad - len(result.skipped) - len(result.expectedFailures))
            skipped += len(result.skipped)
    except KeyboardInterrupt:
        print("interrupted")
        failed += 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        sys.stdout.flush()
        fixture.stop()
    try:
        left = leftovers()
    except Exception:
        traceback.print_exc(file=sys.stdout)
        left = ["(could not check)"]
    if left:
        failed += 1
        print("cleanup failed: " + ", ".join(left))
    print("(%s: %.1f s)" % (name, time.monotonic() - started))
    sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed) + (", %d skipped" % skipped if skipped else ""))
    return 1 if failed else 0
