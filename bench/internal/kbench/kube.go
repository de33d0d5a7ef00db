// Package kbench holds what the kfn benchmarks share: clients for the
// cluster in $KUBECONFIG, bench projects (namespaces the REST facade
// serves, with an API key), the facade's address, Prometheus scrapes,
// process memory, percentiles and a bounded load loop.
package kbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kfn-dev/kfn/internal/kube"
)

// Labels of every namespace a benchmark makes, so a later run can find
// and delete what a killed run left behind.
const (
	LabelBench   = "bench.kfn.dev/run"
	LabelProject = "functions.kfn.dev/project"
)

// Env is a set of clients for the cluster in $KUBECONFIG, without
// client-side rate limiting (QPS) so the client is not the bottleneck.
type Env struct {
	Config     *rest.Config
	Client     client.WithWatch
	Clientset  kubernetes.Interface
	Kubeconfig string
	// ClusterDir is the local cluster's state folder (the kubeconfig's
	// folder for `make cluster-up` clusters): pid files, etcd port.
	ClusterDir string
}

// NewEnv connects to the cluster in $KUBECONFIG (or --kubeconfig).
func NewEnv(qps float32, burst int) (*Env, error) {
	// The clients log nothing a benchmark reports; without a logger
	// controller-runtime prints a warning with a stack instead.
	ctrl.SetLogger(logr.Discard())
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = qps, burst
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	kc := os.Getenv("KUBECONFIG")
	dir := ""
	if kc != "" {
		dir = filepath.Dir(kc)
	}
	return &Env{Config: cfg, Client: c, Clientset: cs, Kubeconfig: kc, ClusterDir: dir}, nil
}

// Project is a namespace the facade serves, with an API key.
type Project struct {
	Namespace string
	Key       string
}

// NewProject makes a namespace labelled as a facade project and a bench
// namespace, with an API key holding execution.read and execution.write,
// and waits for its default ServiceAccount (pods need it).
func (e *Env) NewProject(ctx context.Context, prefix, run string) (*Project, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		GenerateName: prefix,
		Labels:       map[string]string{LabelProject: "true", LabelBench: run},
	}}
	if err := e.Client.Create(ctx, ns); err != nil {
		return nil, err
	}
	var raw [24]byte
	_, _ = rand.Read(raw[:])
	key := hex.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(key))
	// The project's API keys Secret (apiserver.APIKeysSecretName): per key
	// NAME, NAME.hash and NAME.scopes.
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "kfn-api-keys", Namespace: ns.Name},
		StringData: map[string]string{"bench.hash": hex.EncodeToString(sum[:]), "bench.scopes": "execution.read execution.write"},
	}
	if err := e.Client.Create(ctx, secret); err != nil {
		return nil, err
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		err := e.Client.Get(ctx, types.NamespacedName{Namespace: ns.Name, Name: "default"}, &corev1.ServiceAccount{})
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		return nil, fmt.Errorf("namespace %s: no default service account: %w", ns.Name, err)
	}
	return &Project{Namespace: ns.Name, Key: key}, nil
}

// DeleteNamespaces deletes the namespaces of a bench run and, when wait
// is positive, waits up to that long until they are gone.
func (e *Env) DeleteNamespaces(ctx context.Context, run string, waitFor time.Duration) error {
	var list corev1.NamespaceList
	if err := e.Client.List(ctx, &list, client.MatchingLabels{LabelBench: run}); err != nil {
		return err
	}
	for i := range list.Items {
		if err := e.Client.Delete(ctx, &list.Items[i]); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	if waitFor <= 0 {
		return nil
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, waitFor, true, func(ctx context.Context) (bool, error) {
		var left corev1.NamespaceList
		if err := e.Client.List(ctx, &left, client.MatchingLabels{LabelBench: run}); err != nil {
			return false, err
		}
		return len(left.Items) == 0, nil
	})
}

// DeleteNamespace deletes one namespace and waits (bounded) until it is gone.
func (e *Env) DeleteNamespace(ctx context.Context, name string, waitFor time.Duration) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := e.Client.Delete(ctx, ns); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if waitFor <= 0 {
		return nil
	}
	return wait.PollUntilContextTimeout(ctx, time.Second, waitFor, true, func(ctx context.Context) (bool, error) {
		err := e.Client.Get(ctx, types.NamespacedName{Name: name}, &corev1.Namespace{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

// Pods returns the pods of a Deployment (by its selector).
func (e *Env) Pods(ctx context.Context, namespace, deployment string) ([]corev1.Pod, error) {
	d := &appsv1.Deployment{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: deployment}, d); err != nil {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, err
	}
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// ReadyPodIP returns the IP of the one running, ready pod of a Deployment.
func (e *Env) ReadyPodIP(ctx context.Context, namespace, deployment string) (string, error) {
	pods, err := e.Pods(ctx, namespace, deployment)
	if err != nil {
		return "", err
	}
	for _, p := range pods {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" && podReady(&p) {
			return p.Status.PodIP, nil
		}
	}
	return "", fmt.Errorf("deployment %s/%s has no ready pod", namespace, deployment)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Scale sets a Deployment's replicas and waits (bounded) until exactly that
// many pods are ready and no other pod of it is left.
func (e *Env) Scale(ctx context.Context, namespace, deployment string, replicas int32, waitFor time.Duration) error {
	d := &appsv1.Deployment{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: deployment}, d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = &replicas
	if err := e.Client.Patch(ctx, d, patch); err != nil {
		return err
	}
	return e.WaitDeployment(ctx, namespace, deployment, waitFor)
}

// WaitDeployment waits until a Deployment's pods are all current and
// ready, and no old or terminating pod is left.
func (e *Env) WaitDeployment(ctx context.Context, namespace, deployment string, waitFor time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, waitFor, true, func(ctx context.Context) (bool, error) {
		d := &appsv1.Deployment{}
		if err := e.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: deployment}, d); err != nil {
			return false, err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.ReadyReplicas != want || s.Replicas != want {
			return false, nil
		}
		pods, err := e.Pods(ctx, namespace, deployment)
		if err != nil {
			return false, err
		}
		ready := int32(0)
		for _, p := range pods {
			if p.DeletionTimestamp != nil {
				return false, nil
			}
			if podReady(&p) {
				ready++
			}
		}
		return ready == want && int32(len(pods)) == want, nil
	})
}

// RolloutRestart restarts a Deployment's pods (as kubectl rollout restart
// does) and waits until the new pods are ready and the old ones gone.
func (e *Env) RolloutRestart(ctx context.Context, namespace, deployment string, waitFor time.Duration) error {
	d := &appsv1.Deployment{}
	if err := e.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: deployment}, d); err != nil {
		return err
	}
	patch := client.MergeFrom(d.DeepCopy())
	if d.Spec.Template.Annotations == nil {
		d.Spec.Template.Annotations = map[string]string{}
	}
	d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339)
	if err := e.Client.Patch(ctx, d, patch); err != nil {
		return err
	}
	return e.WaitDeployment(ctx, namespace, deployment, waitFor)
}

// PodRestarts is a snapshot of the restart counts of the pods in a
// namespace, and the last termination reason of each restarted container.
type PodRestarts map[string]PodRestart

// PodRestart is one pod's restarts.
type PodRestart struct {
	Restarts int32
	Reasons  []string // e.g. OOMKilled
}

// Restarts reads the restart counts of the pods matching a selector.
func (e *Env) Restarts(ctx context.Context, namespace string, selector labels.Selector) (PodRestarts, error) {
	var pods corev1.PodList
	if err := e.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: selector}); err != nil {
		return nil, err
	}
	out := PodRestarts{}
	for _, p := range pods.Items {
		r := PodRestart{}
		for _, cs := range p.Status.ContainerStatuses {
			r.Restarts += cs.RestartCount
			if t := cs.LastTerminationState.Terminated; t != nil {
				r.Reasons = append(r.Reasons, cs.Name+":"+t.Reason)
			}
		}
		out[p.Name] = r
	}
	return out, nil
}
