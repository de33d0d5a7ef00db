package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// execSecret is a Secret an Execution refers to, before it exists.
type execSecret struct {
	name, key string
	value     []byte
}

// createSecrets creates the Secrets of a request after its Execution:
// owned by it, so they are deleted with it (the facade never deletes a
// Secret, nor reads one of these), and labelled for it, as the operator
// mounts no request Secret labelled for another Execution. When one cannot
// be made the Execution is deleted, and garbage collection deletes the
// Secrets made before; the operator waits a moment for a request's Secrets
// to appear, as they come after the Execution.
func (s *Server) createSecrets(ctx context.Context, exec *fnv1.Execution, secrets []execSecret) error {
	for _, sec := range secrets {
		obj := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: sec.name, Namespace: exec.Namespace, Labels: map[string]string{
				kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: exec.Name,
			}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{sec.key: sec.value},
		}
		err := controllerutil.SetOwnerReference(exec, obj, s.writer.Scheme())
		if err == nil {
			err = s.writer.Create(ctx, obj)
		}
		if err != nil {
			s.discard(ctx, exec)
			return fmt.Errorf("creating secret %s: %w", sec.name, err)
		}
	}
	return nil
}

// discard deletes an Execution whose request could not be stored whole,
// even when the request has been cancelled.
func (s *Server) discard(ctx context.Context, exec *fnv1.Execution) {
	uid := exec.UID
	gone := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Namespace: exec.Namespace, Name: exec.Name}}
	if err := s.writer.Delete(context.WithoutCancel(ctx), gone, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		s.log.Error(err, "deleting an execution whose request secrets could not be created", "namespace", exec.Namespace, "execution", exec.Name)
	}
}
