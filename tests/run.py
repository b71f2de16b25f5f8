#!/usr/bin/env python3
"""Run the imapd test suite: every test_* function in tests/test_*.py.

Each test gets a fresh temporary Maildir and a time limit; the last line
printed is "N passed, N failed".  Arguments select test files or tests by
substring: run.py core mime.test_envelope
"""
import importlib.util
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
TEST_TIMEOUT = int(os.environ.get("TEST_TIMEOUT", "120"))


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("test took longer than %d s" % TEST_TIMEOUT)


def load(path):
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return name, mod


def selected(modname, fname, args):
    if not args:
        return True
    full = modname[len("test_"):] + "." + fname
    return any(a in full for a in args)


def main(args):
    import lib
    files = sorted(f for f in os.listdir(HERE)
                   if f.startswith("test_") and f.endswith(".py"))
    passed = failed = 0
    failures = []
    signal.signal(signal.SIGALRM, on_alarm)
    for f in files:
        modname, mod = load(os.path.join(HERE, f))
        tests = [(n, getattr(mod, n)) for n in dir(mod)
                 if n.startswith("test_") and callable(getattr(mod, n))]
        tests.sort(key=lambda t: t[1].__code__.co_firstlineno)
        for name, fn in tests:
            if not selected(modname, name, args):
                continue
            label = "%s.%s" % (modname[len("test_"):], name)
            t0 = time.time()
            signal.alarm(TEST_TIMEOUT)
            try:
                with lib.Env() as env:
                    fn(env)
                signal.alarm(0)
                passed += 1
                print("ok   %-50s %.2fs" % (label, time.time() - t0),
                      flush=True)
            except lib.Skip as e:
                signal.alarm(0)
                print("skip %-50s %s" % (label, e), flush=True)
            except BaseException as e:  # noqa: a failing test, whatever it raised
                signal.alarm(0)
                if isinstance(e, KeyboardInterrupt):
                    raise
                failed += 1
                failures.append(label)
                print("FAIL %-50s %.2fs" % (label, time.time() - t0))
                traceback.print_exc(limit=6, file=sys.stdout)
                sys.stdout.flush()
            finally:
                lib.reap_all()
    if failures:
        print("\nfailed: " + " ".join(failures))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
