package apiserver

import (
	"context"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/test/sdk"
)

// TestOfficialSDKs runs test/sdk/sdk-test.cjs: the official Appwrite SDKs
// from npm, unmodified, against the facade on its loopback port. It needs
// node and npm, and fails without them rather than skipping.
func TestOfficialSDKs(t *testing.T) {
	p := newProject(t)
	fn := p.function(t, "sdk", nil)
	alice, bob := p.user(t, "alice"), p.user(t, "bob")
	// Appwrite IDs, and a function only a team role may execute.
	projectID, functionID := "Sdk_Project."+p.name[2:], "Sdk_Fn.1"
	labelObject(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.name}}, kube.LabelProjectID, projectID)
	labelObject(t, &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: fn, Namespace: p.name}}, kube.LabelFunctionID, functionID)
	team := p.function(t, "team", func(f *fnv1.Function) { f.Spec.Execute = []string{"team:Ops/admin"} })
	carol, err := MintUserJWT(p.jwtKey, "carol", "s", Membership{Teams: map[string][]string{"Ops": {"admin"}}}, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	gomega.NewWithT(t).Eventually(func() int {
		return api{project: projectID, key: p.key}.list(t, functionID, nil, nil).code
	}, eventually, 50*time.Millisecond).Should(gomega.Equal(200))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := sdk.Run(ctx, sdk.Env{
		Endpoint: facadeURL + "/v1", Project: p.name, Function: fn,
		APIKey: p.key, JWT: alice.jwt, JWTRate: bob.jwt, RateLimit: testRateLimit,
		IDProject: projectID, IDFunction: functionID, TeamFunction: team, JWTTeamOp: carol,
	})
	t.Logf("SDK tests:\n%s", out)
	if err != nil {
		t.Fatalf("the SDK tests failed: %v", err)
	}
}
