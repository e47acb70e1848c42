package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// UIDBase is the first of the uids the sandbox reserves for its slots (as root). The range holds no real users;
// each uid is taken with an flock on a file in os.TempDir()/snapeval-sandbox-uids, so that concurrent snapeval
// processes (or test binaries) never share a uid, and a crashed process releases its uids automatically.
const UIDBase = 1_900_000_000

const uidRange = 4096

type slot struct {
	uid  int
	lock *os.File
}

type reserved struct {
	uid  int
	lock *os.File
}

func reserveUIDs(n int) ([]reserved, error) {
	dir := filepath.Join(os.TempDir(), "snapeval-sandbox-uids")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sandbox: uid locks: %w", err)
	}
	var out []reserved
	for u := UIDBase; u < UIDBase+uidRange && len(out) < n; u++ {
		f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(u)+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			for _, r := range out {
				r.lock.Close()
			}
			return nil, fmt.Errorf("sandbox: uid locks: %w", err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		// A previous holder may have crashed with processes left: clear the uid before use.
		killUID(u)
		out = append(out, reserved{uid: u, lock: f})
	}
	if len(out) < n {
		for _, r := range out {
			r.lock.Close()
		}
		return nil, fmt.Errorf("sandbox: could only reserve %d of %d sandbox uids from %d", len(out), n, UIDBase)
	}
	return out, nil
}
