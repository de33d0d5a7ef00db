package controllers

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/utils/ptr"
)

// maxLogBytes bounds a read of the runner's log: one JSON line holding up
// to three 1 MB fields, escaped.
const maxLogBytes = 8 << 20

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
		LimitBytes: ptr.To[int64](maxLogBytes),
	}).DoRaw(ctx)
}
