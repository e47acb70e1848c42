package datasets

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// RowFunc receives one row as JSON (an object for every format) with its 1-based position:
// the element index of a JSON array, the line number of a JSONL file, the row number of a parquet file.
// Returning an error stops the read; the error is wrapped with the file and position.
type RowFunc func(pos int, raw []byte) error

// ReadJSONArray streams the elements of a top-level JSON array one by one (a 465 MB file is never held whole).
func ReadJSONArray(r io.Reader, fn RowFunc) error {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("offset %d: %w", dec.InputOffset(), err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("offset 0: want a JSON array, got %v", tok)
	}
	for i := 1; dec.More(); i++ {
		var raw json.RawMessage
		off := dec.InputOffset()
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("element %d (offset %d): %w", i, off, err)
		}
		if err := fn(i, raw); err != nil {
			return fmt.Errorf("element %d: %w", i, err)
		}
	}
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("offset %d: unterminated array: %w", dec.InputOffset(), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("offset %d: trailing data after the array", dec.InputOffset())
	}
	return nil
}

// ReadJSONL streams a JSON-lines file: one JSON value per line, blank lines skipped, lines of any length.
func ReadJSONL(r io.Reader, fn RowFunc) error {
	br := bufio.NewReaderSize(r, 1<<20)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			b = bytes.TrimRight(b, "\r\n")
			if len(bytes.TrimSpace(b)) > 0 {
				if !json.Valid(b) {
					var v any
					jerr := json.Unmarshal(b, &v)
					return fmt.Errorf("line %d: invalid JSON: %v", line, jerr)
				}
				if ferr := fn(line, b); ferr != nil {
					return fmt.Errorf("line %d: %w", line, ferr)
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

// ReadParquet streams the rows of a parquet file as JSON objects keyed by top-level column name.
// Flat schemas only (every benchmark file is flat); repeated or nested columns are an error.
func ReadParquet(r io.ReaderAt, size int64, fn RowFunc) (err error) {
	defer func() {
		// parquet-go can panic on corrupt input; a bad file must be an error, never a crash.
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt parquet: %v", p)
		}
	}()
	f, err := parquet.OpenFile(r, size)
	if err != nil {
		return fmt.Errorf("open parquet: %w", err)
	}
	cols := f.Schema().Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		if len(c) != 1 {
			return fmt.Errorf("column %q: nested columns are not supported", strings.Join(c, "."))
		}
		names[i] = c[0]
	}
	rd := parquet.NewReader(f)
	defer rd.Close()
	buf := make([]parquet.Row, 16)
	pos := 0
	for {
		n, rerr := rd.ReadRows(buf)
		for _, row := range buf[:n] {
			pos++
			obj := make(map[string]any, len(names))
			for _, v := range row {
				c := v.Column()
				if c < 0 || c >= len(names) {
					return fmt.Errorf("row %d: value for unknown column %d", pos, c)
				}
				if _, dup := obj[names[c]]; dup {
					return fmt.Errorf("row %d: column %q is repeated (not supported)", pos, names[c])
				}
				obj[names[c]] = parquetValue(v)
			}
			raw, jerr := json.Marshal(obj)
			if jerr != nil {
				return fmt.Errorf("row %d: %w", pos, jerr)
			}
			if ferr := fn(pos, raw); ferr != nil {
				return fmt.Errorf("row %d: %w", pos, ferr)
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("row %d: %w", pos+1, rerr)
		}
		if n == 0 {
			return fmt.Errorf("row %d: reader made no progress", pos+1)
		}
	}
}

func parquetValue(v parquet.Value) any {
	if v.IsNull() {
		return nil
	}
	switch v.Kind() {
	case parquet.Boolean:
		return v.Boolean()
	case parquet.Int32:
		return v.Int32()
	case parquet.Int64:
		return v.Int64()
	case parquet.Float:
		return v.Float()
	case parquet.Double:
		return v.Double()
	case parquet.ByteArray, parquet.FixedLenByteArray:
		return string(v.ByteArray())
	default:
		return v.String()
	}
}

// FormatOf returns the format of a file from its extension (json, jsonl or parquet).
func FormatOf(name string) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return "json", nil
	case ".jsonl", ".ndjson":
		return "jsonl", nil
	case ".parquet":
		return "parquet", nil
	}
	return "", fmt.Errorf("%s: unknown format (want .json, .jsonl or .parquet)", name)
}

// ReadFile streams the rows of a local file in the given format ("" = from the extension).
// Errors name the file and the element, line or row.
func ReadFile(name, format string, fn RowFunc) error {
	if format == "" {
		var err error
		if format, err = FormatOf(name); err != nil {
			return err
		}
	}
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	switch format {
	case "json":
		err = ReadJSONArray(f, fn)
	case "jsonl":
		err = ReadJSONL(f, fn)
	case "parquet":
		st, serr := f.Stat()
		if serr != nil {
			return serr
		}
		err = ReadParquet(f, st.Size(), fn)
	default:
		return fmt.Errorf("%s: unknown format %q", name, format)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
