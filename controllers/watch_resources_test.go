package controllers

import (
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestParseWatchResources(t *testing.T) {
	g := NewWithT(t)
	got, err := ParseWatchResources("v1/configmaps, /v1/services,example.com/v1/widgets")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal([]schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "services"}, {Group: "example.com", Version: "v1", Resource: "widgets"},
	}))
	for list, want := range map[string]string{
		"configmaps":                           "want group/version/resource",
		"v1/secrets":                           "Secrets are not event sources",
		"functions.kfn.dev/v1alpha1/functions": "always event sources",
		"v1/configmaps,other.io/v1/configmaps": "share the event name prefix",
		"v1/ConfigMap.x":                       "plural resource name",
	} {
		_, err := ParseWatchResources(list)
		g.Expect(err).To(MatchError(ContainSubstring(want)), list)
	}
	got, err = ParseWatchResources("")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(BeEmpty())
}
