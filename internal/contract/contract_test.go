package contract

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidHeaderName(t *testing.T) {
	for name, want := range map[string]bool{
		"content-type": true, "X-Custom-1": true, "a": true, "9": true,
		"": false, "-a": false, "a-": false, "-": false, "a_b": false, "a b": false, "é": false, "a:b": false,
	} {
		if got := ValidHeaderName(name); got != want {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestTruncatedMarkersStateTheLimit(t *testing.T) {
	for _, marker := range []string{LogsTruncated(MaxOutputBytes), ErrorsTruncated(MaxOutputBytes)} {
		if !strings.Contains(marker, strconv.Itoa(MaxOutputBytes)) || !strings.HasSuffix(marker, "\n") {
			t.Errorf("marker %q does not state the limit on a line of its own", marker)
		}
	}
}

func TestValidHeaderValue(t *testing.T) {
	for value, want := range map[string]bool{
		"": true, "application/json": true, "a\tb": true, "<b>é</b>": true,
		"a\r\nx-injected: 1": false, "a\nb": false, "nul\x00": false, "del\x7f": false, "bad\xff": false,
	} {
		if got := ValidHeaderValue(value); got != want {
			t.Errorf("ValidHeaderValue(%q) = %v, want %v", value, got, want)
		}
	}
}
