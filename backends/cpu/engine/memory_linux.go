package engine

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// availableMemory is the physical memory, or the cgroup v2 (then v1) memory limit when lower; 0 if unknown.
func availableMemory() int64 {
	var si syscall.Sysinfo_t
	var n int64
	if syscall.Sysinfo(&si) == nil {
		n = int64(si.Totalram) * int64(si.Unit)
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if lim, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && lim > 0 && (n == 0 || lim < n) {
			n = lim
		}
	}
	return n
}
