package controllers

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
)

// FunctionDefaults bound what a function pod may use when its Function
// does not say: without them one unconfigured function could take a node's
// memory or disk from everything else on it.
type FunctionDefaults struct {
	// Resources fill, per resource name, what a Function's own
	// spec.resources leave unset (functionResources).
	Resources corev1.ResourceRequirements
	// TmpSizeLimit bounds the writable /tmp (HOME); RunnerDirSizeLimit the
	// runner's directory /kfn: the runner binary (init-container delivery),
	// the request file and the response files. nil leaves one unbounded.
	TmpSizeLimit, RunnerDirSizeLimit *resource.Quantity
}

// Defaults of the manager's flags: a request small enough that many
// functions fit a node, and a memory limit so one cannot exhaust it. No CPU
// limit: throttling would slow every run while the request already keeps
// a fair share.
const (
	DefaultFunctionResources  = `{"requests":{"cpu":"50m","memory":"64Mi"},"limits":{"memory":"256Mi"}}`
	DefaultTmpSizeLimit       = "256Mi"
	DefaultRunnerDirSizeLimit = "128Mi"
)

// runnerDirIOBytes is what a run's files take in the runner's directory at
// most: the request file joins up to MaxBodySecrets Secrets of at most
// 1 MiB each (what the API server lets a Secret hold), the runner reads at
// most MaxOutputBytes of the response and the headers file's limit, and a
// little is left for the status code file and the file system.
const runnerDirIOBytes = fnv1.MaxBodySecrets<<20 + contract.MaxOutputBytes + contract.MaxResponseHeadersFileBytes + 64<<10

// ParseResourceDefaults reads default resources for function containers
// from YAML or JSON, e.g. {requests: {cpu: 50m}, limits: {memory: 256Mi}};
// empty means none. Only cpu, memory and ephemeral-storage may be
// defaulted (an extended resource belongs to the Functions that need it),
// and a request may not exceed its limit, or every Job would be invalid.
func ParseResourceDefaults(text string) (corev1.ResourceRequirements, error) {
	var res corev1.ResourceRequirements
	if strings.TrimSpace(text) == "" {
		return res, nil
	}
	if err := yaml.UnmarshalStrict([]byte(text), &res); err != nil {
		return res, err
	}
	if len(res.Claims) > 0 {
		return res, fmt.Errorf("claims cannot be defaulted")
	}
	allowed := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}
	for _, list := range []corev1.ResourceList{res.Requests, res.Limits} {
		for name, q := range list {
			if !slices.Contains(allowed, name) {
				return res, fmt.Errorf("resource %q cannot be defaulted: only cpu, memory and ephemeral-storage", name)
			}
			if q.Sign() < 0 {
				return res, fmt.Errorf("%s %s is negative", name, q.String())
			}
		}
	}
	for name, req := range res.Requests {
		if limit, ok := res.Limits[name]; ok && req.Cmp(limit) > 0 {
			return res, fmt.Errorf("the %s request %s exceeds its limit %s", name, req.String(), limit.String())
		}
	}
	return res, nil
}

// ParseSizeLimit reads an emptyDir size limit; "" or 0 means unbounded.
func ParseSizeLimit(text string) (*resource.Quantity, error) {
	if text == "" {
		return nil, nil
	}
	q, err := resource.ParseQuantity(text)
	switch {
	case err != nil:
		return nil, err
	case q.Sign() < 0:
		return nil, fmt.Errorf("%s is negative", text)
	case q.IsZero():
		return nil, nil
	}
	return &q, nil
}

// CheckRunnerDirSizeLimit refuses a size limit of the runner's directory
// that could not hold the runner binary the init container copies there
// (runnerBytes, 0 when none is copied) and the largest request file and
// response files: every execution would then be evicted.
func CheckRunnerDirSizeLimit(limit *resource.Quantity, runnerBytes int64) error {
	if limit == nil {
		return nil
	}
	need := runnerBytes + runnerDirIOBytes
	if limit.Value() < need {
		return fmt.Errorf("%s cannot hold the runner (%d bytes) and a run's request and response files (%d bytes): use at least %dMi",
			limit.String(), runnerBytes, runnerDirIOBytes, (need+1<<20-1)>>20)
	}
	return nil
}

// functionResources are the Function's own resources, with the defaults
// for each resource name it leaves unset. Two cases keep the pod valid and
// the Function's intent: a Function that sets only a limit gets no default
// request (Kubernetes makes the limit its request), and a default limit
// below the Function's own request is raised to it.
func functionResources(own, defaults corev1.ResourceRequirements) corev1.ResourceRequirements {
	out := *own.DeepCopy()
	for name, limit := range defaults.Limits {
		if _, set := own.Limits[name]; set {
			continue
		}
		if req, ok := own.Requests[name]; ok && req.Cmp(limit) > 0 {
			limit = req
		}
		out.Limits = withQuantity(out.Limits, name, limit)
	}
	for name, req := range defaults.Requests {
		_, requested := own.Requests[name]
		_, limited := own.Limits[name]
		if requested || limited {
			continue
		}
		out.Requests = withQuantity(out.Requests, name, req)
	}
	return out
}

func withQuantity(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) corev1.ResourceList {
	if list == nil {
		list = corev1.ResourceList{}
	}
	list[name] = q.DeepCopy()
	return list
}

// boundedEmptyDir is an emptyDir of at most limit (nil: unbounded); the
// kubelet evicts a pod that writes more.
func boundedEmptyDir(limit *resource.Quantity) corev1.VolumeSource {
	dir := &corev1.EmptyDirVolumeSource{}
	if limit != nil {
		dir.SizeLimit = ptr.To(limit.DeepCopy())
	}
	return corev1.VolumeSource{EmptyDir: dir}
}
