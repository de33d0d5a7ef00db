package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kfn-dev/kfn/controllers"
)

// runnerBytes stands for the runner binary the init container copies.
const runnerBytes = 45 << 20

// The manager's flags bound every function pod: by default, and as set.
func TestManagerFlagsBoundFunctionPods(t *testing.T) {
	quantity := func(q *resource.Quantity) string {
		if q == nil {
			return "unbounded"
		}
		return q.String()
	}
	for name, tc := range map[string]struct {
		args             []string
		requests, limits corev1.ResourceList
		tmp, runnerDir   string
		wantDelivery     controllers.RunnerDelivery
	}{
		"the defaults": {
			requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			tmp:      "256Mi", runnerDir: "128Mi", wantDelivery: controllers.DeliverByInitContainer,
		},
		"set as YAML, unbounded /tmp": {
			args:     []string{"--default-function-resources=requests: {cpu: 100m}\nlimits: {memory: 1Gi, ephemeral-storage: 2Gi}", "--function-tmp-size-limit=0", "--function-runner-dir-size-limit=1Gi"},
			requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("2Gi")},
			tmp:      "unbounded", runnerDir: "1Gi", wantDelivery: controllers.DeliverByInitContainer,
		},
		"none at all": {
			args: []string{"--default-function-resources={}", "--function-tmp-size-limit=0", "--function-runner-dir-size-limit=0"},
			tmp:  "unbounded", runnerDir: "unbounded", wantDelivery: controllers.DeliverByInitContainer,
		},
		"a small runner directory is enough when the runner is not copied": {
			args:     []string{"--runner-delivery=image-volume", "--function-runner-dir-size-limit=16Mi"},
			requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
			limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			tmp:      "256Mi", runnerDir: "16Mi", wantDelivery: controllers.DeliverByImageVolume,
		},
	} {
		t.Run(name, func(t *testing.T) {
			o, _, err := parseManagerFlags(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			jobs, err := jobOptions(o, runnerBytes)
			if err != nil {
				t.Fatal(err)
			}
			d := jobs.Defaults
			if !equalLists(d.Resources.Requests, tc.requests) || !equalLists(d.Resources.Limits, tc.limits) {
				t.Errorf("resources %v, want requests %v and limits %v", d.Resources, tc.requests, tc.limits)
			}
			if quantity(d.TmpSizeLimit) != tc.tmp || quantity(d.RunnerDirSizeLimit) != tc.runnerDir {
				t.Errorf("size limits /tmp %s, /kfn %s; want %s, %s", quantity(d.TmpSizeLimit), quantity(d.RunnerDirSizeLimit), tc.tmp, tc.runnerDir)
			}
			if jobs.RunnerDelivery != tc.wantDelivery {
				t.Errorf("delivery %s, want %s", jobs.RunnerDelivery, tc.wantDelivery)
			}
		})
	}
}

// Bad bounds stop the manager at start-up, naming the flag, rather than
// making every Job invalid or every run evicted.
func TestManagerRefusesBadFunctionBounds(t *testing.T) {
	for args, want := range map[string]string{
		"--default-function-resources={requests: {memory: 1Gi}, limits: {memory: 256Mi}}": "--default-function-resources: the memory request 1Gi exceeds its limit 256Mi",
		"--default-function-resources={limits: {nvidia.com/gpu: 1}}":                      `--default-function-resources: resource "nvidia.com/gpu" cannot be defaulted`,
		"--default-function-resources=[cpu]":                                              "--default-function-resources:",
		"--function-tmp-size-limit=lots":                                                  "--function-tmp-size-limit:",
		"--function-runner-dir-size-limit=-1Mi":                                           "--function-runner-dir-size-limit: -1Mi is negative",
		"--function-runner-dir-size-limit=48Mi":                                           "--function-runner-dir-size-limit: 48Mi cannot hold the runner (47185920 bytes)",
		"--runner-delivery=teleport":                                                      "--runner-delivery must be",
	} {
		o, _, err := parseManagerFlags([]string{args})
		if err != nil {
			t.Fatalf("%s: %v", args, err)
		}
		if _, err := jobOptions(o, runnerBytes); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one containing %q", args, err, want)
		}
	}
}

func TestManagerNamespaceCapFlag(t *testing.T) {
	for args, want := range map[string]int{"": 100, "--max-running-per-namespace=0": 0, "--max-running-per-namespace=40": 40} {
		o, _, err := parseManagerFlags(strings.Fields(args))
		if err != nil || o.maxRunningPerNamespace != want {
			t.Errorf("%q: cap %d, error %v; want %d", args, o.maxRunningPerNamespace, err, want)
		}
	}
	for _, bad := range []string{"-1", "many"} {
		if _, _, err := parseManagerFlags([]string{"--max-running-per-namespace=" + bad}); err == nil || !strings.Contains(err.Error(), "want 0 (no cap) or a positive number") {
			t.Errorf("%s: error %v", bad, err)
		}
	}
}

func equalLists(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if other, ok := b[name]; !ok || q.Cmp(other) != 0 {
			return false
		}
	}
	return true
}

// The archive is off by default; its flags without a connection string,
// or a connection string that cannot be read, are refused with the reason.
func TestManagerArchiveFlags(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	unreachable := file("unreachable", "host="+filepath.Join(dir, "no-server")+" user=kfn connect_timeout=2\n")
	for name, tc := range map[string]struct {
		args []string
		env  string
		on   bool
		bad  string // in the error, when refused
	}{
		"off by default":                  {},
		"on from a file":                  {args: []string{"--archive-dsn-file=" + unreachable}, on: true},
		"on from the environment":         {env: "host=" + filepath.Join(dir, "no-server"), on: true},
		"a setting without an archive":    {args: []string{"--archive-keep-live=5m"}, bad: "so --archive-keep-live cannot apply"},
		"both a file and the environment": {args: []string{"--archive-dsn-file=" + unreachable}, env: "host=/tmp", bad: "set one"},
		"an empty file":                   {args: []string{"--archive-dsn-file=" + file("empty", "\n")}, bad: "is empty"},
		"a missing file":                  {args: []string{"--archive-dsn-file=" + filepath.Join(dir, "absent")}, bad: "no such file"},
		"a malformed connection string":   {args: []string{"--archive-dsn-file=" + file("bad", "postgres://a@h:port/db")}, bad: "connection string"},
		"no connections":                  {args: []string{"--archive-dsn-file=" + unreachable, "--archive-pool-size=0"}, bad: "pool size"},
		"a negative keep-live":            {args: []string{"--archive-dsn-file=" + unreachable, "--archive-keep-live=-1s"}, bad: "must not be negative"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(archiveDSNEnv, tc.env)
			o, _, err := parseManagerFlags(tc.args)
			if err != nil {
				t.Fatal(err)
			}
			store, err := openArchive(context.Background(), o.archive)
			if store != nil {
				defer store.Close()
			}
			switch {
			case tc.bad != "":
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Fatalf("error %v, want one saying %q", err, tc.bad)
				}
			case err != nil:
				t.Fatal(err)
			case (store != nil) != tc.on:
				t.Fatalf("archive on: %v, want %v", store != nil, tc.on)
			}
		})
	}
}

// Leader election's timings: the defaults ride out an API server restart,
// and timings client-go cannot elect with are refused, naming the flag.
func TestManagerLeaseTimings(t *testing.T) {
	o, _, err := parseManagerFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.lease.check(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	if o.lease != (leaseTimings{45 * time.Second, 30 * time.Second, 5 * time.Second}) {
		t.Errorf("defaults %+v", o.lease)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--leader-elect-lease-duration=15s", "--leader-elect-renew-deadline=10s", "--leader-elect-retry-period=2s"}, ""},
		{[]string{"--leader-elect-lease-duration=30s"}, "--leader-elect-lease-duration (30s) must be over --leader-elect-renew-deadline (30s)"},
		{[]string{"--leader-elect-renew-deadline=6s"}, "--leader-elect-renew-deadline (6s) must be over 1.2 × --leader-elect-retry-period (5s)"},
		{[]string{"--leader-elect-retry-period=0s"}, "--leader-elect-retry-period must be positive"},
	} {
		o, _, err := parseManagerFlags(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		err = o.lease.check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: got %v, want %q", tc.args, err, tc.want)
		}
	}
}
