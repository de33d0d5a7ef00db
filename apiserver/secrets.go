package apiserver

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kfn-dev/kfn/internal/kube"
)

// execSecret is a Secret an Execution refers to, before it exists.
type execSecret struct{ name, key, value string }

// secretStore creates the Secrets of one new Execution and deletes them
// again when a later step fails, so a failed create leaves none behind.
type secretStore struct {
	writer    client.Client
	namespace string
	created   []string
}

// create makes the Secrets in order; when one fails it deletes those it
// made before.
func (st *secretStore) create(ctx context.Context, secrets []execSecret) error {
	for _, sec := range secrets {
		obj := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: sec.name, Namespace: st.namespace, Labels: kube.ManagedLabels()},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{sec.key: []byte(sec.value)},
		}
		if err := st.writer.Create(ctx, obj); err != nil {
			st.rollback(ctx)
			return fmt.Errorf("creating secret %s: %w", sec.name, err)
		}
		st.created = append(st.created, sec.name)
	}
	return nil
}

// rollback deletes the Secrets made so far, even when the request has
// been cancelled.
func (st *secretStore) rollback(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	for _, name := range st.created {
		_ = st.writer.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: st.namespace}})
	}
	st.created = nil
}
