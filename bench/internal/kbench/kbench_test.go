package kbench

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP rest_client_requests_total Number of HTTP requests.
# TYPE rest_client_requests_total counter
rest_client_requests_total{code="200",host="10.96.0.1:443",method="GET"} 12
rest_client_requests_total{code="201",host="10.96.0.1:443",method="POST"} 3
rest_client_requests_total{code="200",host="10.96.0.1:443",method="PUT"} 4.5e+00
apiserver_request_total{code="201",component="apiserver",group="",resource="pods",subresource="",verb="CREATE",version="v1"} 7
weird{a="x\"y,z",b="2"} 1 1700000000
workqueue_depth 0
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("rest_client_requests_total", nil); got != 19.5 {
		t.Errorf("sum = %v", got)
	}
	by := m.By("rest_client_requests_total", "method")
	if by["POST"] != 3 || by["PUT"] != 4.5 {
		t.Errorf("by method = %v", by)
	}
	if got := m.By("apiserver_request_total", "verb", "group", "resource", "subresource"); got["CREATE||pods|"] != 7 {
		t.Errorf("by verb/group/resource = %v", got)
	}
	if got := m.Sum("weird", map[string]string{"a": `x"y,z`, "b": "2"}); got != 1 {
		t.Errorf("escaped label: %v", got)
	}
	if got := m.Sum("workqueue_depth", nil); got != 0 || len(m) != 6 {
		t.Errorf("samples = %d", len(m))
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for p, want := range map[float64]float64{50: 5, 90: 9, 99: 10, 100: 10, 1: 1} {
		if got := Percentile(xs, p); got != want {
			t.Errorf("p%v = %v, want %v", p, got, want)
		}
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("empty: want NaN")
	}
}

func TestCPU(t *testing.T) {
	busy0, err := MachineBusy()
	if err != nil {
		t.Fatal(err)
	}
	m := StartCPU(Proc{Name: "self", Find: func() (int, error) { return os.Getpid(), nil }})
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
	}
	if d, err := CPUTime(os.Getpid()); err != nil || d <= 0 {
		t.Errorf("CPUTime = %v, %v", d, err)
	}
	if busy, err := MachineBusy(); err != nil || busy < busy0 {
		t.Errorf("MachineBusy = %v, %v (before %v)", busy, err, busy0)
	}
	if s := m.Stop(); !strings.HasPrefix(s, "CPU in cores: self ") || strings.Contains(s, "?") {
		t.Errorf("Stop = %q", s)
	}
}
