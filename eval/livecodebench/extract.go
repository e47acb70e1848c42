package livecodebench

import "strings"

// ExtractCode is the official extract_code for chat models: split on "\n"; lines containing three backticks
// anywhere are fences; with fewer than two fences the program is empty, else it is the lines strictly between
// the last two fences.
func ExtractCode(output string) string {
	lines := strings.Split(output, "\n")
	var fences []int
	for i, l := range lines {
		if strings.Contains(l, "```") {
			fences = append(fences, i)
		}
	}
	if len(fences) < 2 {
		return ""
	}
	return strings.Join(lines[fences[len(fences)-2]+1:fences[len(fences)-1]], "\n")
}
