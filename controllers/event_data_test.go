package controllers

import (
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kfn-dev/kfn/internal/kube"
)

func TestEventDataFitsAndSaysWhatItDropped(t *testing.T) {
	g := NewWithT(t)
	scheme := kube.NewScheme()
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: "settings", Namespace: "default",
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "me"},
		},
		Data: map[string]string{"mode": "fast"},
	}
	data, dropped := eventData(cm, scheme)
	g.Expect(dropped).To(BeEmpty())
	var obj map[string]any
	g.Expect(json.Unmarshal([]byte(data), &obj)).To(Succeed())
	g.Expect(obj).To(HaveKeyWithValue("kind", "ConfigMap"))
	g.Expect(obj).To(HaveKeyWithValue("apiVersion", "v1"))
	g.Expect(data).NotTo(ContainSubstring("managedFields"))
	g.Expect(data).NotTo(ContainSubstring("last-applied"))
	g.Expect(data).To(ContainSubstring(`"keep":"me"`))
	g.Expect(cm.ManagedFields).NotTo(BeEmpty(), "the cached object is not changed")

	cm.Data["big"] = strings.Repeat("x", 70000)
	cm.BinaryData = map[string][]byte{"small": []byte("y")}
	data, dropped = eventData(cm, scheme)
	g.Expect(dropped).To(Equal([]string{"data"}))
	g.Expect(len(data)).To(BeNumerically("<=", maxEventData))
	g.Expect(data).To(ContainSubstring(`"binaryData"`))
	g.Expect(data).To(ContainSubstring(`"name":"settings"`))

	cm.Annotations["huge"] = strings.Repeat("z", 70000)
	data, dropped = eventData(cm, scheme)
	g.Expect(dropped).To(ContainElement("metadata"))
	g.Expect(len(data)).To(BeNumerically("<=", maxEventData))
	g.Expect(data).To(ContainSubstring(`"name":"settings"`))
}
