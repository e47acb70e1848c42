// Package snapeval holds the project files that the snapeval binary embeds; the tool itself lives in
// cmd/snapeval and the packages below it.
package snapeval

import _ "embed"

// DatasetsLock is the datasets.lock this binary was built with: what `snapeval data` and `snapeval run` check
// downloaded data against when no datasets.lock is found in the working directory, its parents or $SNAPEVAL_LOCK.
//
//go:embed datasets.lock
var DatasetsLock []byte
