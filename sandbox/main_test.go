package sandbox

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestMain runs the tests with TMPDIR set to a directory of their own and fails the run if anything is left there,
// if a sandbox was not closed, or if a cgroup of this process is left (issue 18, item 7).
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sandbox-test-tmp-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Chmod(dir, 0o777)
	os.Setenv("TMPDIR", dir)
	code := m.Run()
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, filepath.Join(dir, e.Name()))
	}
	left = append(left, cgroupLeftovers(os.Getpid())...)
	if n := Open(); n != 0 {
		left = append(left, fmt.Sprintf("%d sandboxes not closed", n))
	}
	if len(left) > 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left behind: %s\n", strings.Join(left, ", "))
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// cgroupLeftovers lists the cgroups of sandboxes of process pid under every place New puts them.
func cgroupLeftovers(pid int) []string {
	mounts, _ := readMounts()
	own, _ := ownCgroups()
	var out []string
	prefix := fmt.Sprintf("%s%d-", cgroupPrefix, pid)
	for _, m := range mounts {
		var parents []string
		switch {
		case m.fstype == "cgroup2":
			parents = []string{filepath.Join(m.point, own[""]), m.point}
		case m.fstype == "cgroup":
			for _, c := range []string{"memory", "pids"} {
				if hasWord(strings.ReplaceAll(m.opts, ",", " "), c) {
					parents = append(parents, filepath.Join(m.point, own[c]))
				}
			}
		}
		for _, p := range parents {
			ents, _ := os.ReadDir(p)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), prefix) {
					out = append(out, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	return out
}

const degradedEnv = "SNAPEVAL_SANDBOX_TEST_DEGRADED"

// TestDegraded runs the forgeries, the resource bombs and the legitimate programs again as an unprivileged user
// (uid 65534), the degraded mode: a copy of this test binary, so that CI (root) covers it too.
func TestDegraded(t *testing.T) {
	if os.Getenv(degradedEnv) != "" {
		t.Skip("already degraded")
	}
	needRoot(t)
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	dir, err := os.MkdirTemp("", "degraded-") // t.TempDir's parent is private to root
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "sandbox.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^(TestForgery|TestResourceBombs|TestLegitimatePrograms|TestDegradedInner)$", "-test.v")
	cmd.Env = []string{degradedEnv + "=1", "TMPDIR=" + dir, "HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("degraded run:\n%s", out.String())
	if err != nil {
		t.Fatalf("degraded run failed: %v", err)
	}
	if !strings.Contains(out.String(), "--- PASS: TestDegradedInner") {
		t.Errorf("TestDegradedInner did not run")
	}
}

// TestDegradedInner runs only inside TestDegraded (not root).
func TestDegradedInner(t *testing.T) {
	if os.Getenv(degradedEnv) == "" || os.Geteuid() == 0 {
		t.Skip("runs inside TestDegraded")
	}
	s := newTestSandbox(t, 1)
	if iso := s.Isolation(); len(iso) == 0 || !strings.Contains(iso[0], "not root") {
		t.Errorf("isolation notes %v do not say what is missing", iso)
	}
	// Without a PID namespace the process group is the unit of cleanup: leaving it is refused.
	r, err := s.Run(t.Context(), Spec{Mode: "stdin", Program: "import os\ntry:\n    os.setsid()\n    print('left')\nexcept OSError as e:\n    print('setsid', e.errno)\nprint(open('/proc/self/status').read().count('NoNewPrivs:\\t1'))\n"})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(r.Stdout); got != "setsid 1\n1\n" {
		t.Errorf("degraded mode: %q", got)
	}
	v, err := s.Check(t.Context(), stdinProblem("print(sum(range(10)))", "45"))
	if err != nil || v.Verdict != Pass {
		t.Errorf("a correct program: %+v %v", v, err)
	}
}
