# snapeval sandbox driver. Trusted code: it runs first in the sandboxed process, confines the process
# (private /tmp, rlimits, unprivileged uid) and only then runs the untrusted program.
# argv[1] is a JSON object: {"mode": "stdin"|"call"|"probe", "program": path, "func": name,
#   "uid": int (0 = keep), "limits": {"cpu": s, "as": bytes, "nproc": n, "nofile": n, "fsize": bytes},
#   "private_tmp": bool, "preamble": bool}
# Results go to fd 3 as one JSON line: {"status": "ok"|"compile_error"|"runtime_error"|"setup_error", ...}.
import sys, os, json

_cfg = json.loads(sys.argv[1])
_status = os.fdopen(3, "w")


def _report(obj):
    try:
        _status.write(json.dumps(obj) + "\n")
        _status.flush()
    except Exception:
        pass


def _confine():
    notes = []
    if _cfg.get("private_tmp"):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        for d in ("/tmp", "/var/tmp", "/dev/shm"):
            if os.path.isdir(d):
                opts = ("size=%d,mode=1777" % _cfg.get("tmp_size", 64 << 20)).encode()
                if libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, opts) != 0:
                    notes.append("tmp isolation unavailable for %s: errno %d" % (d, ctypes.get_errno()))
    import resource
    lim = _cfg.get("limits", {})
    for key, res in (("cpu", resource.RLIMIT_CPU), ("as", resource.RLIMIT_AS), ("nproc", resource.RLIMIT_NPROC),
                     ("nofile", resource.RLIMIT_NOFILE), ("fsize", resource.RLIMIT_FSIZE)):
        v = lim.get(key, 0)
        if v > 0:
            hard = v + 1 if key == "cpu" else v
            resource.setrlimit(res, (v, hard))
    uid = _cfg.get("uid", 0)
    if uid:
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    os.umask(0o077)
    return notes


# The official LiveCodeBench harness prepends these imports to every program (lcb_runner/evaluation/testing_util.py).
PREAMBLE = "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"

# Everything the program needs is read before confinement (the private /tmp hides the run directory's path).
_src = ""
if _cfg["mode"] != "probe":
    with open(_cfg["program"], encoding="utf-8", errors="surrogateescape") as f:
        _src = f.read()
_args = None
_expected = None
if _cfg["mode"] == "call":
    # Inputs: one JSON value per line (one per argument); expected: one JSON value. Read before user code runs.
    with open(_cfg["input"], encoding="utf-8") as f:
        _args = [json.loads(line) for line in f.read().split("\n")]
    with open(_cfg["expected"], encoding="utf-8") as f:
        _expected = json.loads(f.read())
    os.unlink(_cfg["expected"])

try:
    _notes = _confine()
except Exception as e:  # never run user code unconfined
    _report({"status": "setup_error", "error": repr(e)})
    sys.exit(70)

if _cfg["mode"] == "probe":
    exec(PREAMBLE, {})  # the interpreter's library must be readable after the uid drop
    _report({"status": "ok", "notes": _notes, "uid": os.getuid()})
    sys.exit(0)

try:
    _code = compile(_src, "solution.py", "exec")
except (SyntaxError, ValueError) as e:
    _report({"status": "compile_error", "error": repr(e)})
    sys.exit(0)

import types, traceback

_mod = types.ModuleType("__main__" if _cfg["mode"] == "stdin" else "tmp_sol")
sys.modules[_mod.__name__] = _mod
_g = _mod.__dict__
_g["__builtins__"] = __builtins__
_g["__file__"] = "solution.py"
del _cfg["limits"]
_mode, _func, _report_fn, _stdout = _cfg["mode"], _cfg.get("func", ""), _report, sys.stdout


def _run_main():
    if _cfg.get("preamble", True):
        exec(PREAMBLE, _g)
    exec(_code, _g)


if _mode == "stdin":
    try:
        _run_main()
    except SystemExit:
        pass  # the official harness ignores SystemExit
    except BaseException as e:
        traceback.print_exc()
        _report_fn({"status": "runtime_error", "error": repr(e)[:300]})
        sys.exit(1)
    try:
        sys.stdout.flush()
    except Exception:
        pass
    _report_fn({"status": "ok"})
    sys.exit(0)

# mode == "call"
try:
    _run_main()
    if "class Solution" in _src:
        _target = _g["Solution"]()
    else:
        _target = _mod
    _method = getattr(_target, _func)
except BaseException as e:
    traceback.print_exc()
    _report_fn({"status": "runtime_error", "error": repr(e)[:300]})
    sys.exit(1)
try:
    _pred = _method(*_args)
    if isinstance(_pred, tuple):
        _pred = list(_pred)
    _ok = _pred == _expected
    _got = repr(_pred)
except BaseException as e:
    traceback.print_exc()
    _report_fn({"status": "runtime_error", "error": repr(e)[:300]})
    sys.exit(1)
if len(_got) > 300:
    _got = _got[:150] + "...(truncated) ..." + _got[-150:]
_report_fn({"status": "ok", "equal": bool(_ok), "got": _got})
sys.exit(0)
