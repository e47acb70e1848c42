package oaiclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLine is the default bound on one SSE line (1 MiB): a longer line is an error, never an allocation.
const DefaultMaxLine = 1 << 20

// ErrLineTooLong is returned (wrapped) when an SSE line exceeds the reader's bound.
var ErrLineTooLong = errors.New("sse: line too long")

// Event is one server-sent event: its type ("" for the default "message") and its data lines joined by "\n".
type Event struct {
	Type string
	Data string
}

// SSEReader reads server-sent events (https://html.spec.whatwg.org/multipage/server-sent-events.html)
// from a stream, with a bound on the length of one line.
type SSEReader struct {
	r       *bufio.Reader
	maxLine int
	line    int
}

// NewSSEReader returns a reader over r that refuses lines longer than maxLine bytes (DefaultMaxLine if maxLine <= 0).
func NewSSEReader(r io.Reader, maxLine int) *SSEReader {
	if maxLine <= 0 {
		maxLine = DefaultMaxLine
	}
	size := 64 << 10
	if size > maxLine {
		size = maxLine + 1
	}
	return &SSEReader{r: bufio.NewReaderSize(r, size), maxLine: maxLine}
}

// readLine returns the next line without its terminator (LF, CRLF or CR-less LF). It returns io.EOF at a clean
// end of input, io.ErrUnexpectedEOF when the input ends inside a line, and ErrLineTooLong past the bound.
func (s *SSEReader) readLine() ([]byte, error) {
	var buf []byte
	for {
		frag, err := s.r.ReadSlice('\n')
		if len(buf)+len(frag) > s.maxLine+2 { // +2: room for the CRLF terminator
			return nil, fmt.Errorf("%w: line %d exceeds %d bytes", ErrLineTooLong, s.line+1, s.maxLine)
		}
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		}
		if err != nil {
			return nil, err
		}
		s.line++
		buf = bytes.TrimSuffix(buf[:len(buf)-1], []byte("\r"))
		if len(buf) > s.maxLine {
			return nil, fmt.Errorf("%w: line %d exceeds %d bytes", ErrLineTooLong, s.line, s.maxLine)
		}
		return buf, nil
	}
}

// Next returns the next event. Comment lines (":" prefix) and unknown fields are skipped. At the end of input it
// returns io.EOF if no event was in progress and io.ErrUnexpectedEOF if the stream was cut inside an event or a line.
func (s *SSEReader) Next() (Event, error) {
	var ev Event
	var data []byte
	var have bool
	nData := 0
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && have {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		if len(line) == 0 {
			if !have {
				continue
			}
			ev.Data = string(data)
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if nData > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
			nData++
			have = true
		case "event":
			ev.Type = string(value)
			have = true
		}
	}
}

// Line is the number of lines read so far (for error messages).
func (s *SSEReader) Line() int { return s.line }
