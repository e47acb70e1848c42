// Package sandbox runs untrusted Python programs (model-written solutions) and grades them against test cases.
//
// Every run (one test) is a fresh python3 process. A small trusted driver (driver.py, run with `python3 -I -B -c`)
// confines its own process before any untrusted code runs, then runs the program in it. As root the process is
// born in new PID, mount, network, IPC and UTS namespaces and the driver:
//
//   - joins the slot's cgroups (memory and pids caps on the whole run: every process it starts counts),
//   - replaces the file system with a private read-only root: the interpreter's directories (/usr, /etc, the
//     interpreter's prefix) bound read-only and nosuid, its own /proc, five device nodes, and one size-capped
//     tmpfs holding /tmp and /dev/shm, the only writable places (nothing it writes reaches the host's disk),
//   - sets rlimits (CPU, address space, processes, open files, file size, no core files),
//   - drops to an unprivileged uid reserved for the slot, sets no_new_privs, and installs a seccomp filter
//     that refuses new user namespaces (and every other namespace, mount, ptrace, keyring, bpf and perf call),
//   - closes every descriptor but stdin, stdout, stderr and the answer channel.
//
// The expected outputs never enter the sandboxed process: the driver reports only what the program answered
// (its stdout, or the encoded return value of the called function), and the harness compares that answer with
// the expected value itself (check.go). A program can write to its own answer channel, but all that channel can
// carry is an answer, so forging it is just answering. Setup failures travel on a separate descriptor that is
// closed before the program runs, so a program cannot turn its failure into a harness error either.
//
// When the run's first process exits, the kernel kills every other process of its PID namespace before the
// harness's wait returns, so nothing of a run outlives it (sleeping grandchildren, daemons, fork bombs); the
// slot's uid, cgroups and limits are then clean for the next run.
//
// Without root (or where the kernel refuses the namespaces) the sandbox is degraded, and says so: Sandbox.Isolation
// lists what is missing, and every Result and Verdict carries the list. The README's security section lists what is
// contained in each mode and what is not.
package sandbox

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

//go:embed driver.py
var driverSource string

// Limits bound one run. Zero fields take the defaults of DefaultLimits.
type Limits struct {
	// Wall is the wall-clock limit of one run (one test); the run is killed when it passes.
	Wall time.Duration
	// CPU is RLIMIT_CPU (rounded up to whole seconds; default Wall + 1 s).
	CPU time.Duration
	// AddressSpace is RLIMIT_AS in bytes (per process).
	AddressSpace int64
	// Memory caps the memory of all the run's processes together (cgroup memory.max; no swap). Without a memory
	// cgroup only AddressSpace (per process) holds.
	Memory int64
	// Processes caps the run's processes: cgroup pids.max, and RLIMIT_NPROC of the slot's uid (as root).
	Processes int
	// OpenFiles is RLIMIT_NOFILE.
	OpenFiles int
	// FileSize is RLIMIT_FSIZE in bytes.
	FileSize int64
	// Disk is the size of the private tmpfs that holds /tmp and /dev/shm, everything the run can write.
	Disk int64
	// Output caps the captured stdout, stderr and answer each; a program that writes more is killed.
	Output int64
}

// DefaultLimits are the limits of the official LiveCodeBench protocol (6 s per test) plus resource caps.
var DefaultLimits = Limits{
	Wall:         6 * time.Second,
	AddressSpace: 4 << 30,
	Memory:       4 << 30,
	Processes:    64,
	OpenFiles:    256,
	FileSize:     64 << 20,
	Disk:         64 << 20,
	Output:       64 << 20,
}

// merge returns base with the non-zero fields of l; a Wall without a CPU limit gives CPU = Wall + 1 s.
func (l Limits) merge(base Limits) Limits {
	if l.Wall > 0 {
		base.Wall = l.Wall
		if l.CPU == 0 {
			base.CPU = l.Wall + time.Second
		}
	}
	if base.CPU == 0 {
		base.CPU = base.Wall + time.Second
	}
	set64 := func(dst *int64, v int64) {
		if v > 0 {
			*dst = v
		}
	}
	if l.CPU > 0 {
		base.CPU = l.CPU
	}
	set64(&base.AddressSpace, l.AddressSpace)
	set64(&base.Memory, l.Memory)
	set64(&base.FileSize, l.FileSize)
	set64(&base.Disk, l.Disk)
	set64(&base.Output, l.Output)
	if l.Processes > 0 {
		base.Processes = l.Processes
	}
	if l.OpenFiles > 0 {
		base.OpenFiles = l.OpenFiles
	}
	return base
}

// Config configures a Sandbox.
type Config struct {
	// Python is the interpreter; default: the real executable behind "python3" on PATH (pyenv shims resolved) when
	// it lives under /usr, else /usr/bin/python3 or /usr/local/bin/python3, else the one on PATH (the sandbox
	// binds its prefix read-only).
	Python string
	// Limits are the per-run limits (zero fields: DefaultLimits).
	Limits Limits
	// Parallel is the number of programs run at once (default runtime.NumCPU()).
	Parallel int
	// TempDir is where the per-run directories of the degraded mode are made (default os.TempDir()).
	TempDir string
}

// Sandbox runs programs. It is safe for concurrent use; at most Parallel programs run at once. Close it.
type Sandbox struct {
	python    string
	binds     []string // read-only directories of the private root (with namespaces)
	limits    Limits
	root      bool
	ns        bool // namespaces and the private root
	cg        *cgroups
	tmp       string
	baseMu    sync.Mutex
	base      string // per-run directories without a private root ("" until needed; under baseMu)
	isolation []string
	slots     chan *slot
	all       []*slot
	closeOnce sync.Once
}

var openSandboxes atomic.Int64

// Open reports how many sandboxes of this process are open (made by New and not yet closed).
func Open() int { return int(openSandboxes.Load()) }

// New prepares a sandbox: it finds the interpreter, reserves one uid and cgroup per parallel slot (as root) and
// probes which isolation the OS allows. Not as root, it makes the calling process non-dumpable
// (prctl PR_SET_DUMPABLE 0), since the programs it runs share its uid.
func New(cfg Config) (*Sandbox, error) {
	n := cfg.Parallel
	if n <= 0 {
		n = runtime.NumCPU()
	}
	s := &Sandbox{limits: cfg.Limits.merge(DefaultLimits), root: os.Geteuid() == 0, tmp: cfg.TempDir}
	if s.tmp == "" {
		s.tmp = os.TempDir()
	}
	openSandboxes.Add(1)
	if s.root {
		slots, err := reserveUIDs(n)
		if err != nil {
			openSandboxes.Add(-1)
			return nil, err
		}
		s.all = slots
		var notes []string
		s.cg, notes = setupCgroups(s.all)
		s.isolation = append(s.isolation, notes...)
	} else {
		for i := 0; i < n; i++ {
			s.all = append(s.all, &slot{})
		}
		// Programs run as this process's user: without this, they could read its memory (the expected outputs)
		// through /proc/<pid>/mem. It also keeps same-user debuggers out of this process.
		if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
			s.isolation = append(s.isolation, "not root: harness memory readable by the program: "+err.Error())
		}
		s.isolation = append(s.isolation,
			"not root: no namespaces (the program sees the host's processes and files and can reach the network), "+
				"no private /tmp, no uid drop (it runs as the harness's user: it can read and write that user's "+
				"files and signal its processes), no cgroups (memory is capped per process, not in total; no "+
				"process cap)")
	}
	s.slots = make(chan *slot, n)
	for _, sl := range s.all {
		s.slots <- sl
	}
	if err := s.findPython(cfg.Python); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Isolation lists what isolation is missing on this machine (empty when fully isolated).
func (s *Sandbox) Isolation() []string { return append([]string(nil), s.isolation...) }

// Python is the interpreter in use.
func (s *Sandbox) Python() string { return s.python }

// Close kills whatever is left, releases the reserved uids and cgroups and removes the sandbox's directories.
func (s *Sandbox) Close() error {
	s.closeOnce.Do(func() {
		for _, sl := range s.all {
			if sl.uid != 0 {
				killUID(sl.uid)
			}
			if sl.lock != nil {
				sl.lock.Close()
			}
		}
		if s.cg != nil {
			s.cg.remove(s.all)
		}
		s.baseMu.Lock()
		if s.base != "" {
			os.RemoveAll(s.base)
		}
		s.baseMu.Unlock()
		openSandboxes.Add(-1)
	})
	return nil
}

// baseDir makes the directory of the per-run directories (degraded mode only), removing the ones that sandboxes of
// processes no longer alive left behind.
func (s *Sandbox) baseDir() (string, error) {
	s.baseMu.Lock()
	defer s.baseMu.Unlock()
	if s.base != "" {
		return s.base, nil
	}
	if ents, err := os.ReadDir(s.tmp); err == nil {
		for _, e := range ents {
			if pid, ok := stalePID(e.Name(), "snapeval-sandbox-"); ok && !alive(pid) {
				os.RemoveAll(filepath.Join(s.tmp, e.Name()))
			}
		}
	}
	base, err := os.MkdirTemp(s.tmp, fmt.Sprintf("snapeval-sandbox-%d-", os.Getpid()))
	if err != nil {
		return "", fmt.Errorf("sandbox: %w", err)
	}
	// 0711: slot uids may traverse to their own directory, but not list or write here.
	if err := os.Chmod(base, 0o711); err != nil {
		os.RemoveAll(base)
		return "", fmt.Errorf("sandbox: %w", err)
	}
	s.base = base
	return base, nil
}

// standardBinds are bound read-only into the private root when they exist (symbolic links are copied).
var standardBinds = []string{"/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

const layoutScript = `import sys, os, json
maps = set()
with open("/proc/self/maps") as f:
    for line in f:
        p = line.split()[-1]
        if p.startswith("/"):
            maps.add(os.path.dirname(p))
print(json.dumps({"exe": os.path.realpath(sys.executable), "prefix": sys.base_prefix,
    "paths": [p for p in sys.path if os.path.isdir(p)] + sorted(maps)}))`

// layout lists the directories the interpreter needs beyond standardBinds (its prefix when it lives elsewhere).
func layout(python string) ([]string, error) {
	out, err := exec.Command(python, "-I", "-c", layoutScript).Output()
	if err != nil {
		return nil, err
	}
	var l struct {
		Exe, Prefix string
		Paths       []string
	}
	if err := json.Unmarshal(out, &l); err != nil {
		return nil, fmt.Errorf("interpreter layout: %w", err)
	}
	under := func(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	binds := append([]string(nil), standardBinds...)
	for _, p := range append([]string{filepath.Dir(l.Exe)}, l.Paths...) {
		p = filepath.Clean(p)
		covered := false
		for _, b := range binds {
			covered = covered || under(p, b)
		}
		if covered || !filepath.IsAbs(p) {
			continue
		}
		if pre := filepath.Clean(l.Prefix); strings.Count(pre, "/") >= 2 && under(p, pre) {
			p = pre
		}
		binds = append(binds, p)
	}
	return binds, nil
}

func (s *Sandbox) findPython(explicit string) error {
	var cands []string
	if explicit != "" {
		cands = []string{explicit}
	} else {
		cands = []string{"/usr/bin/python3", "/usr/local/bin/python3"}
		if p, err := exec.LookPath("python3"); err == nil {
			// Resolve shims (pyenv, asdf) to the real interpreter: the sandbox runs with an empty environment.
			out, err := exec.Command(p, "-c", "import sys; print(sys.executable)").Output()
			if p := string(bytes.TrimSpace(out)); err == nil && p != "" {
				if strings.HasPrefix(p, "/usr/") {
					cands = append([]string{p}, cands...)
				} else {
					cands = append(cands, p) // outside the system directories: its prefix is bound read-only
				}
			}
		}
	}
	var errs []string
	if s.root {
		// First choice: the full sandbox, with any interpreter that works in it.
		for _, c := range cands {
			binds, err := layout(c)
			if err == nil {
				s.python, s.binds, s.ns = c, binds, true
				if err = s.probe(); err == nil {
					return nil
				}
			}
			errs = append(errs, fmt.Sprintf("%s: %v", c, err))
		}
		s.ns, s.binds = false, nil
		s.isolation = append(s.isolation, "namespaces unavailable (no private file system, /proc or network; "+
			"processes that leave the process group are killed by uid): "+strings.Join(errs, "; "))
		errs = nil
	}
	for _, c := range cands {
		s.python = c
		err := s.probe()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Sprintf("%s: %v", c, err))
	}
	return fmt.Errorf("sandbox: no usable python3 (install the python3 package): %s", strings.Join(errs, "; "))
}

// probe runs the driver once in the current mode and adds what it found missing to the isolation notes.
func (s *Sandbox) probe() error {
	sl := <-s.slots
	defer func() { s.slots <- sl }()
	res, err := s.runIn(context.Background(), sl, Spec{Mode: "probe"})
	if err != nil {
		return err
	}
	if res.Status.Status != "ok" || res.ExitCode != 0 {
		return fmt.Errorf("probe failed: status %q, exit %d, stderr %q", res.Status.Status, res.ExitCode, truncate(string(res.Stderr), 300))
	}
	if s.ns && len(res.Notes) > 0 {
		return fmt.Errorf("probe: %s", strings.Join(res.Notes, "; "))
	}
	s.isolation = append(s.isolation, res.Notes...)
	return nil
}

// Spec is one run of the driver.
type Spec struct {
	// Mode is "stdin" (run Program as __main__ with Stdin on fd 0), "call" (call FuncName with CallInput) or "probe".
	Mode string
	// Program is the Python source.
	Program string
	// Stdin is the standard input (mode "stdin").
	Stdin string
	// FuncName and CallInput (newline-separated JSON arguments) are for mode "call".
	FuncName, CallInput string
	// NoPreamble skips the official harness's import preamble (and its recursion limit of 50000).
	NoPreamble bool
	// Limits override the sandbox's limits for this run (zero fields: the sandbox's).
	Limits Limits
}

// Status is what the program answered on its answer channel (the last line written there). It is the program's
// own word: "ok" (it finished; Value is its encoded return value in mode "call"), "runtime_error" or
// "compile_error" with Error. Anything else counts as a runtime error.
type Status struct {
	Status string          `json:"status"`
	Error  string          `json:"error"`
	Value  json.RawMessage `json:"value"`
}

// Result is the outcome of one run.
type Result struct {
	Status   Status
	ExitCode int
	// Signal names the signal that ended the process ("" if it exited).
	Signal string
	Stdout []byte
	Stderr []byte
	// TimedOut: the wall-clock limit passed. CPULimit: RLIMIT_CPU killed it. OutputLimit: it wrote too much.
	// MemoryLimit: the memory cgroup killed a process of the run.
	TimedOut, CPULimit, OutputLimit, MemoryLimit bool
	Wall, CPU                                    time.Duration
	// Notes are the probe's findings (mode "probe" only).
	Notes []string
	// Isolation lists the isolation this run lacked (see Sandbox.Isolation).
	Isolation []string
}

// Run runs one program to completion in a free slot.
func (s *Sandbox) Run(ctx context.Context, spec Spec) (Result, error) {
	var sl *slot
	select {
	case sl = <-s.slots:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	defer func() { s.slots <- sl }()
	return s.runIn(ctx, sl, spec)
}

// sealedMemfd returns a read-only, sealed in-memory file holding data (no trace on disk).
func sealedMemfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: memfd seals: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("sandbox: memfd: %w", err)
	}
	return f, nil
}

// answerCap bounds the answer channel beyond the Output limit's share: a return value larger than this (encoded)
// is a runtime error.
const answerCap = 16 << 20

func (s *Sandbox) runIn(ctx context.Context, sl *slot, spec Spec) (res Result, err error) {
	lim := spec.Limits.merge(s.limits)
	res.Isolation = s.Isolation()
	cpu := int64((lim.CPU + time.Second - 1) / time.Second)
	nproc := 0
	if s.root {
		nproc = lim.Processes
	}
	job := map[string]any{"mode": spec.Mode, "program": spec.Program, "func": spec.FuncName, "args": spec.CallInput,
		"preamble": !spec.NoPreamble, "uid": sl.uid, "deny_setsid": !s.ns,
		"limits": map[string]int64{"cpu": cpu, "as": lim.AddressSpace, "nproc": int64(nproc),
			"nofile": int64(lim.OpenFiles), "fsize": lim.FileSize}}
	dir := "/"
	if s.ns {
		job["fs"] = map[string]any{"binds": s.binds, "size": lim.Disk, "inodes": 16384}
	} else {
		base, err := s.baseDir()
		if err != nil {
			return res, err
		}
		if dir, err = os.MkdirTemp(base, "run-"); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
				err = fmt.Errorf("sandbox: cleanup: %w", rerr)
			}
		}()
		if sl.uid != 0 {
			if err := os.Chown(dir, sl.uid, sl.uid); err != nil {
				return res, fmt.Errorf("sandbox: %w", err)
			}
		}
		job["cwd"] = dir
	}
	if sl.cg != nil {
		if err := s.cg.setLimits(sl.cg, lim.Memory, lim.Processes); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
		job["cgroup_procs"] = sl.cg.procsFiles()
	}
	jobJSON, err := json.Marshal(job)
	if err != nil {
		return res, fmt.Errorf("sandbox: %w", err)
	}
	var files []*os.File // closed on return
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	jobFile, err := sealedMemfd("job", jobJSON)
	if err != nil {
		return res, err
	}
	files = append(files, jobFile)
	stdin, err := sealedMemfd("stdin", []byte(spec.Stdin))
	if err != nil {
		return res, err
	}
	files = append(files, stdin)
	var rd, wr [4]*os.File // stdout, stderr, answer, setup
	for i := range rd {
		if rd[i], wr[i], err = os.Pipe(); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
		files = append(files, rd[i], wr[i])
	}

	cmd := exec.Command(s.python, "-I", "-B", "-c", driverSource)
	cmd.Env = []string{} // empty, not inherited
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Stdout = wr[0]
	cmd.Stderr = wr[1]
	cmd.ExtraFiles = []*os.File{jobFile, wr[2], wr[3]} // fds 3, 4, 5
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if s.ns {
		attr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC |
			syscall.CLONE_NEWUTS
	}
	cmd.SysProcAttr = attr
	if sl.cg != nil {
		sl.cg.oomKills = s.cg.oomKills(sl.cg)
	}

	kill := func() {
		if cmd.Process != nil {
			// With a PID namespace, killing its first process kills all of it.
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Process.Kill()
		}
		if !s.ns && sl.uid != 0 {
			killUID(sl.uid)
		}
	}
	var overLimit, timedOut atomic.Bool
	capture := func(r *os.File, dst *bytes.Buffer, limit int64, wg *sync.WaitGroup) {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				if int64(dst.Len()+n) > limit {
					overLimit.Store(true)
					kill()
					return
				}
				dst.Write(buf[:n])
			}
			if rerr != nil {
				return
			}
		}
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("sandbox: start %s: %w", s.python, err)
	}
	for _, f := range wr {
		f.Close()
	}
	var stdout, stderr, answer, setup bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(4)
	go capture(rd[0], &stdout, lim.Output, &wg)
	go capture(rd[1], &stderr, lim.Output, &wg)
	go capture(rd[2], &answer, min(lim.Output, answerCap), &wg)
	go capture(rd[3], &setup, 1<<16, &wg)
	timer := time.AfterFunc(lim.Wall, func() {
		timedOut.Store(true)
		kill()
	})
	stopCtx := context.AfterFunc(ctx, kill)
	state, werr := cmd.Process.Wait()
	timer.Stop()
	stopCtx()
	res.Wall = time.Since(start)
	// The first process is gone; with a PID namespace so is every other. Without one, kill what is left (its
	// process group and, as root, every process of the slot's uid).
	if !s.ns {
		kill()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		// A descendant outside our reach (degraded mode) still holds a pipe: stop reading.
		for _, f := range rd {
			f.Close()
		}
		<-done
	}
	if sl.cg != nil {
		res.MemoryLimit = s.cg.oomKills(sl.cg) > sl.cg.oomKills
		if err := drainCgroup(sl.cg.mem, sl.cg.pids); err != nil {
			return res, fmt.Errorf("sandbox: %w", err)
		}
	}
	if werr != nil {
		return res, fmt.Errorf("sandbox: wait: %w", werr)
	}
	res.OutputLimit, res.TimedOut = overLimit.Load(), timedOut.Load()
	res.Stdout, res.Stderr = stdout.Bytes(), stderr.Bytes()
	if ru, ok := state.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ws, _ := state.Sys().(syscall.WaitStatus)
	res.ExitCode = ws.ExitStatus()
	if ws.Signaled() {
		res.Signal = ws.Signal().String()
		if ws.Signal() == syscall.SIGXCPU || (ws.Signal() == syscall.SIGKILL && res.CPU >= time.Duration(cpu)*time.Second-50*time.Millisecond) {
			res.CPULimit = true
		}
	}
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	// The setup channel is closed before the program runs: what it says is the driver's word, not the program's.
	var st struct {
		Status string   `json:"status"`
		Error  string   `json:"error"`
		Notes  []string `json:"notes"`
	}
	if line := bytes.TrimSpace(setup.Bytes()); len(line) == 0 || json.Unmarshal(line, &st) != nil || st.Status != "ready" {
		why := st.Error
		if why == "" {
			why = fmt.Sprintf("no word from the driver (exit %d, signal %q, timed out %v, stderr %q)", res.ExitCode,
				res.Signal, res.TimedOut, lastLines(string(res.Stderr), 3))
		}
		return res, fmt.Errorf("sandbox: driver setup failed: %s", why)
	}
	res.Notes = st.Notes
	// The answer channel is the program's: take its last line, whatever it is.
	if a := bytes.TrimSpace(answer.Bytes()); len(a) > 0 {
		if i := bytes.LastIndexByte(a, '\n'); i >= 0 {
			a = a[i+1:]
		}
		if jerr := json.Unmarshal(a, &res.Status); jerr != nil {
			res.Status = Status{Status: "bad_answer", Error: truncate(string(a), 200)}
		}
	}
	return res, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "...(truncated)..." + s[len(s)-n/2:]
}
