//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/apiserver"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/projectaccess"
	"github.com/kfn-dev/kfn/test/sdk"
)

// sdkFunction answers as sdk-test.cjs expects, for real, in a pod.
const sdkFunction = `
payload=$APPWRITE_FUNCTION_DATA
printf 'log:%s' "$payload"
case $payload in
sleep:*) ms=${payload#sleep:}; sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))" ;;
esac
printf 'warn:%s' "$payload" >&2
response="echo:$payload"
[ -n "$APPWRITE_FUNCTION_USER_ID" ] && response="$response user:$APPWRITE_FUNCTION_USER_ID"
printf '%s' "$response" > "$KFN_RESPONSE_FILE"
`

// The official Appwrite SDKs, unmodified from npm, against the facade that
// the Helm chart runs in the cluster, reached through a port-forward; the
// executions run in real pods.
func TestOfficialSDKsAgainstTheClusterFacade(t *testing.T) {
	p := newProject(t)
	fn := createFunction(t, p.namespace, "sdk", fnv1.FunctionSpec{
		Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 30, Execute: []string{"any"},
		Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": sdkFunction}},
	})

	runSDKSuite(t, p, portForward(t, "svc/kfn-apiserver", 80), fn.Name)
}

// runSDKSuite runs test/sdk's script against the facade at endpoint, on the
// project's function, which must run sdkFunction and let anyone execute it.
func runSDKSuite(t *testing.T, p project, endpoint, function string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg, 5*time.Minute)
	defer cancel()
	out, err := sdk.Run(ctx, sdk.Env{
		Endpoint: endpoint + "/v1", Project: p.namespace, Function: function,
		APIKey: p.apiKey, JWT: p.jwt(t, "alice"), JWTRate: p.jwt(t, "bob"), RateLimit: facadeRateLimit(t),
	})
	t.Logf("SDK tests:\n%s", out)
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "the SDK tests failed")
}

// project is a namespace opted in as an Appwrite project, with an API key
// and a JWT signing key.
type project struct {
	namespace, apiKey string
	jwtKey            []byte
}

func newProject(t *testing.T) project {
	t.Helper()
	g := NewWithT(t)
	p := project{namespace: newNamespace(t), apiKey: "key-" + rand.String(32), jwtKey: []byte(rand.String(32))}
	ns := &corev1.Namespace{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Name: p.namespace}, ns)).To(Succeed())
	ns.Labels[kube.LabelProject] = "true"
	g.Expect(k8s.Update(bg, ns)).To(Succeed())
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: apiserver.APIKeysSecretName, Namespace: p.namespace},
		Data:       apiserver.APIKeyData("e2e", p.apiKey, "execution.read", "execution.write"),
	})).To(Succeed())
	g.Expect(k8s.Create(bg, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: apiserver.JWTSecretName, Namespace: p.namespace},
		Data:       map[string][]byte{apiserver.JWTSecretKey: p.jwtKey},
	})).To(Succeed())
	// The facade may read them once the operator has granted it access.
	g.Eventually(func() error {
		return k8s.Get(bg, types.NamespacedName{Namespace: p.namespace, Name: projectaccess.BindingName}, &rbacv1.RoleBinding{})
	}, eventually, poll).Should(Succeed())
	return p
}

func (p project) jwt(t *testing.T, user string) string {
	t.Helper()
	token, err := apiserver.MintJWT(p.jwtKey, user, "session-"+user, time.Now(), 0)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return token
}

// A body far over what fits in an Execution (here 3 MB; Appwrite allows
// 10 MiB) reaches the function whole, through the facade and Secrets.
func TestLargeBodyThroughTheClusterFacade(t *testing.T) {
	g := NewWithT(t)
	p := newProject(t)
	createFunction(t, p.namespace, "count", fnv1.FunctionSpec{
		Image: busybox, Timeout: 30,
		Command: []string{"sh", "-c", `wc -c < "$KFN_REQUEST_FILE" | tr -d ' \n' > "$KFN_RESPONSE_FILE"; wc -c | tr -d ' '`},
	})
	endpoint := portForward(t, "svc/kfn-apiserver", 80)

	payload, err := json.Marshal(map[string]any{"body": strings.Repeat("0123456789", 300_000)})
	g.Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequest(http.MethodPost, endpoint+"/v1/functions/count/executions", bytes.NewReader(payload))
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Project", p.namespace)
	req.Header.Set("X-Appwrite-Key", p.apiKey)
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var record map[string]any
	g.Expect(json.NewDecoder(resp.Body).Decode(&record)).To(Succeed())
	g.Expect(resp.StatusCode).To(Equal(http.StatusCreated), "%v", record)
	g.Expect(record).To(HaveKeyWithValue("status", "completed"))
	g.Expect(record).To(HaveKeyWithValue("responseBody", "3000000"), "the request file holds the whole body")
	g.Expect(record).To(HaveKeyWithValue("logs", "3000000\n"), "so does stdin")
}

// facadeRateLimit reads the create rate limit the chart gave the facade.
func facadeRateLimit(t *testing.T) int {
	t.Helper()
	deploy := &appsv1.Deployment{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: "kfn-apiserver"}, deploy)).To(Succeed())
	for _, arg := range deploy.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(arg, "--rate-limit="); ok {
			n, err := strconv.Atoi(v)
			NewWithT(t).Expect(err).NotTo(HaveOccurred())
			return n
		}
	}
	t.Fatal("the facade has no --rate-limit")
	return 0
}

// portForward forwards a local loopback port to a Service port and returns
// the local base URL; the forward ends with the test.
func portForward(t *testing.T, target string, port int) string {
	t.Helper()
	cmd := exec.Command("kubectl", "-n", releaseNamespace, "port-forward", "--address", "127.0.0.1", target, fmt.Sprintf(":%d", port))
	stdout, err := cmd.StdoutPipe()
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	NewWithT(t).Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+)`)
	found := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		for scanner.Scan() {
			if m := forwarding.FindStringSubmatch(scanner.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case local := <-found:
		return "http://127.0.0.1:" + local
	case <-time.After(30 * time.Second):
		t.Fatal("kubectl port-forward did not start")
		return ""
	}
}
