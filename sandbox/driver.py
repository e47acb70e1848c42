# snapeval sandbox driver. Trusted code, run as `python3 -I -B -c <this source>`: it confines its own process and
# only then runs the untrusted program in the same process.
#
# Descriptors (set up by sandbox.go):
#   0     standard input (a sealed memfd), 1 and 2 captured by the harness
#   3     the job, one JSON object (a sealed memfd), read and closed first
#   4     the answer channel: what the program answered ({"status": ..., "value": ...}, one JSON line)
#   5     the setup channel: {"status": "ready"} or {"status": "setup_error"}; closed before untrusted code runs
#
# Nothing secret ever enters this process: the expected outputs stay in the harness, which compares them with the
# answer itself. The program can write to fd 4 too (it is its own process), but all fd 4 can carry is an answer.
#
# Job: {"mode": "stdin"|"call"|"probe", "program": source, "func": name, "args": text (one JSON value a line),
#       "preamble": bool, "uid": int (0: keep), "limits": {"cpu", "as", "nproc", "nofile", "fsize"},
#       "cgroup_procs": [paths], "fs": null | {"binds": [dirs], "size": bytes, "inodes": n},
#       "cwd": dir (without "fs"), "deny_setsid": bool}
import sys, os, json


def _libc():
    import ctypes
    return ctypes, ctypes.CDLL(None, use_errno=True)


def _check(ctypes, r, what):
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, "%s: %s" % (what, os.strerror(e)))


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
CLONE_NEWUSER, CLONE_NEWCGROUP = 0x10000000, 0x02000000


def _mount(ctypes, libc, src, dst, fstype, flags, data=None):
    enc = lambda s: s.encode() if s is not None else None
    _check(ctypes, libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)), "mount %s on %s" % (src, dst))


def _mount_points():
    """The mount points of this mount namespace (octal escapes of /proc/self/mountinfo undone)."""
    import re
    with open("/proc/self/mountinfo") as f:
        return [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4]) for line in f]


def _bind_ro(ctypes, libc, src, dst):
    """Bind src (with its submounts) at dst, and make dst and every mount under it read-only, nosuid, nodev."""
    _mount(ctypes, libc, src, dst, None, MS_BIND | MS_REC)
    for mp in _mount_points():
        if mp == dst or mp.startswith(dst + "/"):
            _mount(ctypes, libc, None, mp, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _make_root(fs):
    """Replace the file system view with a read-only one: the interpreter's directories bound read-only, a private
    /proc, a few device nodes, and one size-capped tmpfs holding /tmp and /dev/shm (all the program can write)."""
    ctypes, libc = _libc()
    os.umask(0o022)  # the skeleton must be traversable by the slot's uid whatever the harness's umask
    # Nothing done here may propagate back to the host's mount table.
    _mount(ctypes, libc, None, "/", None, MS_REC | MS_PRIVATE)
    w = "/tmp"  # any existing directory: the old root is detached below
    _mount(ctypes, libc, "tmpfs", w, "tmpfs", MS_NOSUID | MS_NODEV,
           "size=%d,nr_inodes=%d,mode=755" % (fs["size"], fs["inodes"]))
    root = w + "/root"
    os.mkdir(root, 0o755)
    for d in ("tmp", "shm"):
        os.mkdir(w + "/" + d)
        os.chmod(w + "/" + d, 0o1777)
    _mount(ctypes, libc, root, root, None, MS_BIND)  # pivot_root needs a mount point
    for src in fs["binds"]:
        if os.path.islink(src):
            os.symlink(os.readlink(src), root + src)
            continue
        if not os.path.isdir(src):
            continue
        os.makedirs(root + src, 0o755, exist_ok=True)
        _bind_ro(ctypes, libc, src, root + src)
    os.makedirs(root + "/dev", 0o755, exist_ok=True)
    for n in ("null", "zero", "full", "random", "urandom"):
        open(root + "/dev/" + n, "w").close()
        _mount(ctypes, libc, "/dev/" + n, root + "/dev/" + n, None, MS_BIND)
        _mount(ctypes, libc, None, root + "/dev/" + n, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC)
    for i, n in enumerate(("stdin", "stdout", "stderr")):
        os.symlink("/proc/self/fd/%d" % i, root + "/dev/" + n)
    os.symlink("/proc/self/fd", root + "/dev/fd")
    for src, dst in ((w + "/tmp", "/tmp"), (w + "/shm", "/dev/shm")):
        os.makedirs(root + dst, 0o755, exist_ok=True)
        _mount(ctypes, libc, src, root + dst, None, MS_BIND)
    os.makedirs(root + "/proc", 0o755, exist_ok=True)
    _mount(ctypes, libc, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.chdir(root)
    if _arch() not in _PIVOT_ROOT:
        raise OSError("pivot_root: unknown syscall number on %s" % _arch())
    _check(ctypes, libc.syscall(_PIVOT_ROOT[_arch()], b".", b"."), "pivot_root")
    _check(ctypes, libc.umount2(b".", 2), "detach the old root")  # MNT_DETACH
    os.chdir("/")
    _mount(ctypes, libc, None, "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    _check(ctypes, libc.sethostname(b"sandbox", 7), "sethostname")


def _arch():
    return os.uname().machine


# Syscall numbers (x86_64, aarch64) the filter refuses with EPERM: namespaces and mounts (user namespaces need no
# privilege), tracing and cross-process memory access, kernel keyrings (per uid: a channel between runs of one slot),
# bpf, perf, userfaultfd, io_uring; and, without a PID namespace, leaving the process group (setsid, setpgid).
_DENY = {
    "x86_64": {"unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "ptrace": 101,
               "process_vm_readv": 310, "process_vm_writev": 311, "add_key": 248, "request_key": 249, "keyctl": 250,
               "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425, "open_tree": 428,
               "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
               "mount_setattr": 442, "setsid": 112, "setpgid": 109},
    "aarch64": {"unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "ptrace": 117,
                "process_vm_readv": 270, "process_vm_writev": 271, "add_key": 217, "request_key": 218,
                "keyctl": 219, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
                "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
                "mount_setattr": 442, "setsid": 157, "setpgid": 154},
}
_CLONE = {"x86_64": 56, "aarch64": 220}
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def _seccomp(deny_setsid):
    """Install the syscall filter (after no_new_privs): the denied calls above, clone with CLONE_NEWUSER, clone3
    (ENOSYS: its flags cannot be inspected; the C library falls back to clone), and every call of another ABI."""
    import struct
    arch = _arch()
    if arch not in _DENY:
        return "seccomp filter unavailable on %s: user namespaces and ptrace are not blocked" % arch
    ctypes, libc = _libc()
    LD, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06
    ALLOW, EPERM, ENOSYS = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    deny = [nr for name, nr in _DENY[arch].items() if deny_setsid or name not in ("setsid", "setpgid")]
    prog = [(LD, 0, 0, 4), (JEQ, 1, 0, _AUDIT_ARCH[arch]), (RET, 0, 0, EPERM), (LD, 0, 0, 0)]
    if arch == "x86_64":
        prog += [(JGE, 0, 1, 0x40000000), (RET, 0, 0, EPERM)]  # the x32 ABI
    for nr in deny:
        prog += [(JEQ, 0, 1, nr), (RET, 0, 0, EPERM)]
    prog += [(JEQ, 0, 1, 435), (RET, 0, 0, ENOSYS)]  # clone3
    prog += [(JEQ, 0, 3, _CLONE[arch]), (LD, 0, 0, 16), (JSET, 0, 1, CLONE_NEWUSER), (RET, 0, 0, EPERM)]
    prog += [(RET, 0, 0, ALLOW)]
    buf = b"".join(struct.pack("HBBI", *ins) for ins in prog)
    filt = ctypes.create_string_buffer(buf, len(buf))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fp = Fprog(len(prog), ctypes.cast(filt, ctypes.c_void_p))
    _check(ctypes, libc.prctl(22, 2, ctypes.byref(fp), 0, 0), "seccomp")  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
    return None


def _confine(job):
    notes = []
    for p in job.get("cgroup_procs") or []:
        with open(p, "w") as f:
            f.write("0")  # this process
    fs = job.get("fs")
    if fs:
        _make_root(fs)
    if job.get("cgroup_procs") and fs:
        ctypes, libc = _libc()
        _check(ctypes, libc.unshare(CLONE_NEWCGROUP), "unshare the cgroup namespace")
    import resource
    lim = job.get("limits", {})
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for key, res in (("cpu", resource.RLIMIT_CPU), ("as", resource.RLIMIT_AS), ("nproc", resource.RLIMIT_NPROC),
                     ("nofile", resource.RLIMIT_NOFILE), ("fsize", resource.RLIMIT_FSIZE)):
        v = lim.get(key, 0)
        if v > 0:
            resource.setrlimit(res, (v, v + 1 if key == "cpu" else v))
    uid = job.get("uid", 0)
    if uid:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        # Changing uid made the process non-dumpable (its /proc/self owned by root); restore the ordinary state
        # (ptrace stays refused by the filter below).
        ctypes, libc = _libc()
        _check(ctypes, libc.prctl(4, 1, 0, 0, 0), "dumpable")  # PR_SET_DUMPABLE
    ctypes, libc = _libc()
    _check(ctypes, libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS
    note = _seccomp(job.get("deny_setsid", False))
    if note:
        notes.append(note)
    os.chdir("/tmp" if fs else job["cwd"])
    os.umask(0o077)
    os.closerange(6, 1 << 20)  # nothing but 0, 1, 2, 4 and (until ready) 5 may stay open
    return notes


# The official LiveCodeBench harness prepends these imports to every program (lcb_runner/evaluation/testing_util.py).
PREAMBLE = "from string import *\nfrom re import *\nfrom datetime import *\nfrom collections import *\nfrom heapq import *\nfrom bisect import *\nfrom copy import *\nfrom math import *\nfrom random import *\nfrom statistics import *\nfrom itertools import *\nfrom functools import *\nfrom operator import *\nfrom io import *\nfrom sys import *\nfrom json import *\nfrom builtins import *\nfrom typing import *\nimport string\nimport re\nimport datetime\nimport collections\nimport heapq\nimport bisect\nimport copy\nimport math\nimport random\nimport statistics\nimport itertools\nimport functools\nimport operator\nimport io\nimport sys\nimport json\nsys.setrecursionlimit(50000)\n"


class _Raw(str):
    """A number already written as JSON."""


def _enc(x, depth=0):
    """Encode a returned value for the harness, which compares it with the expected value as Python's == would.
    Plain JSON for None, bool, int, float (always written with "." or "e"), str and list; every JSON object is a
    tag: {"t": [...]} tuple, {"d": [[k, v], ...]} dict, {"f": "inf"|"-inf"|"nan"}, {"D": str} Decimal,
    {"Q": [num, den]} Fraction, {"c": [re, im]} complex, {"x": type name} anything else (equal to nothing: an
    object's own __eq__ never decides). Subclasses of the built-in types are read through the base type."""
    if depth > 1000:
        return {"x": "nesting deeper than 1000"}
    t = type(x)
    if x is None or t is bool:
        return x
    if isinstance(x, int):
        return _Raw(int.__repr__(int.__int__(x)))
    if isinstance(x, float):
        v = float.__float__(x)
        if v != v:
            return {"f": "nan"}
        if v in (float("inf"), float("-inf")):
            return {"f": "inf" if v > 0 else "-inf"}
        return _Raw(float.__repr__(v))
    if isinstance(x, str):
        s = str.__str__(x)
        try:
            s.encode("utf-8")
        except UnicodeError:
            return {"x": "str with lone surrogates"}
        return s
    if isinstance(x, list):
        return [_enc(v, depth + 1) for v in list.__iter__(x)]
    if isinstance(x, tuple):
        return {"t": [_enc(v, depth + 1) for v in tuple.__iter__(x)]}
    if isinstance(x, dict):
        return {"d": [[_enc(k, depth + 1), _enc(v, depth + 1)] for k, v in dict.items(x)]}
    if isinstance(x, complex):
        return {"c": [_enc(complex.real.__get__(x)), _enc(complex.imag.__get__(x))]}
    import decimal, fractions
    if t is decimal.Decimal:
        return {"D": decimal.Decimal.__str__(x)}
    if t is fractions.Fraction:
        return {"Q": [int.__repr__(int.__int__(x.numerator)), int.__repr__(int.__int__(x.denominator))]}
    return {"x": t.__name__ if isinstance(t.__name__, str) else "?"}


def _dumps(v):
    out = []

    def w(v):
        if isinstance(v, _Raw):
            out.append(str.__str__(v))
        elif isinstance(v, list):
            out.append("[")
            for i, e in enumerate(v):
                if i:
                    out.append(",")
                w(e)
            out.append("]")
        elif isinstance(v, dict):
            out.append("{")
            for i, (k, e) in enumerate(v.items()):
                if i:
                    out.append(",")
                out.append(json.dumps(k))
                out.append(":")
                w(e)
            out.append("}")
        else:
            out.append(json.dumps(v))

    w(v)
    return "".join(out)


def _probe_notes(job, status):
    """Self-checks of the confinement, reported as missing isolation."""
    notes = []
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    if fields.get("NoNewPrivs", "").strip() != "1":
        notes.append("no_new_privs not set")
    if job.get("uid") and fields.get("Uid", "").split()[:1] != [str(job["uid"])]:
        notes.append("uid not dropped")
    if job.get("fs"):
        if len([p for p in os.listdir("/proc") if p.isdigit()]) != 1:
            notes.append("processes outside the sandbox are visible")
        try:
            open("/probe-write", "w").close()
            notes.append("the root file system is writable")
        except OSError:
            pass
    return notes


def _main():
    with os.fdopen(3, "rb") as f:
        job = json.loads(f.read())
    answer = os.fdopen(4, "w")
    setup = os.fdopen(5, "w")

    def report(obj):
        try:
            answer.write(json.dumps(obj) + "\n")
            answer.flush()
        except Exception:
            pass

    try:
        notes = _confine(job)
        if job["mode"] == "probe":
            exec(PREAMBLE, {})  # the interpreter's library must be readable once confined
            with open("/proc/self/status") as f:
                notes += _probe_notes(job, f.read())
    except BaseException as e:  # never run user code unconfined
        setup.write(json.dumps({"status": "setup_error", "error": repr(e)}) + "\n")
        setup.close()
        os._exit(70)
    setup.write(json.dumps({"status": "ready", "notes": notes}) + "\n")
    setup.close()
    if job["mode"] == "probe":
        report({"status": "ok"})
        sys.exit(0)
    mode, func, src, preamble = job["mode"], job.get("func", ""), job.get("program", ""), job.get("preamble", True)
    args_text = job.get("args", "")
    del job
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    try:
        code = compile(src, "solution.py", "exec")
    except (SyntaxError, ValueError) as e:
        report({"status": "compile_error", "error": repr(e)})
        sys.exit(0)

    import types, traceback

    mod = types.ModuleType("__main__" if mode == "stdin" else "tmp_sol")
    sys.modules[mod.__name__] = mod
    g = mod.__dict__
    g["__builtins__"] = __builtins__
    g["__file__"] = "solution.py"

    def run_main():
        if preamble:
            exec(PREAMBLE, g)
        exec(code, g)

    if mode == "stdin":
        try:
            run_main()
        except SystemExit:
            pass  # the official harness ignores SystemExit
        except BaseException as e:
            traceback.print_exc()
            report({"status": "runtime_error", "error": repr(e)[:300]})
            sys.exit(1)
        try:
            sys.stdout.flush()
        except Exception:
            pass
        report({"status": "ok"})
        sys.exit(0)

    # mode == "call": inputs are one JSON value a line, one per argument (as the official harness reads them).
    try:
        args = [json.loads(line) for line in args_text.split("\n")]
        run_main()
        target = g["Solution"]() if "class Solution" in src else mod
        method = getattr(target, func)
    except BaseException as e:
        traceback.print_exc()
        report({"status": "runtime_error", "error": repr(e)[:300]})
        sys.exit(1)
    try:
        value = _dumps(_enc(method(*args)))
    except BaseException as e:
        traceback.print_exc()
        report({"status": "runtime_error", "error": repr(e)[:300]})
        sys.exit(1)
    try:
        answer.write('{"status":"ok","value":' + value + "}\n")
        answer.flush()
    except Exception:
        pass
    sys.exit(0)


_main()
