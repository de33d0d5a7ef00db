package runner

import (
	"strings"
	"unicode/utf8"

	"github.com/kfn-dev/kfn/internal/contract"
)

// Markers before stdout and stderr the runner cut to contract.MaxOutputBytes.
var (
	stdoutTruncatedPrefix = contract.LogsTruncated(contract.MaxOutputBytes)
	stderrTruncatedPrefix = contract.ErrorsTruncated(contract.MaxOutputBytes)
)

// tailBuffer is an io.Writer that keeps only the last limit bytes written to
// it, so that arbitrarily long output is captured in bounded memory.
type tailBuffer struct {
	limit int
	buf   []byte // grows up to limit, then is used as a ring
	start int    // index of the oldest byte once buf is full
	total int64  // bytes written, kept or not
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	t.total += int64(n)
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		t.start = 0
		return n, nil
	}
	if room := t.limit - len(t.buf); room > 0 {
		k := min(room, len(p))
		t.buf = append(t.buf, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(t.buf[t.start:], p)
		p = p[k:]
		t.start = (t.start + k) % t.limit
	}
	return n, nil
}

// Bytes returns the kept bytes, oldest first.
func (t *tailBuffer) Bytes() []byte {
	out := make([]byte, 0, len(t.buf))
	out = append(out, t.buf[t.start:]...)
	return append(out, t.buf[:t.start]...)
}

// Truncated reports whether bytes were dropped.
func (t *tailBuffer) Truncated() bool {
	return t.total > int64(len(t.buf))
}

// keepTail turns captured output into the text of a Result: valid UTF-8 of
// at most contract.MaxOutputBytes. Output that was truncated already, or that
// grows past the cap when made valid, keeps its end (the most useful part of
// logs) behind prefix; cut reports that.
func keepTail(raw []byte, truncated bool, prefix string) (text string, cut bool) {
	text = strings.ToValidUTF8(string(raw), "\uFFFD")
	if !truncated && len(text) <= contract.MaxOutputBytes {
		return text, false
	}
	start := max(0, len(text)-(contract.MaxOutputBytes-len(prefix)))
	for start < len(text) && !utf8.RuneStart(text[start]) {
		start++
	}
	return prefix + text[start:], true
}

// keepHead turns a response body into the text of a Result: valid UTF-8 of at
// most contract.MaxOutputBytes, keeping the beginning as Appwrite 1.0 does;
// cut reports whether the end was dropped.
func keepHead(raw []byte) (text string, cut bool) {
	text = strings.ToValidUTF8(string(raw), "\uFFFD")
	if len(text) <= contract.MaxOutputBytes {
		return text, false
	}
	end := contract.MaxOutputBytes
	for end > 0 && !utf8.RuneStart(text[end]) {
		end--
	}
	return text[:end], true
}

// appendLines appends each line to out, on a line of its own.
func appendLines(out []byte, lines ...string) []byte {
	for _, line := range lines {
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, line...)
		out = append(out, '\n')
	}
	return out
}
