package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
)

// The request's Secrets (the caller's JWT, the parts of a large body) are
// named in the Execution's spec, and the operator may read, update and
// delete every Secret: without a rule, anyone who may create an Execution
// could name any Secret of the namespace with a jwt or body key (another
// caller's JWT included), read it from the function and have it deleted
// with the record. So an Execution uses, adopts and deletes only Secrets
// made for it (secretRefusal); any other fails it and is left untouched.

// requestSecret is a Secret the request refers to, nil when it is missing.
type requestSecret struct {
	what, name, key string
	secret          *corev1.Secret
}

// secretRefusal says why exec may not use, adopt or delete secret, "" when
// it may: the Secret must be labelled as kfn's and as this Execution's, and
// be owned by this Execution (its UID) or by nothing. The labels say who
// made it for whom; the owner check keeps a Secret made for an earlier
// Execution of the same name, or shared with another owner, out.
func secretRefusal(secret metav1.Object, exec *fnv1.Execution) string {
	labels := secret.GetLabels()
	switch {
	case labels[kube.LabelManagedBy] != kube.ManagedBy:
		return fmt.Sprintf("it is not labelled %s=%s", kube.LabelManagedBy, kube.ManagedBy)
	case labels[kube.LabelExecution] != exec.Name:
		return fmt.Sprintf("it is not labelled %s=%s", kube.LabelExecution, exec.Name)
	}
	for _, ref := range secret.GetOwnerReferences() {
		if ref.UID != exec.UID {
			return fmt.Sprintf("it is owned by %s %s, not by this execution", ref.Kind, ref.Name)
		}
	}
	return ""
}

// secretRule is what a refusal message ends with: the rule, for whoever
// made the Secret.
func secretRule(exec *fnv1.Execution) string {
	return fmt.Sprintf("an execution uses only Secrets made for it: labelled %s=%s and %s=%s, owned by it or by nothing",
		kube.LabelManagedBy, kube.ManagedBy, kube.LabelExecution, exec.Name)
}

// requestSecrets reads the Secrets the request refers to: the caller's JWT
// first, then the parts of a large body in order. They are read from the
// API server: the cache holds no Secret data, and the facade creates them
// just before this may run.
func (r *ExecutionReconciler) requestSecrets(ctx context.Context, exec *fnv1.Execution) ([]requestSecret, error) {
	var wanted []requestSecret
	if exec.Spec.JWTSecretName != "" {
		wanted = append(wanted, requestSecret{what: "JWT", name: exec.Spec.JWTSecretName, key: contract.JWTSecretKey})
	}
	for _, name := range exec.Spec.BodySecrets {
		wanted = append(wanted, requestSecret{what: "body", name: name, key: contract.BodySecretKey})
	}
	for i := range wanted {
		secret := &corev1.Secret{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: exec.Namespace, Name: wanted[i].name}, secret)
		switch {
		case err == nil:
			wanted[i].secret = secret
		case !apierrors.IsNotFound(err):
			return nil, err
		}
	}
	return wanted, nil
}

// awaitSecrets is how much longer a new Execution waits for a request
// Secret that does not exist yet: the facade creates them right after the
// Execution, which it names as their owner. 0 when none is missing.
func (r *ExecutionReconciler) awaitSecrets(exec *fnv1.Execution, secrets []requestSecret) time.Duration {
	for _, s := range secrets {
		if s.secret == nil {
			return r.graceLeft(exec)
		}
	}
	return 0
}

// adoptSecrets makes the Execution own the request's Secrets that exist
// and were made for it, so they are deleted with the record. A Secret the
// facade created already names its Execution, and costs no write here.
func (r *ExecutionReconciler) adoptSecrets(ctx context.Context, exec *fnv1.Execution, secrets []requestSecret) error {
	for _, s := range secrets {
		if s.secret == nil || secretRefusal(s.secret, exec) != "" || ownedBy(s.secret, exec) {
			continue
		}
		patch := client.MergeFrom(s.secret.DeepCopy())
		if err := controllerutil.SetOwnerReference(exec, s.secret, r.Scheme); err != nil {
			return err
		}
		if err := r.Patch(ctx, s.secret, patch); err != nil {
			return err
		}
	}
	return nil
}

// deleteRequestSecrets deletes the request's Secrets the Execution owns and
// that were made for it (see adoptSecrets): the caller's JWT and a body of
// up to 10 MiB would otherwise stay in etcd as long as the record. Right
// after the record is written they are read from the API server (the cache
// may not have seen them or their adoption yet); later reconciles of the
// record, a retry or every restart's, ask only the cache, so the stored
// history costs no API reads. A Secret left behind still goes with the
// record.
func (r *ExecutionReconciler) deleteRequestSecrets(ctx context.Context, exec *fnv1.Execution, justFinished bool) error {
	names := append([]string{exec.Spec.JWTSecretName}, exec.Spec.BodySecrets...)
	for _, name := range names {
		if name == "" {
			continue
		}
		found, err := r.secretMeta(ctx, types.NamespacedName{Namespace: exec.Namespace, Name: name}, justFinished)
		if err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return err
		}
		if found.GetDeletionTimestamp() != nil || !ownedBy(found, exec) || secretRefusal(found, exec) != "" {
			continue
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: exec.Namespace, Name: name}}
		uid := found.GetUID()
		if err := r.Delete(ctx, secret, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting request secret %s: %w", name, err)
		}
	}
	return nil
}

// secretMeta reads what deleteRequestSecrets needs of a Secret: from the
// API server, its metadata only (a body Secret holds up to 1 MiB), or from
// the cache, which keeps no request Secret's data.
func (r *ExecutionReconciler) secretMeta(ctx context.Context, key types.NamespacedName, live bool) (client.Object, error) {
	if live {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		return m, r.APIReader.Get(ctx, key, m)
	}
	s := &corev1.Secret{}
	return s, r.Get(ctx, key, s)
}

// ownedBy reports whether owner, this very object (its UID), owns obj.
func ownedBy(obj, owner client.Object) bool {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.UID == owner.GetUID() {
			return true
		}
	}
	return false
}
