/*
Copyright 2026 The kfn Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package runner

import (
	"strings"
	"unicode/utf8"
)

// Prefixes of truncated stdout and stderr. The number is MaxOutputBytes; the
// wording is Appwrite's.
const (
	stdoutTruncatedPrefix = "[WARNING] Logs truncated. The output exceeded 1000000 characters.\n"
	stderrTruncatedPrefix = "[WARNING] Errors truncated. The output exceeded 1000000 characters.\n"
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
// at most MaxOutputBytes. Output that was truncated already, or that grows
// past the cap when made valid, keeps its end (the most useful part of logs)
// behind prefix.
func keepTail(raw []byte, truncated bool, prefix string) string {
	text := strings.ToValidUTF8(string(raw), "\uFFFD")
	if !truncated && len(text) <= MaxOutputBytes {
		return text
	}
	start := max(0, len(text)-(MaxOutputBytes-len(prefix)))
	for start < len(text) && !utf8.RuneStart(text[start]) {
		start++
	}
	return prefix + text[start:]
}

// keepHead turns a response body into the text of a Result: valid UTF-8 of at
// most MaxOutputBytes, keeping the beginning as Appwrite 1.0 does.
func keepHead(raw []byte) string {
	text := strings.ToValidUTF8(string(raw), "\uFFFD")
	if len(text) <= MaxOutputBytes {
		return text
	}
	end := MaxOutputBytes
	for end > 0 && !utf8.RuneStart(text[end]) {
		end--
	}
	return text[:end]
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
