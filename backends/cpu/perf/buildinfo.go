package perf

import "runtime/debug"

// buildSetting returns a build setting of the running binary (such as GOAMD64).
func buildSetting(key string) (string, bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value, true
		}
	}
	return "", false
}
