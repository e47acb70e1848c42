package sandbox

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// UIDBase is the first of the uids the sandbox reserves for its slots (as root). The range holds no real users.
// Each uid is taken by binding the abstract unix socket "@snapeval-sandbox-uid-<uid>": concurrent snapeval
// processes (or test binaries) in one network namespace never share a uid, a crashed process releases its uids
// with its sockets, and nothing is left on disk. (Versions before these sockets took 1_900_000_000 and up with
// lock files; the ranges are disjoint so that old and new binaries on one machine never share a uid.)
const UIDBase = 1_900_100_000

const uidRange = 4096

// slot is one program running at a time: its uid (as root), its cgroups and, without a private /tmp, its directory.
type slot struct {
	uid  int
	lock *net.UnixListener
	cg   *slotCgroup
}

func reserveUIDs(n int) ([]*slot, error) {
	var out []*slot
	release := func() {
		for _, s := range out {
			s.lock.Close()
		}
	}
	for u := UIDBase; u < UIDBase+uidRange && len(out) < n; u++ {
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: "@snapeval-sandbox-uid-" + strconv.Itoa(u), Net: "unix"})
		if err != nil {
			if isAddrInUse(err) {
				continue
			}
			release()
			return nil, fmt.Errorf("sandbox: reserve uid %d: %w", u, err)
		}
		// A previous holder may have crashed with processes left: clear the uid before use.
		killUID(u)
		out = append(out, &slot{uid: u, lock: l})
	}
	if len(out) < n {
		release()
		return nil, fmt.Errorf("sandbox: could only reserve %d of %d sandbox uids from %d", len(out), n, UIDBase)
	}
	return out, nil
}

func isAddrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// killUID SIGKILLs every process whose real, effective or saved uid is uid until none is left (at most 5 s).
func killUID(uid int) {
	want := strconv.Itoa(uid)
	deadline := time.Now().Add(5 * time.Second)
	for {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		found := false
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			b, err := os.ReadFile("/proc/" + e.Name() + "/status")
			if err != nil {
				continue
			}
			if statusField(b, "State") == "Z" {
				continue // a zombie: already dead, waiting for its parent
			}
			for _, id := range strings.Fields(statusField(b, "Uid")) {
				if id == want {
					found = true
					syscall.Kill(pid, syscall.SIGKILL)
					break
				}
			}
		}
		if !found || time.Now().After(deadline) {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// statusField returns the first letter of a /proc/<pid>/status field ("State") or all of it ("Uid").
func statusField(b []byte, name string) string {
	key := "\n" + name + ":\t"
	s := string(b)
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	rest := s[i+len(key):]
	if j := strings.IndexByte(rest, '\n'); j >= 0 {
		rest = rest[:j]
	}
	if name == "State" && len(rest) > 0 {
		return rest[:1]
	}
	return rest
}
