package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"

	"github.com/kfn-dev/kfn/internal/contract"
)

// The runner's result is the last line of its log (nothing is written
// after it), of at most contract.MaxResultLineBytes: only the end of the
// log is read, and no more than that line and the newlines around it.
// Runtimes store a long line as entries of 8 or 16 KiB, which tailLines
// counts one by one; logTailLines allows entries as small as 1 KiB.
const (
	logLimitBytes = contract.MaxResultLineBytes + 2
	logTailLines  = contract.MaxResultLineBytes/1024 + 3
)

// LogReader reads a container's log. In a cluster the kubelet serves it
// through the API server's pods/log subresource, so no network path leads
// from the function pod to the operator.
type LogReader interface {
	ContainerLog(ctx context.Context, namespace, pod, container string) ([]byte, error)
}

// PodLogReader reads logs through the API server.
type PodLogReader struct {
	Pods corev1client.PodsGetter
}

// ContainerLog implements LogReader.
func (r PodLogReader) ContainerLog(ctx context.Context, namespace, pod, container string) ([]byte, error) {
	return r.Pods.Pods(namespace).GetLogs(pod, &corev1.PodLogOptions{
		Container:  container,
		TailLines:  ptr.To[int64](logTailLines),
		LimitBytes: ptr.To[int64](logLimitBytes),
	}).DoRaw(ctx)
}
