//go:build !linux

package engine

// availableMemory is unknown here (0): the default budget is fallbackMemoryBytes.
func availableMemory() int64 { return 0 }
