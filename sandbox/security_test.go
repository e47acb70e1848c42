package sandbox

import (
	"context"
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

// testLimits are low so that the security tests stay fast.
var testLimits = Limits{Wall: 1500 * time.Millisecond, AddressSpace: 512 << 20, Processes: 16, OpenFiles: 64,
	FileSize: 1 << 20, Output: 1 << 20}

func newTestSandbox(t *testing.T) *Sandbox {
	t.Helper()
	s, err := New(Config{Limits: testLimits, Parallel: 2})
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

// assertClean checks that no process of the sandbox's uids is left and that its directory is gone.
func assertClean(t *testing.T, s *Sandbox) {
	t.Helper()
	if _, err := os.Stat(s.base); !os.IsNotExist(err) {
		t.Errorf("sandbox directory %s left behind", s.base)
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

// runDirsLeft lists run directories left in the sandbox directory (there must be none between runs).
func runDirsLeft(t *testing.T, s *Sandbox) {
	t.Helper()
	ents, err := os.ReadDir(s.base)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "driver.py" {
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

func stdinProblem(code, want string) Problem {
	return Problem{Code: code, Tests: []TestCase{{Input: "", Output: want, Type: "stdin"}}}
}

func TestSecurity(t *testing.T) {
	s := newTestSandbox(t)
	secret := "snapeval-fake-secret-" + strconv.Itoa(os.Getpid())
	t.Setenv("SNAPEVAL_FAKE_API_KEY", secret)
	harnessDir := t.TempDir()
	hostTmp := filepath.Join(os.TempDir(), fmt.Sprintf("snapeval-escape-%d", os.Getpid()))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
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

	cases := []struct {
		name     string
		code     string
		root     bool // needs root to be contained
		verdicts []string
		check    func(t *testing.T, v Verdict)
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
		{name: "write outside its directory", root: true, verdicts: []string{WrongAnswer},
			code: fmt.Sprintf(`import os
hits = []
for p in [%q, %q, %q, "../escape.txt", %q]:
    try:
        with open(p, "w") as f:
            f.write("x")
        hits.append(p)
    except OSError:
        pass
print(hits)
`, filepath.Join(harnessDir, "escape.txt"), filepath.Join(s.base, "escape.txt"), "/root/snapeval-escape.txt", hostTmp),
			check: func(t *testing.T, v Verdict) {
				for _, p := range []string{filepath.Join(harnessDir, "escape.txt"), filepath.Join(s.base, "escape.txt"),
					"/root/snapeval-escape.txt", hostTmp} {
					if _, err := os.Stat(p); err == nil {
						os.Remove(p)
						t.Errorf("program wrote %s", p)
					}
				}
				// Only the private /tmp write may have succeeded inside the sandbox.
				if !strings.Contains(v.Detail, "[]") && !strings.Contains(v.Detail, "['"+hostTmp+"']") {
					t.Errorf("writes outside the run directory succeeded: %s", v.Detail)
				}
			}},
		{name: "read the harness environment", root: true, verdicts: []string{WrongAnswer, RuntimeError},
			code: "import os\nprint(dict(os.environ))\nfor p in ['/proc/%d/environ' % os.getppid(), '/proc/self/environ']:\n    try:\n        print(open(p, 'rb').read())\n    except OSError as e:\n        print('denied', p)\n",
			check: func(t *testing.T, v Verdict) {
				if strings.Contains(v.Detail, secret) {
					t.Errorf("secret visible to the program: %s", v.Detail)
				}
			}},
		{name: "network connection", root: true, verdicts: []string{RuntimeError},
			code: fmt.Sprintf("import socket\ns = socket.create_connection(('127.0.0.1', %d), timeout=1)\nprint('connected')\n", port)},
		{name: "kill its parent", root: true, verdicts: []string{RuntimeError},
			code: "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('killed')\n"},
		{name: "kill everything it can", root: true, verdicts: []string{WrongAnswer},
			code: "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\nprint('alive')\n"},
		{name: "daemon that outlives it", root: true, verdicts: []string{WrongAnswer},
			code: "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        while True:\n            time.sleep(0.05)\n    os._exit(0)\nprint('parent done')\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.root {
				needRoot(t)
			}
			if c.name == "network connection" && len(s.Isolation()) > 0 {
				t.Skipf("isolation unavailable here: %v", s.Isolation())
			}
			start := time.Now()
			v, err := s.Check(context.Background(), stdinProblem(c.code, "expected-output-never-printed"))
			if err != nil {
				t.Fatalf("harness error: %v", err)
			}
			t.Logf("%s in %v: %s", v.Verdict, time.Since(start).Round(time.Millisecond), v.Detail)
			found := false
			for _, w := range c.verdicts {
				found = found || v.Verdict == w
			}
			if !found {
				t.Errorf("verdict %s (%s), want one of %v", v.Verdict, v.Detail, c.verdicts)
			}
			if c.check != nil {
				c.check(t, v)
			}
			for _, sl := range s.all {
				if sl.uid != 0 {
					if pids := uidProcs(sl.uid); len(pids) > 0 {
						t.Errorf("processes left for uid %d: %v", sl.uid, pids)
					}
				}
			}
			runDirsLeft(t, s)
		})
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the listener accepted %d connections from sandboxed programs", n)
	}
}
