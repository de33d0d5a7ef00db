// Package projectaccess holds what the REST facade may do inside a project
// namespace, and the RoleBinding that grants it there.
//
// The facade is internet-facing, so its cluster-wide role lets it only read
// Functions, Executions and namespaces. Everything else it does happens in
// namespaces opted in as Appwrite projects: it reads the project's two
// credential Secrets by name, creates and deletes Executions and creates
// the Secrets of a request. The ClusterRole generated from the markers
// below (kfn-apiserver-project, `make manifests`) holds exactly that, and
// the operator binds it to the facade's service account in each project
// namespace (controllers.ProjectAccessReconciler), and only there.
package projectaccess

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kfn-dev/kfn/internal/kube"
)

// +kubebuilder:rbac:groups=functions.kfn.dev,resources=executions,verbs=create;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",resources=secrets,resourceNames=kfn-api-keys;kfn-jwt,verbs=get

// BindingName names the RoleBinding in every project namespace.
const BindingName = "kfn-apiserver"

// Binding grants role (the kfn-apiserver-project ClusterRole, as the chart
// names it) to the facade's service account in a project namespace.
func Binding(namespace, role string, facade types.NamespacedName) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: BindingName, Namespace: namespace, Labels: kube.ManagedLabels()},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, Namespace: facade.Namespace, Name: facade.Name,
		}},
	}
}
