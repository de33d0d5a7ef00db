package controllers

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// ParseWatchResources reads the --watch-resources list: comma-separated
// group/version/resource, with the core group empty or left out
// ("v1/configmaps", "/v1/configmaps", "example.com/v1/widgets").
func ParseWatchResources(list string) ([]schema.GroupVersionResource, error) {
	var out []schema.GroupVersionResource
	seen := map[string]string{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, "/")
		var gvr schema.GroupVersionResource
		switch len(parts) {
		case 2:
			gvr = schema.GroupVersionResource{Version: parts[0], Resource: parts[1]}
		case 3:
			gvr = schema.GroupVersionResource{Group: parts[0], Version: parts[1], Resource: parts[2]}
		default:
			return nil, fmt.Errorf("watch resource %q: want group/version/resource, or version/resource for the core group", item)
		}
		if gvr.Version == "" || gvr.Resource == "" || strings.Contains(gvr.Resource, ".") {
			return nil, fmt.Errorf("watch resource %q: want group/version/resource with a plural resource name", item)
		}
		switch {
		case gvr.Resource == "functions" || gvr.Resource == "executions":
			return nil, fmt.Errorf("watch resource %q: kfn's own Functions and Executions are always event sources, as functions.*", item)
		case gvr.Group == "" && gvr.Resource == "secrets":
			return nil, fmt.Errorf("watch resource %q: Secrets are not event sources: their data would be copied into Executions", item)
		}
		if other, ok := seen[gvr.Resource]; ok {
			return nil, fmt.Errorf("watch resources %q and %q share the event name prefix %q", other, item, gvr.Resource)
		}
		seen[gvr.Resource] = item
		out = append(out, gvr)
	}
	return out, nil
}
