package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// cgroupPrefix names the cgroups a sandbox makes: cgroupPrefix + "<pid>-<n>", one per sandbox, with one child
// "slot-<i>" per slot. A group whose pid is no longer alive is left over from a crash and is removed by New.
const cgroupPrefix = "snapeval-sandbox-"

var cgroupSeq atomic.Int64

// cgroups is the sandbox's own groups: for each controller (memory, pids) the directory of the group that holds
// the slots. With cgroup v2 both controllers share one directory.
type cgroups struct {
	v2          bool
	memGroup    string // "" without a memory controller
	pidsGroup   string // "" without a pids controller
	swap, memsw bool   // v2 memory.swap.max / v1 memory.memsw.limit_in_bytes exist
}

// slotCgroup is the cgroup (or, with v1, the pair of cgroups) of one slot.
type slotCgroup struct {
	mem, pids string // leaf directories ("" without that controller)
	memLimit  int64  // last written limits (0: none yet)
	pidsLimit int
	oomKills  int64 // the memory controller's oom_kill count after the last run
}

// procsFiles are the cgroup.procs files the driver writes itself into.
func (c *slotCgroup) procsFiles() []string {
	var out []string
	for _, d := range []string{c.mem, c.pids} {
		if d != "" && (len(out) == 0 || filepath.Join(d, "cgroup.procs") != out[0]) {
			out = append(out, filepath.Join(d, "cgroup.procs"))
		}
	}
	return out
}

type mountInfo struct{ point, fstype, opts string }

func readMounts() ([]mountInfo, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountInfo
	for _, line := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 {
			continue
		}
		out = append(out, mountInfo{point: unescapeMount(f[4]), fstype: g[0], opts: g[2]})
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ownCgroups maps a v1 controller name (or "" for the v2 hierarchy) to this process's cgroup path.
func ownCgroups() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, nil
}

// setupCgroups finds a place for the sandbox's cgroups and makes one per slot. It prefers cgroup v2 with both
// controllers; otherwise it takes each controller where it is (v1). What it cannot get is returned as notes.
func setupCgroups(slots []*slot) (*cgroups, []string) {
	mounts, err := readMounts()
	if err != nil {
		return nil, []string{"no cgroups: " + err.Error()}
	}
	own, err := ownCgroups()
	if err != nil {
		return nil, []string{"no cgroups: " + err.Error()}
	}
	name := fmt.Sprintf("%s%d-%d", cgroupPrefix, os.Getpid(), cgroupSeq.Add(1))
	var v2errs []string
	for _, m := range mounts {
		if m.fstype != "cgroup2" {
			continue
		}
		for _, parent := range uniq(filepath.Join(m.point, own[""]), m.point) {
			g, err := makeV2Group(parent, name)
			if err != nil {
				v2errs = append(v2errs, err.Error())
				continue
			}
			cg := &cgroups{v2: true, memGroup: g, pidsGroup: g}
			_, serr := os.Stat(filepath.Join(g, "slot-probe", "memory.swap.max"))
			os.Remove(filepath.Join(g, "slot-probe"))
			cg.swap = serr == nil
			if err := cg.makeSlots(slots); err != nil {
				cg.remove(slots)
				v2errs = append(v2errs, err.Error())
				continue
			}
			return cg, nil
		}
	}
	// cgroup v1: each controller in its own hierarchy, under this process's own group.
	cg := &cgroups{}
	var notes []string
	for _, ctl := range []string{"memory", "pids"} {
		dir, err := makeV1Group(mounts, own, ctl, name)
		if err != nil {
			notes = append(notes, err.Error())
			continue
		}
		if ctl == "memory" {
			cg.memGroup = dir
			_, serr := os.Stat(filepath.Join(dir, "memory.memsw.limit_in_bytes"))
			cg.memsw = serr == nil
		} else {
			cg.pidsGroup = dir
		}
	}
	if cg.memGroup == "" && cg.pidsGroup == "" {
		why := strings.Join(append(v2errs, notes...), "; ")
		return nil, []string{"no cgroups (" + why + "): memory is capped per process (RLIMIT_AS), not in total, " +
			"and processes per slot uid (RLIMIT_NPROC)"}
	}
	if err := cg.makeSlots(slots); err != nil {
		cg.remove(slots)
		return nil, []string{"no cgroups: " + err.Error()}
	}
	var out []string
	if cg.memGroup == "" {
		out = append(out, "no memory cgroup: memory is capped per process (RLIMIT_AS), not in total")
	}
	if cg.pidsGroup == "" {
		out = append(out, "no pids cgroup: processes are capped per slot uid (RLIMIT_NPROC)")
	}
	return cg, out
}

func uniq(s ...string) []string {
	var out []string
	for _, x := range s {
		dup := false
		for _, y := range out {
			dup = dup || x == y
		}
		if !dup {
			out = append(out, x)
		}
	}
	return out
}

func hasWord(list, w string) bool {
	for _, f := range strings.Fields(list) {
		if f == w {
			return true
		}
	}
	return false
}

// makeV2Group makes parent/name with the memory and pids controllers enabled for its children.
func makeV2Group(parent, name string) (string, error) {
	ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
	if err != nil {
		return "", fmt.Errorf("cgroup v2 at %s: %w", parent, err)
	}
	if !hasWord(string(ctl), "memory") || !hasWord(string(ctl), "pids") {
		return "", fmt.Errorf("cgroup v2 at %s: memory and pids controllers not available (%q)", parent, strings.TrimSpace(string(ctl)))
	}
	sweepStale(parent)
	sub, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if !hasWord(string(sub), "memory") || !hasWord(string(sub), "pids") {
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
			return "", fmt.Errorf("cgroup v2 at %s: enable memory and pids: %w", parent, err)
		}
	}
	g := filepath.Join(parent, name)
	if err := os.Mkdir(g, 0o755); err != nil {
		return "", fmt.Errorf("cgroup v2: %w", err)
	}
	if err := os.WriteFile(filepath.Join(g, "cgroup.subtree_control"), []byte("+memory +pids"), 0); err != nil {
		os.Remove(g)
		return "", fmt.Errorf("cgroup v2 at %s: enable memory and pids: %w", g, err)
	}
	if err := os.Mkdir(filepath.Join(g, "slot-probe"), 0o755); err != nil {
		os.Remove(g)
		return "", fmt.Errorf("cgroup v2: %w", err)
	}
	return g, nil
}

// makeV1Group makes name under this process's own group of the v1 hierarchy that has controller ctl.
func makeV1Group(mounts []mountInfo, own map[string]string, ctl, name string) (string, error) {
	for _, m := range mounts {
		if m.fstype != "cgroup" || !hasWord(strings.ReplaceAll(m.opts, ",", " "), ctl) {
			continue
		}
		parent := filepath.Join(m.point, own[ctl])
		sweepStale(parent)
		g := filepath.Join(parent, name)
		if err := os.Mkdir(g, 0o755); err != nil {
			return "", fmt.Errorf("cgroup v1 %s: %w", ctl, err)
		}
		return g, nil
	}
	return "", fmt.Errorf("no %s cgroup controller mounted", ctl)
}

func (cg *cgroups) makeSlots(slots []*slot) error {
	for i, sl := range slots {
		sc := &slotCgroup{}
		for _, g := range uniq(cg.memGroup, cg.pidsGroup) {
			if g == "" {
				continue
			}
			d := filepath.Join(g, fmt.Sprintf("slot-%d", i))
			if err := os.Mkdir(d, 0o755); err != nil {
				return fmt.Errorf("cgroup: %w", err)
			}
			if g == cg.memGroup {
				sc.mem = d
			}
			if g == cg.pidsGroup {
				sc.pids = d
			}
		}
		if cg.v2 && cg.swap {
			if err := os.WriteFile(filepath.Join(sc.mem, "memory.swap.max"), []byte("0"), 0); err != nil {
				return fmt.Errorf("cgroup: memory.swap.max: %w", err)
			}
		}
		if cg.v2 {
			// An out-of-memory kill takes the whole run, never one process of it.
			os.WriteFile(filepath.Join(sc.mem, "memory.oom.group"), []byte("1"), 0)
		}
		sl.cg = sc
	}
	return nil
}

// setLimits writes the memory and process caps of the next run (only when they changed).
func (cg *cgroups) setLimits(sc *slotCgroup, mem int64, pids int) error {
	if sc.mem != "" && mem != sc.memLimit {
		v := []byte(strconv.FormatInt(mem, 10))
		if cg.v2 {
			if err := os.WriteFile(filepath.Join(sc.mem, "memory.max"), v, 0); err != nil {
				return fmt.Errorf("cgroup memory.max: %w", err)
			}
		} else {
			// memsw (memory + swap) must stay >= the memory limit at every step.
			if cg.memsw {
				os.WriteFile(filepath.Join(sc.mem, "memory.memsw.limit_in_bytes"), []byte("-1"), 0)
			}
			if err := os.WriteFile(filepath.Join(sc.mem, "memory.limit_in_bytes"), v, 0); err != nil {
				return fmt.Errorf("cgroup memory.limit_in_bytes: %w", err)
			}
			if cg.memsw {
				if err := os.WriteFile(filepath.Join(sc.mem, "memory.memsw.limit_in_bytes"), v, 0); err != nil {
					return fmt.Errorf("cgroup memory.memsw.limit_in_bytes: %w", err)
				}
			}
		}
		sc.memLimit = mem
	}
	if sc.pids != "" && pids != sc.pidsLimit {
		if err := os.WriteFile(filepath.Join(sc.pids, "pids.max"), []byte(strconv.Itoa(pids)), 0); err != nil {
			return fmt.Errorf("cgroup pids.max: %w", err)
		}
		sc.pidsLimit = pids
	}
	return nil
}

// oomKills reads the memory controller's count of processes killed for memory.
func (cg *cgroups) oomKills(sc *slotCgroup) int64 {
	if sc.mem == "" {
		return 0
	}
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	b, _ := os.ReadFile(filepath.Join(sc.mem, file))
	sc2 := bufio.NewScanner(bytes.NewReader(b))
	for sc2.Scan() {
		if k, v, ok := strings.Cut(sc2.Text(), " "); ok && k == "oom_kill" {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// drain kills every process left in the slot's cgroups and waits until they are gone (at most 5 s).
func drainCgroup(dirs ...string) error {
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range dirs {
		if d == "" {
			continue
		}
		for {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					break
				}
				return err
			}
			pids := strings.Fields(string(b))
			if len(pids) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cgroup %s: %d processes survive SIGKILL", d, len(pids))
			}
			os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0) // v2, Linux 5.14+
			for _, p := range pids {
				if pid, err := strconv.Atoi(p); err == nil && pid > 0 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// remove drains and removes the slots' cgroups and the sandbox's groups.
func (cg *cgroups) remove(slots []*slot) {
	for _, sl := range slots {
		if sl.cg == nil {
			continue
		}
		drainCgroup(sl.cg.mem, sl.cg.pids)
		for _, d := range uniq(sl.cg.mem, sl.cg.pids) {
			if d != "" {
				os.Remove(d)
			}
		}
		sl.cg = nil
	}
	for _, g := range uniq(cg.memGroup, cg.pidsGroup) {
		if g != "" {
			removeGroup(g)
		}
	}
}

// removeGroup removes a sandbox group and its slot groups (after killing what is left in them).
func removeGroup(g string) {
	ents, _ := os.ReadDir(g)
	for _, e := range ents {
		if e.IsDir() {
			d := filepath.Join(g, e.Name())
			drainCgroup(d)
			os.Remove(d)
		}
	}
	os.Remove(g)
}

// sweepStale removes the groups that sandboxes of processes no longer alive left under parent.
func sweepStale(parent string) {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return
	}
	for _, e := range ents {
		if pid, ok := stalePID(e.Name(), cgroupPrefix); ok && e.IsDir() && !alive(pid) {
			removeGroup(filepath.Join(parent, e.Name()))
		}
	}
}

// stalePID parses prefix + "<pid>-..." names.
func stalePID(name, prefix string) (int, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return 0, false
	}
	p, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

func alive(pid int) bool {
	if pid == os.Getpid() {
		return true
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
