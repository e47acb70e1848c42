package reports

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/snapeval/snapeval/internal/atomicfile"
)

// Files are the report files WriteFiles writes, in order: the Markdown and CSV report, the accuracy-versus-budget
// plot and the accuracy-versus-KV-bytes plot.
var Files = []string{"report.md", "report.csv", "report.svg", "report.png", "report-kv.svg", "report-kv.png"}

// WriteFiles writes report.md, report.csv, report.svg, report.png, report-kv.svg and report-kv.png into dir
// (created if needed), each atomically (a temporary file renamed into place), and returns their paths. A report
// with RULER needle records also gets the heat maps ruler-depth.png and ruler-depth.svg.
func WriteFiles(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	writers := []func(io.Writer, *Report) error{WriteMarkdown, WriteCSV, WriteSVG, WritePNG, WriteKVSVG, WriteKVPNG}
	names := Files
	if len(r.depthGrids()) > 0 {
		writers = append(writers, WriteHeatmapSVG, WriteHeatmapPNG)
		names = append(append([]string{}, Files...), HeatmapSVG, HeatmapPNG)
	}
	var paths []string
	for i, name := range names {
		var buf bytes.Buffer
		if err := writers[i](&buf, r); err != nil {
			return paths, fmt.Errorf("%s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		if err := atomicfile.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, path)
	}
	return paths, nil
}
