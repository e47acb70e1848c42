package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCgroupV2Files drives the cgroup v2 code over a fake hierarchy (plain directories and files): which files it
// reads and writes, in which order. The real v2 path runs where the machine has it (TestContainment's cgroup cases).
func TestCgroupV2Files(t *testing.T) {
	parent := t.TempDir()
	os.WriteFile(filepath.Join(parent, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o644)
	os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("cpu\n"), 0o644)
	if _, err := makeV2Group(t.TempDir(), "x"); err == nil {
		t.Error("a parent without cgroup.controllers accepted")
	}
	g, err := makeV2Group(parent, "snapeval-sandbox-1-1")
	if err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(parent, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("parent subtree_control %q", got)
	}
	if got := readTrim(t, filepath.Join(g, "cgroup.subtree_control")); got != "+memory +pids" {
		t.Errorf("group subtree_control %q", got)
	}
	cg := &cgroups{v2: true, memGroup: g, pidsGroup: g, swap: true}
	slots := []*slot{{}, {}}
	if err := cg.makeSlots(slots); err != nil {
		t.Fatal(err)
	}
	sc := slots[1].cg
	if sc.mem != filepath.Join(g, "slot-1") || sc.pids != sc.mem {
		t.Errorf("slot dirs %q %q", sc.mem, sc.pids)
	}
	if got := sc.procsFiles(); len(got) != 1 || got[0] != filepath.Join(g, "slot-1", "cgroup.procs") {
		t.Errorf("procs files %v", got)
	}
	for file, want := range map[string]string{"memory.swap.max": "0", "memory.oom.group": "1"} {
		if got := readTrim(t, filepath.Join(sc.mem, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if err := cg.setLimits(sc, 256<<20, 32); err != nil {
		t.Fatal(err)
	}
	if readTrim(t, filepath.Join(sc.mem, "memory.max")) != "268435456" || readTrim(t, filepath.Join(sc.mem, "pids.max")) != "32" {
		t.Error("limits not written")
	}
	os.WriteFile(filepath.Join(sc.mem, "memory.events"), []byte("low 0\nhigh 0\nmax 7\noom 2\noom_kill 3\noom_group_kill 1\n"), 0o644)
	if n := cg.oomKills(sc); n != 3 {
		t.Errorf("oom kills %d, want 3", n)
	}
}

// TestCgroupV1Files: the v1 memory limits keep memsw >= memory at every step.
func TestCgroupV1Files(t *testing.T) {
	mem, pids := t.TempDir(), t.TempDir()
	cg := &cgroups{memGroup: mem, pidsGroup: pids, memsw: true}
	slots := []*slot{{}}
	if err := cg.makeSlots(slots); err != nil {
		t.Fatal(err)
	}
	sc := slots[0].cg
	if got := sc.procsFiles(); len(got) != 2 {
		t.Errorf("v1 joins both hierarchies: %v", got)
	}
	if err := cg.setLimits(sc, 1<<30, 64); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"memory.limit_in_bytes": "1073741824", "memory.memsw.limit_in_bytes": "1073741824"} {
		if got := readTrim(t, filepath.Join(sc.mem, file)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if got := readTrim(t, filepath.Join(sc.pids, "pids.max")); got != "64" {
		t.Errorf("pids.max %q", got)
	}
	os.WriteFile(filepath.Join(sc.mem, "memory.oom_control"), []byte("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"), 0o644)
	if n := cg.oomKills(sc); n != 2 {
		t.Errorf("oom kills %d", n)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip(err)
	}
	return cmd.Process.Pid
}

// TestStaleSweep: what a crashed process left (a cgroup group, a degraded-mode directory) is removed by the next
// sandbox; what a live process holds is not.
func TestStaleSweep(t *testing.T) {
	needRoot(t)
	s := newTestSandbox(t, 1)
	if s.cg == nil {
		t.Skipf("no cgroups here: %v", s.Isolation())
	}
	dead := deadPID(t)
	var stale []string
	for _, g := range uniq(s.cg.memGroup, s.cg.pidsGroup) {
		if g == "" {
			continue
		}
		p := filepath.Join(filepath.Dir(g), fmt.Sprintf("%s%d-7", cgroupPrefix, dead))
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(filepath.Join(p, "slot-0"), 0o755)
		stale = append(stale, p)
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("snapeval-sandbox-%d-123", dead))
	os.MkdirAll(filepath.Join(dir, "run-1"), 0o755)
	live := filepath.Join(os.TempDir(), fmt.Sprintf("snapeval-sandbox-%d-456", os.Getpid()))
	os.MkdirAll(live, 0o755)
	defer os.RemoveAll(live)
	s2 := newTestSandbox(t, 1)
	if _, err := s2.baseDir(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(stale, dir) {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("stale %s not removed", p)
			removeGroup(p)
			os.RemoveAll(p)
		}
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's directory was removed")
	}
}
