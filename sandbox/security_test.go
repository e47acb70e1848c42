package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testLimits are low so that the security tests stay fast, but for the wall-clock limit: correct programs (and
// forgeries, which must fail for what they do, not for time) get 5 s, so that a loaded machine cannot fail them.
// Programs meant to run out of time get quickWall.
var testLimits = Limits{Wall: 5 * time.Second, AddressSpace: 512 << 20, Memory: 256 << 20, Processes: 32,
	OpenFiles: 64, FileSize: 4 << 20, Disk: 8 << 20, Output: 1 << 20}

// quickWall is the wall-clock limit of the programs that are meant to be killed for time.
var quickWall = Limits{Wall: 1500 * time.Millisecond}

func newTestSandbox(t *testing.T, parallel int) *Sandbox {
	t.Helper()
	s, err := New(Config{Limits: testLimits, Parallel: parallel})
	if err != nil {
		if strings.Contains(err.Error(), "no usable python3") {
			t.Skipf("python3 not available: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		assertClean(t, s)
	})
	return s
}

// assertClean checks that nothing of a closed sandbox is left: processes of its uids, cgroups, directories.
func assertClean(t *testing.T, s *Sandbox) {
	t.Helper()
	if s.base != "" {
		if _, err := os.Stat(s.base); !os.IsNotExist(err) {
			t.Errorf("sandbox directory %s left behind", s.base)
		}
	}
	if s.cg != nil {
		for _, g := range []string{s.cg.memGroup, s.cg.pidsGroup} {
			if _, err := os.Stat(g); g != "" && !os.IsNotExist(err) {
				t.Errorf("cgroup %s left behind", g)
			}
		}
	}
	for _, sl := range s.all {
		if sl.uid == 0 {
			continue
		}
		if pids := uidProcs(sl.uid); len(pids) > 0 {
			t.Errorf("processes of sandbox uid %d left: %v", sl.uid, pids)
		}
	}
}

func uidProcs(uid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil || statusField(b, "State") == "Z" {
			continue
		}
		if f := strings.Fields(statusField(b, "Uid")); len(f) > 0 && f[0] == strconv.Itoa(uid) {
			out = append(out, pid)
		}
	}
	return out
}

// assertSlotsClean checks, between runs, that no process of any slot is alive.
func assertSlotsClean(t *testing.T, s *Sandbox) {
	t.Helper()
	for _, sl := range s.all {
		if sl.uid != 0 {
			if pids := uidProcs(sl.uid); len(pids) > 0 {
				t.Errorf("processes left for uid %d: %v", sl.uid, pids)
			}
		}
		if sl.cg != nil {
			for _, d := range []string{sl.cg.mem, sl.cg.pids} {
				if b, _ := os.ReadFile(filepath.Join(d, "cgroup.procs")); d != "" && len(strings.TrimSpace(string(b))) > 0 {
					t.Errorf("processes left in cgroup %s: %s", d, b)
				}
			}
		}
	}
	if s.base != "" {
		ents, _ := os.ReadDir(s.base)
		for _, e := range ents {
			t.Errorf("left in sandbox directory: %s", e.Name())
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: without it the sandbox cannot drop to a private uid (see package doc)")
	}
}

// allowDegraded names the environment variable that lets the tests skip, as root, what the machine cannot give
// (namespaces, cgroups): without it such a machine fails the tests, so that CI never skips the attacks silently.
const allowDegraded = "SNAPEVAL_SANDBOX_ALLOW_DEGRADED"

// needFull skips unless the sandbox has every isolation (root, namespaces; the named cgroup controller), and fails
// as root when it has not (unless allowDegraded is set).
func needFull(t *testing.T, s *Sandbox, cgroup string) {
	t.Helper()
	needRoot(t)
	missing := ""
	switch {
	case !s.ns:
		missing = "namespaces"
	case cgroup == "memory" && (s.cg == nil || s.cg.memGroup == ""), cgroup == "pids" && (s.cg == nil || s.cg.pidsGroup == ""):
		missing = "the " + cgroup + " cgroup"
	default:
		return
	}
	if os.Getenv(allowDegraded) == "" {
		t.Fatalf("running as root without %s (%v): set %s=1 where this is expected", missing, s.Isolation(), allowDegraded)
	}
	t.Skipf("no %s here: %v", missing, s.Isolation())
}

func stdinProblem(code, want string) Problem {
	return Problem{Code: code, Tests: []TestCase{{Input: "", Output: want, Type: "stdin"}}}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// hunter is Python that searches for the secret (the expected output, "EXPECTED-" and 32 hex digits) wherever a
// program might find it: its own objects and frames, its descriptors, files, and the memory of every process it
// can see. find_secret() returns it, or "not found".
const hunter = `import os, sys, gc, re
_PAT = re.compile(rb"EXPECTED-[0-9a-f]{32}")
def _in(x):
    if isinstance(x, str):
        x = x.encode("utf-8", "surrogateescape")
    if isinstance(x, (bytes, bytearray, memoryview)):
        m = _PAT.search(bytes(x))
        if m:
            return m.group().decode()
    return None
def _objects():
    for o in gc.get_objects():
        if isinstance(o, dict):
            for k, v in list(o.items()):
                yield k
                yield v
        elif isinstance(o, (list, tuple, set, frozenset)):
            yield from list(o)
        else:
            yield o
    f = sys._getframe()
    while f:
        yield from list(f.f_locals.values())
        yield from list(f.f_globals.values())
        f = f.f_back
    for m in list(sys.modules.values()):
        yield from list(getattr(m, "__dict__", {}).values())
def _descriptors():
    for fd in range(1024):
        try:
            os.lseek(fd, 0, 0)
        except OSError:
            pass
        try:
            yield os.read(fd, 1 << 22)
        except OSError:
            pass
    for name in os.listdir("/proc/self/fd"):
        try:
            fd = os.open("/proc/self/fd/" + name, os.O_RDONLY | os.O_NONBLOCK)
            try:
                yield os.read(fd, 1 << 22)
            finally:
                os.close(fd)
        except OSError:
            pass
def _files(roots, skip):
    for root in roots:
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
            for f in files:
                try:
                    with open(os.path.join(d, f), "rb") as fh:
                        yield fh.read(1 << 22)
                except OSError:
                    pass
def _memory():
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        for name in ("environ", "cmdline"):
            try:
                yield open("/proc/%s/%s" % (p, name), "rb").read()
            except OSError:
                pass
        try:
            maps = open("/proc/%s/maps" % p).read().splitlines()
            mem = open("/proc/%s/mem" % p, "rb")
        except OSError:
            continue
        for line in maps:
            a, b = [int(x, 16) for x in line.split()[0].split("-")]
            if "r" not in line.split()[1] or b - a > 256 << 20:
                continue
            try:
                mem.seek(a)
                yield mem.read(b - a)
            except (OSError, ValueError, OverflowError):
                pass
def find_secret(files=("/",), paths=()):
    for gen in (_objects(), _descriptors(), _memory(), _files(files, {"/proc", "/sys", "/usr", "/etc", "/dev"})):
        for x in gen:
            s = _in(x)
            if s:
                return s
    for p in paths:
        try:
            s = _in(open(p, "rb").read())
            if s:
                return s
        except OSError:
            pass
    return "not found"
`

// forgery is one attempt to pass without computing the answer.
type forgery struct {
	name string
	// body is the method f(self, x) of class Solution (call mode), or a whole program (stdin mode).
	body  string
	stdin bool
	// dict: the expected value is {"a": 1, "b": secret} instead of the secret string.
	dict bool
	// verdicts the attempt may get (never pass); nil: any failing verdict.
	verdicts []string
	// degraded: the attempt is also run (and must fail) without root.
	degraded bool
}

// forgeries are the ways a program could try to forge its verdict or reach the expected output. Each fails.
func forgeries(hostPID int, hostFiles []string) []forgery {
	paths := fmt.Sprintf("%q", hostFiles)
	paths = "[" + strings.Join(strings.Fields(strings.Trim(paths, "[]")), ", ") + "]"
	return []forgery{
		{name: "fd 3 verdict (issue 18)", degraded: true, verdicts: []string{RuntimeError},
			body: `import os
os.write(3, b'{"status":"ok","equal":true}\n')
os._exit(0)`},
		{name: "__main__._expected (issue 18)", degraded: true, verdicts: []string{RuntimeError},
			body: `return __import__('__main__')._expected`},
		{name: "forged answer on every descriptor", degraded: true, verdicts: []string{WrongAnswer},
			body: `import os
for fd in range(1024):
    try:
        os.write(fd, b'\n{"status":"ok","equal":true,"got":"x","value":"guess"}\n')
    except OSError:
        pass
os._exit(0)`},
		// As root the harness's pipes cannot even be reopened by path (root's, mode 0600); without root they can.
		{name: "forged answer written by path (/proc/self/fd, /proc/1/fd, /dev/fd)", degraded: true,
			verdicts: []string{WrongAnswer, RuntimeError}, body: `import os
for d in ("/proc/self/fd", "/proc/1/fd", "/dev/fd"):
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for n in names:
        try:
            with open(os.path.join(d, n), "w") as f:
                f.write('\n{"status":"ok","equal":true,"value":"guess"}\n')
        except OSError:
            pass
os._exit(0)`},
		{name: "forged dict answer repeating a key", dict: true, degraded: true, verdicts: []string{WrongAnswer},
			body: `import os
os.write(4, b'{"status":"ok","value":{"d":[["a",1],["a",1]]}}\n')
os._exit(0)`},
		{name: "forged setup error", degraded: true, verdicts: []string{RuntimeError},
			body: `import os
for fd in (3, 4, 5):
    try:
        os.write(fd, b'{"status":"setup_error","error":"not my fault"}\n')
    except OSError:
        pass
os._exit(70)`},
		{name: "forged ok status then a crash (stdin)", stdin: true, degraded: true,
			body: `import os
os.write(4, b'{"status":"ok"}\n')
raise SystemError("crash")`},
		{name: "exit 0 before answering", degraded: true, verdicts: []string{RuntimeError},
			body: `import os
os._exit(0)`},
		{name: "object whose __eq__ is always true", degraded: true, verdicts: []string{WrongAnswer},
			body: `class A:
    def __eq__(self, o):
        return True
    __hash__ = object.__hash__
return A()`},
		{name: "str subclass whose __eq__ is always true", degraded: true, verdicts: []string{WrongAnswer},
			body: `class S(str):
    def __eq__(self, o):
        return True
    __hash__ = str.__hash__
return S("guess")`},
		{name: "objects, frames and modules", degraded: true, verdicts: []string{WrongAnswer},
			body: hunterCall("[s for s in [_in(x) for x in _objects()] if s][:1] or ['not found']")},
		{name: "descriptors and /proc/self/fd", degraded: true, verdicts: []string{WrongAnswer},
			body: hunterCall("[s for s in [_in(x) for x in _descriptors()] if s][:1] or ['not found']")},
		{name: "its own memory and every visible process's (ptrace of the parent, /proc/PID/mem)", degraded: true,
			verdicts: []string{WrongAnswer}, body: hunterCall(fmt.Sprintf(`[s for s in [_in(x) for x in _memory()] if s][:1] or [_ptrace(%d)]`, hostPID))},
		{name: "files: the grader's copies of the expected output and every readable file",
			verdicts: []string{WrongAnswer}, body: hunterCall(fmt.Sprintf("[find_secret(paths=%s)]", paths))},
		{name: "everything, printed (stdin)", stdin: true, verdicts: []string{WrongAnswer},
			body: hunter + fmt.Sprintf("print(find_secret(paths=%s))\n", paths)},
		{name: "signals to the harness", verdicts: []string{WrongAnswer}, body: fmt.Sprintf(`import os, signal
for pid in (%d, -%d, os.getppid(), -1):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
return "not found"`, hostPID, hostPID)},
	}
}

// hunterCall wraps hunter in a method body that returns the first element of expr.
func hunterCall(expr string) string {
	var b strings.Builder
	b.WriteString("import ctypes\n")
	b.WriteString("def _ptrace(pid):\n    libc = ctypes.CDLL(None, use_errno=True)\n")
	b.WriteString("    for p in (pid, os.getppid(), 1):\n        if p > 0 and libc.ptrace(16, p, 0, 0) == 0:\n            return 'attached %d' % p\n")
	b.WriteString("    return 'not found'\n")
	b.WriteString("return (" + expr + ")[0]\n")
	return hunter + "\n" + b.String()
}

// forgeryProblem builds the problem of an attempt: one test whose expected output is secret.
func forgeryProblem(f forgery, secret string) Problem {
	if f.stdin {
		return stdinProblem(f.body, secret)
	}
	var code strings.Builder
	code.WriteString("class Solution:\n    def f(self, x):\n")
	// The hunter's helpers are module level; the method body is indented.
	body := f.body
	if strings.HasPrefix(body, hunter) {
		code.Reset()
		code.WriteString(hunter)
		code.WriteString("class Solution:\n    def f(self, x):\n")
		body = strings.TrimPrefix(body, hunter+"\n")
	}
	for _, line := range strings.Split(body, "\n") {
		code.WriteString("        " + line + "\n")
	}
	want := strconv.Quote(secret)
	if f.dict {
		want = fmt.Sprintf(`{"a": 1, "b": %q}`, secret)
	}
	return Problem{Code: code.String(), FuncName: "f", Tests: []TestCase{{Input: `"q"`, Output: want, Type: "functional"}}}
}

// TestForgery runs every forgery: none may pass, and none may turn into a harness error.
func TestForgery(t *testing.T) {
	s := newTestSandbox(t, 2)
	secret := "EXPECTED-" + randomHex(t, 16)
	// The grader's files: a copy of the expected output where a harness might keep one.
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	hostFiles := []string{filepath.Join(dir, "expected.json"), filepath.Join(os.TempDir(), fmt.Sprintf("snapeval-expected-%d.json", os.Getpid()))}
	for _, p := range hostFiles {
		if err := os.WriteFile(p, []byte(strconv.Quote(secret)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { os.Remove(hostFiles[1]) })
	runForgeries(t, s, forgeries(os.Getpid(), hostFiles), secret, os.Geteuid() == 0)
}

func runForgeries(t *testing.T, s *Sandbox, fs []forgery, secret string, all bool) {
	for _, f := range fs {
		if !all && !f.degraded {
			continue
		}
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			v, err := s.Check(context.Background(), forgeryProblem(f, secret))
			if err != nil {
				t.Fatalf("harness error (a program must not cause one): %v", err)
			}
			t.Logf("%s: %s", v.Verdict, v.Detail)
			if v.Verdict == Pass {
				t.Fatalf("forged a pass: %s", v.Detail)
			}
			if strings.Count(v.Detail, secret) > 1 { // once is the expected value the detail quotes
				t.Errorf("the program found the secret: %s", v.Detail)
			}
			ok := f.verdicts == nil
			for _, w := range f.verdicts {
				ok = ok || v.Verdict == w
			}
			if !ok {
				t.Errorf("verdict %s (%s), want one of %v", v.Verdict, v.Detail, f.verdicts)
			}
		})
	}
}

// containment is one attack on the machine, run with Run; check inspects its result and the host.
type containment struct {
	name   string
	code   string
	cgroup string // "memory" or "pids": needs that cgroup
	limits Limits
	check  func(t *testing.T, r Result, stdout string)
}

func TestContainment(t *testing.T) {
	needRoot(t)
	s := newTestSandbox(t, 2)
	needFull(t, s, "")
	marker := "snapeval-escape-" + randomHex(t, 8)
	harnessDir := t.TempDir()
	os.Chmod(harnessDir, 0o777)
	secretEnv := "snapeval-fake-secret-" + randomHex(t, 8)
	t.Setenv("SNAPEVAL_FAKE_API_KEY", secretEnv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	exe, _ := os.Executable()
	hostTargets := []string{harnessDir, "/run/lock", "/var/lock", "/var/tmp", "/tmp", "/dev/shm", "/dev/mqueue", "/root",
		"/etc", "/usr/local", "/", "/dev", "/home", "/srv", "/opt", "/var/cache", "/var/crash", filepath.Dir(exe)}

	cases := []containment{
		{name: "no new privileges, seccomp filter, uid dropped",
			code: "import os\nst = open('/proc/self/status').read()\nprint([l for l in st.splitlines() if l.split(':')[0] in ('NoNewPrivs', 'Seccomp', 'Uid', 'CapEff', 'CapPrm')])\ntry:\n    os.setuid(0)\n    print('setuid 0 worked')\nexcept OSError as e:\n    print('setuid', e.errno)\n",
			check: func(t *testing.T, r Result, out string) {
				for _, want := range []string{"NoNewPrivs:\\t1", "Seccomp:\\t2", "CapEff:\\t0000000000000000", "CapPrm:\\t0000000000000000", "setuid 1"} {
					if !strings.Contains(out, want) {
						t.Errorf("want %q in %s", want, out)
					}
				}
				if strings.Contains(out, "Uid:\\t0") {
					t.Errorf("runs as root: %s", out)
				}
			}},
		{name: "every mount is nosuid and the setuid bits are dead",
			code: "import os\nbad = [l.split()[4] for l in open('/proc/self/mountinfo') if 'nosuid' not in l.split()[5]]\nprint('suid mounts', bad)\nsuid = [e.path for e in os.scandir('/usr/bin') if e.is_file() and os.stat(e.path).st_mode & 0o4000]\nprint('setuid binaries', len(suid))\nimport subprocess\nfor p in suid[:3]:\n    try:\n        subprocess.run([p, '--help'], capture_output=True, timeout=1)\n    except Exception:\n        pass\nprint('euid', os.geteuid())\n",
			check: func(t *testing.T, r Result, out string) {
				if !strings.Contains(out, "suid mounts []") {
					t.Errorf("mounts without nosuid: %s", out)
				}
			}},
		{name: "user namespaces and other namespaces refused",
			code: "import ctypes, os, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\nfor name, flags in (('user', 0x10000000), ('mount', 0x20000), ('net', 0x40000000), ('pid', 0x20000000)):\n    r = libc.unshare(flags)\n    print('unshare', name, r, ctypes.get_errno())\nr = libc.syscall({'x86_64': 56, 'aarch64': 220}[os.uname().machine], 0x10000000 | 17, 0, 0, 0, 0)\nif r == 0:\n    os._exit(0)\nprint('clone newuser', r, ctypes.get_errno())\nprint('clone3', libc.syscall(435, 0, 0), ctypes.get_errno())\ntry:\n    print('unshare -U', subprocess.run(['unshare', '-U', 'true'], capture_output=True).returncode)\nexcept OSError as e:\n    print('unshare -U', e)\nprint('mount', libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())\n",
			check: func(t *testing.T, r Result, out string) {
				for _, want := range []string{"unshare user -1 1", "unshare mount -1 1", "unshare net -1 1", "unshare pid -1 1",
					"clone newuser -1 1", "clone3 -1 38", "mount -1 1"} {
					if !strings.Contains(out, want) {
						t.Errorf("want %q in %s", want, out)
					}
				}
				if strings.Contains(out, "unshare -U 0") {
					t.Errorf("unshare -U succeeded: %s", out)
				}
			}},
		{name: "host processes invisible (own /proc)",
			code: "import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\nprint('pids', pids)\nfor p in pids:\n    print(open('/proc/%s/cmdline' % p, 'rb').read()[:80])\nprint('environ', open('/proc/1/environ', 'rb').read())\n",
			check: func(t *testing.T, r Result, out string) {
				if !strings.Contains(out, "pids ['1']") {
					t.Errorf("other processes visible: %s", out)
				}
				if strings.Contains(out, "snapeval") && !strings.Contains(out, "snapeval sandbox driver") || strings.Contains(out, filepath.Base(exe)) {
					t.Errorf("host command lines visible: %s", out)
				}
				if !strings.Contains(out, "environ b''") {
					t.Errorf("environment not empty: %s", out)
				}
			}},
		{name: "the harness's environment",
			code: "import os\nprint(dict(os.environ))\nfor p in ['/proc/%d/environ' % os.getppid(), '/proc/self/environ', '/proc/1/environ']:\n    try:\n        print(open(p, 'rb').read())\n    except OSError as e:\n        print('denied', p)\n",
			check: func(t *testing.T, r Result, out string) {
				if strings.Contains(out, secretEnv) {
					t.Errorf("secret visible to the program: %s", out)
				}
			}},
		{name: "writes outside the private tmp reach nothing on the host",
			code: fmt.Sprintf("import os\nok = []\nfor d in %s:\n    try:\n        with open(os.path.join(d, %q), 'w') as f:\n            f.write('x')\n        ok.append(d)\n    except OSError:\n        pass\nmounts = [l.split() for l in open('/proc/self/mountinfo')]\nrw = sorted(m[4] for m in mounts if 'rw' in m[5].split(','))\nprint('rw mounts', rw)\nro = {m[4] for m in mounts if 'ro' in m[5].split(',')} - {'/'}\nfor root, dirs, files in os.walk('/'):\n    if root.startswith('/proc') or root in ro:\n        dirs[:] = []\n        continue\n    try:\n        with open(os.path.join(root, %q), 'w') as f:\n            f.write('x')\n        ok.append(root)\n    except OSError:\n        pass\nprint('written', sorted(set(ok)))\n",
				pyStrings(hostTargets), marker, marker),
			check: func(t *testing.T, r Result, out string) {
				if !strings.Contains(out, "rw mounts ['/dev/full', '/dev/null', '/dev/random', '/dev/shm', '/dev/urandom', '/dev/zero', '/proc', '/tmp']") {
					t.Errorf("writable mounts other than the private /tmp, /dev/shm, /proc and devices: %s", out)
				}
				if !strings.Contains(out, "written ['/dev/shm', '/tmp']") {
					t.Errorf("writable places other than the private /tmp and /dev/shm: %s", out)
				}
				for _, d := range hostTargets {
					if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
						os.Remove(filepath.Join(d, marker))
						t.Errorf("the program wrote %s on the host", filepath.Join(d, marker))
					}
				}
			}},
		{name: "disk filling stops at the tmpfs size",
			code: "import os\ntotal = 0\nfor j, d in enumerate(('/tmp', '/dev/shm', '.')):\n    for i in range(1000):\n        try:\n            with open('%s/fill%d-%d' % (d, j, i), 'wb') as f:\n                f.write(b'x' * (1 << 20))\n            total += 1 << 20\n        except OSError:\n            break\nprint('written', total)\n",
			check: func(t *testing.T, r Result, out string) {
				var n int64
				fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(out), "written "), "%d", &n)
				if n <= 0 || n > testLimits.Disk {
					t.Errorf("wrote %d bytes with a %d-byte tmpfs: %s", n, testLimits.Disk, out)
				}
			}},
		{name: "network", code: fmt.Sprintf("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=1)\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)\nprint(socket.gethostname())\n", port),
			check: func(t *testing.T, r Result, out string) {
				if !strings.Contains(out, "refused") || !strings.Contains(out, "sandbox") {
					t.Errorf("network or hostname not private: %s", out)
				}
			}},
		{name: "keyrings, ptrace and raised limits refused",
			code: "import ctypes, resource, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('keyctl', libc.syscall({'x86_64': 250, 'aarch64': 219}[os.uname().machine], 0, -4, 1), ctypes.get_errno())\nprint('ptrace', libc.ptrace(0, 0, 0, 0), ctypes.get_errno())\ntry:\n    resource.setrlimit(resource.RLIMIT_NPROC, (10**6, 10**6))\n    print('raised')\nexcept (ValueError, OSError):\n    print('not raised')\n",
			check: func(t *testing.T, r Result, out string) {
				for _, want := range []string{"keyctl -1 1", "ptrace -1 1", "not raised"} {
					if !strings.Contains(out, want) {
						t.Errorf("want %q in %s", want, out)
					}
				}
			}},
		{name: "memory is capped across children", cgroup: "memory", limits: Limits{Wall: 8 * time.Second, AddressSpace: 1 << 30},
			// Eight children each hold 64 MiB (512 MiB) under a 256 MiB cap; the parent waits until each child has
			// either reported its allocation or died, then counts the living.
			code: "import os, time, select\nr, w = os.pipe()\nkids = []\nfor i in range(8):\n    pid = os.fork()\n    if pid == 0:\n        b = b'x' * (64 << 20)\n        os.write(w, b'1')\n        time.sleep(60)\n        os._exit(0)\n    kids.append(pid)\nheld, dead = 0, set()\nend = time.time() + 7\nwhile held + len(dead) < 8 and time.time() < end:\n    if select.select([r], [], [], 0.05)[0]:\n        held += len(os.read(r, 8))\n    for p in kids:\n        if p not in dead and os.waitpid(p, os.WNOHANG) != (0, 0):\n            dead.add(p)\nalive = [p for p in kids if p not in dead and os.waitpid(p, os.WNOHANG) == (0, 0)]\nprint('held', held, 'alive', len(alive), flush=True)\nif len(alive) == 8:\n    print('ALL-HELD')\n",
			check: func(t *testing.T, r Result, out string) {
				if strings.Contains(out, "ALL-HELD") || r.TimedOut {
					t.Errorf("8 children held 512 MiB under a 256 MiB cap (or timed out): %s", out)
				}
				if !r.MemoryLimit {
					t.Errorf("the memory cgroup reported no kill: %s (exit %d, signal %q)", out, r.ExitCode, r.Signal)
				}
			}},
		{name: "processes are capped across the run", cgroup: "pids",
			code: "import os, time\nn = 0\nfor i in range(200):\n    try:\n        pid = os.fork()\n    except OSError:\n        break\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\nprint('forked', n, flush=True)\n",
			check: func(t *testing.T, r Result, out string) {
				var n int
				fmt.Sscanf(strings.TrimPrefix(strings.TrimSpace(out), "forked "), "%d", &n)
				if n == 0 || n >= testLimits.Processes {
					t.Errorf("forked %d with a cap of %d: %s", n, testLimits.Processes, out)
				}
			}},
		{name: "sleeping grandchildren after a timeout", limits: quickWall,
			code: "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n            time.sleep(0.05)\n    os._exit(0)\nwhile True:\n    pass\n",
			check: func(t *testing.T, r Result, out string) {
				if !r.TimedOut {
					t.Errorf("not timed out: %+v", r)
				}
			}},
		{name: "a daemon that outlives it",
			code: "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n            time.sleep(0.05)\n    os._exit(0)\nprint('parent done')\n",
			check: func(t *testing.T, r Result, out string) {
				if out != "parent done\n" {
					t.Errorf("output %q", out)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.cgroup != "" {
				needFull(t, s, c.cgroup)
			}
			r, err := s.Run(context.Background(), Spec{Mode: "stdin", Program: c.code, Limits: c.limits})
			if err != nil {
				t.Fatalf("harness error: %v", err)
			}
			t.Logf("exit %d signal %q stdout %q stderr %q", r.ExitCode, r.Signal, truncate(string(r.Stdout), 600), lastLines(string(r.Stderr), 3))
			c.check(t, r, string(r.Stdout))
			assertSlotsClean(t, s)
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listener accepted %d connections from sandboxed programs", n)
	}
}

func pyStrings(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestResourceBombs checks the verdicts of programs that exhaust a resource, and that each leaves nothing behind.
func TestResourceBombs(t *testing.T) {
	s := newTestSandbox(t, 2)
	cases := []struct {
		name     string
		code     string
		root     bool // contained only as root
		verdicts []string
	}{
		{name: "fork bomb", root: true, verdicts: []string{TimeLimit, RuntimeError},
			code: "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"},
		{name: "memory bomb at once", verdicts: []string{RuntimeError}, code: "x = bytearray(1 << 40)\nprint(len(x))\n"},
		{name: "memory bomb growing", verdicts: []string{RuntimeError, TimeLimit},
			code: "l = []\nwhile True:\n    l.append(bytearray(1 << 24))\n"},
		{name: "infinite loop", verdicts: []string{TimeLimit}, code: "while True:\n    pass\n"},
		{name: "sleeping forever", verdicts: []string{TimeLimit}, code: "import time\ntime.sleep(10**9)\n"},
		{name: "huge file", verdicts: []string{RuntimeError},
			code: "with open('big.bin', 'wb') as f:\n    for _ in range(1 << 14):\n        f.write(b'x' * (1 << 16))\nprint('done')\n"},
		{name: "huge output", verdicts: []string{RuntimeError}, code: "while True:\n    print('x' * 4096)\n"},
		{name: "kill everything it can", root: true, verdicts: []string{WrongAnswer},
			code: "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint('alive')\n"},
	}
	t.Run("group", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				runBomb(t, s, c.code, c.root, c.verdicts)
			})
		}
	})
	assertSlotsClean(t, s)
}

// runBomb checks one resource bomb's verdict.
func runBomb(t *testing.T, s *Sandbox, code string, root bool, verdicts []string) {
	if root {
		needRoot(t)
	}
	p := stdinProblem(code, "expected-output-never-printed")
	p.Limits = quickWall
	v, err := s.Check(context.Background(), p)
	if err != nil {
		t.Fatalf("harness error: %v", err)
	}
	t.Logf("%s: %s", v.Verdict, v.Detail)
	ok := false
	for _, w := range verdicts {
		ok = ok || v.Verdict == w
	}
	if !ok {
		t.Errorf("verdict %s (%s), want one of %v", v.Verdict, v.Detail, verdicts)
	}
}

// TestForkBombThenGood is issue 18's item 5: fork bombs must not starve the programs graded after them. Each good
// program starts one subprocess.
func TestForkBombThenGood(t *testing.T) {
	needRoot(t)
	s := newTestSandbox(t, 2)
	bomb := stdinProblem("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", "never")
	bomb.Limits = quickWall
	good := stdinProblem("import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True).stdout.strip())\n", "42")
	for round := 0; round < 2; round++ {
		errs := make(chan error, 2)
		for i := 0; i < 2; i++ {
			go func() {
				v, err := s.Check(context.Background(), bomb)
				if err == nil && v.Verdict == Pass {
					err = fmt.Errorf("fork bomb passed")
				}
				errs <- err
			}()
		}
		for i := 0; i < 2; i++ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 3; i++ {
			v, err := s.Check(context.Background(), good)
			if err != nil {
				t.Fatal(err)
			}
			if v.Verdict != Pass {
				t.Errorf("round %d, good program %d after fork bombs: %s (%s)", round, i, v.Verdict, v.Detail)
			}
		}
	}
}

// TestLegitimatePrograms are correct programs that use what a sandbox might break: threads, processes,
// multiprocessing (semaphores in /dev/shm), temporary files, large input, the CPU count.
func TestLegitimatePrograms(t *testing.T) {
	s := newTestSandbox(t, 2)
	big := strings.Repeat("1 ", 200000)
	cases := []struct{ name, code, stdin, want string }{
		{"threads", "import threading\nr = []\nts = [threading.Thread(target=lambda i=i: r.append(i)) for i in range(8)]\n[t.start() for t in ts]\n[t.join() for t in ts]\nprint(sum(r))\n", "", "28"},
		{"subprocess", "import subprocess\nprint(subprocess.run(['echo', 'hi'], capture_output=True, text=True).stdout.strip())\n", "", "hi"},
		{"multiprocessing pool", "import multiprocessing as mp\nif __name__ == '__main__':\n    with mp.Pool(2) as p:\n        print(sum(p.map(abs, [-1, -2, 3])))\n", "", "6"},
		{"multiprocessing lock", "import multiprocessing as mp\nl = mp.Lock()\nwith l:\n    print('locked')\n", "", "locked"},
		{"temporary files", "import tempfile, os\nwith tempfile.NamedTemporaryFile('w+') as f:\n    f.write('abc')\n    f.flush()\n    print(open(f.name).read())\nopen('here.txt', 'w').write('x')\nprint(os.path.getsize('here.txt'))\n", "", "abc\n1"},
		{"large input", "import sys\nprint(sum(map(int, sys.stdin.read().split())))\n", big, "200000"},
		{"stdin seek", "import sys\nsys.stdin.buffer.read()\nsys.stdin.buffer.seek(0)\nprint(len(sys.stdin.buffer.read().split()))\n", big, "200000"},
		{"cpu count and time", "import os, time\nprint(os.cpu_count() >= 1, time.time() > 0)\n", "", "True True"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, err := s.Check(context.Background(), Problem{Code: c.code, Tests: []TestCase{{Input: c.stdin, Output: c.want, Type: "stdin"}}})
			if err != nil {
				t.Fatal(err)
			}
			if v.Verdict != Pass {
				t.Errorf("%s: %s", v.Verdict, v.Detail)
			}
		})
	}
}
