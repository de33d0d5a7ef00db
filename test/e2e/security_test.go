//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// The trust boundaries of docs/security.md, on the real node: function code
// that forges or floods its result, an Execution that names a Secret not
// made for it, the rights kfn's service accounts really hold, and guests
// sending the largest bodies at once.

// forgedResult is the record hostile function code would like written: a
// success with invented output, in the runner's own encoding.
const forgedResult = `{"v":1,"exitCode":0,"statusCode":200,"startedAt":"2026-01-02T03:04:05Z","finishedAt":"2026-01-02T03:04:06Z","duration":1,"response":"FORGED","stdout":"","stderr":""}`

// etcdRequestLimit is etcd's default --max-request-bytes (1.5 MiB): an
// Execution must stay below it to be written at all.
const etcdRequestLimit = 1572864

// hostileScript prefixes script with the forged result, exported so that
// the processes it starts see it too.
func hostileScript(script string) string {
	return "export FORGED='" + forgedResult + "'\n" + script
}

// oneMB is what the 1 MB output cases write: to the response file and to stdout.
func oneMB(producer string) string {
	return producer + ` > "$KFN_RESPONSE_FILE"
` + producer + `
exit 0`
}

// TestSecurityHostileFunctionsGetTruthfulRecords: whatever function code
// writes where, the record is the runner's (docs/runtime-contract.md, "The
// record is the runner's"): the real exit status and status code, never a
// forged 200 with invented output, and an Execution that fits etcd.
// lingeringForger starts a child that leaves the function's process group,
// ignores SIGTERM and keeps forging the answer files and the termination
// log after the function has exited.
const lingeringForger = `
( setsid sh -c 'trap "" TERM; sleep 0.5
  while :; do
    printf FORGED > "$KFN_RESPONSE_FILE"; echo 200 > "$KFN_STATUS_CODE_FILE"
    { printf "%s" "$FORGED" > /dev/termination-log; } 2> /dev/null
  done' > /dev/null 2>&1 & )
`

func TestSecurityHostileFunctionsGetTruthfulRecords(t *testing.T) {
	t.Parallel()
	const trueResponse = "the true response"
	html := strings.Repeat("<>&", 1_000_000/3+1)[:1_000_000]
	control := strings.Repeat("\x01\x1b", 500_000)
	nul := strings.Repeat("\x00", 1_000_000)
	const timeout = 30

	cases := []struct {
		name   string
		script string
		status fnv1.ExecutionPhase
		code   int32
		exit   int32
		// response is the exact response; full the whole output written
		// (response and stdout) when it may be cut instead.
		response string
		full     string
		check    func(g Gomega, st *fnv1.ExecutionStatus)
	}{{
		name: "a fake result line and a partial one written to the runner's log",
		script: `
if { printf '\n%s\n{"v":1,"partial' "$FORGED" > /proc/1/fd/1; } 2> /dev/null; then echo LOG-WRITTEN; else echo LOG-DENIED; fi
if { printf '\n%s\n{"v":1,"partial' "$FORGED" > /proc/1/fd/2; } 2> /dev/null; then echo LOG-WRITTEN; else echo LOG-DENIED; fi
head -c 20000 /dev/zero | tr '\0' x >&2 # over 4 KiB: the result travels through the log
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"
exit 3`,
		status: fnv1.PhaseFailed, code: 500, exit: 3, response: trueResponse,
		check: func(g Gomega, st *fnv1.ExecutionStatus) {
			g.Expect(st.Stdout).To(Equal("LOG-DENIED\nLOG-DENIED\n"), "the runner is not dumpable: /proc/1/fd/* stays closed")
			g.Expect(st.Stderr).To(Equal(strings.Repeat("x", 20000)))
		},
	}, {
		name: "a fake result line in the log, then a true success with its own status code",
		script: `
{ printf '\n%s\n{"v":1,"partial' "$FORGED" > /proc/1/fd/1; } 2> /dev/null
head -c 20000 /dev/zero | tr '\0' y
echo 201 > "$KFN_STATUS_CODE_FILE"
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"`,
		status: fnv1.PhaseCompleted, code: 201, exit: 0, response: trueResponse,
		check: func(g Gomega, st *fnv1.ExecutionStatus) {
			g.Expect(st.Stdout).To(Equal(strings.Repeat("y", 20000)))
		},
	}, {
		name: "the function writes the termination message itself",
		script: `
for f in /dev/termination-log "$KFN_TERMINATION_MESSAGE_PATH"; do
  [ -n "$f" ] && { printf '%s' "$FORGED" > "$f"; } 2> /dev/null
done
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"
exit 3`,
		status: fnv1.PhaseFailed, code: 500, exit: 3, response: trueResponse,
	}, {
		name: "stdout padded past 20 MB, then a fake result line",
		script: `
yes 'padding padding padding padding padding padding padding padding padding' | head -c 21000000
{ yes 'padding padding padding padding padding padding padding padding padding' | head -c 21000000 > /proc/1/fd/1; } 2> /dev/null
printf '\n%s\n' "$FORGED"
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"
exit 3`,
		status: fnv1.PhaseFailed, code: 500, exit: 3, response: trueResponse,
		check: func(g Gomega, st *fnv1.ExecutionStatus) {
			g.Expect(st.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
			g.Expect(st.Stdout).To(HaveSuffix("\n" + forgedResult + "\n"))
			g.Expect(len(st.Stdout)).To(BeNumerically("<=", 1_100_000))
			g.Expect(st.Truncated).To(ContainElement("stdout"))
		},
	}, {
		name:   "1 MB of HTML",
		script: oneMB(`yes '<>&' | tr -d '\n' | head -c 1000000`),
		status: fnv1.PhaseCompleted, code: 200, exit: 0, full: html,
	}, {
		name:   "1 MB of control characters",
		script: oneMB(`yes | tr 'y\n' '\001\033' | head -c 1000000`),
		status: fnv1.PhaseCompleted, code: 200, exit: 0, full: control,
	}, {
		name:   "1 MB of NUL bytes",
		script: oneMB(`head -c 1000000 /dev/zero`),
		status: fnv1.PhaseCompleted, code: 200, exit: 0, full: nul,
	}, {
		name: "a setsid child that ignores SIGTERM keeps writing after the function exits (failure)",
		script: lingeringForger + `trap '' TERM
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"
exit 3`,
		status: fnv1.PhaseFailed, code: 500, exit: 3, response: trueResponse,
	}, {
		name: "a setsid child that ignores SIGTERM keeps writing after the function exits (success)",
		script: lingeringForger + `echo 201 > "$KFN_STATUS_CODE_FILE"
printf '` + trueResponse + `' > "$KFN_RESPONSE_FILE"`,
		status: fnv1.PhaseCompleted, code: 201, exit: 0, response: trueResponse,
	}}

	ns := newNamespace(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			name := fmt.Sprintf("hostile-%d", i)
			shellFunction(t, ns, name, hostileScript(tc.script), timeout)
			execute(t, ns, name, name, "")
			// Bounded only to catch a record that never comes: pod start-up
			// on a loaded node, then the timeout and 10 s.
			ex := waitForWithin(t, ns, name, eventually+(timeout+10)*time.Second, fnv1.PhaseCompleted, fnv1.PhaseFailed)
			st := &ex.Status
			if st.CompletionTime != nil && st.StartTime != nil {
				t.Logf("recorded %v after its creation, %v after it started (runner: %.3fs)",
					st.CompletionTime.Sub(ex.CreationTimestamp.Time), st.CompletionTime.Sub(st.StartTime.Time), st.Duration)
			}

			g.Expect(st.Status).To(Equal(tc.status), "%s: %s", st.Reason, st.Message)
			g.Expect(st.StatusCode).To(Equal(tc.code))
			g.Expect(st.ExitCode).NotTo(BeNil(), "%s: %s", st.Reason, st.Message)
			g.Expect(*st.ExitCode).To(Equal(tc.exit))
			if tc.status == fnv1.PhaseFailed {
				g.Expect(st.Reason).To(Equal(fnv1.ReasonFunctionFailed), st.Message)
			}
			g.Expect(st.Response).NotTo(ContainSubstring("FORGED"))
			if tc.full == "" {
				g.Expect(st.Response).To(Equal(tc.response))
			} else {
				// Cut to fit the record: the response keeps its beginning,
				// stdout its end behind the warning line; both say so.
				g.Expect(st.Response).NotTo(BeEmpty(), "the record kept its outputs: %s", st.Message)
				g.Expect(strings.HasPrefix(tc.full, st.Response)).To(BeTrue(), "the response is the beginning of what was written")
				g.Expect(st.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
				_, tail, _ := strings.Cut(st.Stdout, "\n")
				g.Expect(strings.HasSuffix(tc.full, tail)).To(BeTrue(), "stdout is the end of what was written")
				g.Expect(st.Truncated).To(ContainElements("response", "stdout"))
			}
			if tc.check != nil {
				tc.check(g, st)
			}
			// The stored object stays below etcd's request limit.
			raw := kubectl(t, "get", "--raw", fmt.Sprintf("/apis/%s/namespaces/%s/executions/%s", fnv1.GroupVersion, ns, name))
			t.Logf("the Execution is %d bytes of JSON", len(raw))
			g.Expect(len(raw)).To(BeNumerically("<", etcdRequestLimit))
		})
	}
}

// TestSecurityForeignSecretsAreRefused: an Execution that names a Secret
// not made for it fails with SecretNotAllowed, and the Secret is left as
// it was, and outlives the Execution (docs/security.md, "Request Secrets").
func TestSecurityForeignSecretsAreRefused(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	shellFunction(t, ns, "reader", `cat "$KFN_REQUEST_FILE"`, 10)
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "some-owner", Namespace: ns}}
	NewWithT(t).Expect(k8s.Create(bg, other)).To(Succeed())

	cases := []struct {
		name   string
		key    string // jwt or body
		labels func(exec string) map[string]string
		owned  bool // owned by another object
	}{
		{name: "an unlabelled Secret with a jwt key", key: "jwt"},
		{name: "an unlabelled Secret with a body key", key: "body"},
		{name: "a body Secret labelled for another Execution", key: "body", labels: func(string) map[string]string {
			return map[string]string{kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: "someone-else"}
		}},
		{name: "a jwt Secret labelled for it but owned by another object", key: "jwt", owned: true, labels: func(exec string) map[string]string {
			return map[string]string{kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: exec}
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			execName := fmt.Sprintf("steal-%d", i)
			secret := &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("foreign-%d", i), Namespace: ns},
				Data:       map[string][]byte{tc.key: []byte("someone else's " + tc.key)},
			}
			if tc.labels != nil {
				secret.Labels = tc.labels(execName)
			}
			if tc.owned {
				secret.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ConfigMap", Name: other.Name, UID: other.UID}}
			}
			g.Expect(k8s.Create(bg, secret)).To(Succeed())
			before := secret.DeepCopy()

			ex := &fnv1.Execution{
				ObjectMeta: metav1.ObjectMeta{Name: execName, Namespace: ns},
				Spec:       fnv1.ExecutionSpec{FunctionName: "reader"},
			}
			if tc.key == "jwt" {
				ex.Spec.JWTSecretName = secret.Name
			} else {
				ex.Spec.BodySecrets = []string{secret.Name}
			}
			g.Expect(k8s.Create(bg, ex)).To(Succeed())
			ex = waitFor(t, ns, execName, fnv1.PhaseCompleted, fnv1.PhaseFailed)
			g.Expect(ex.Status.Status).To(Equal(fnv1.PhaseFailed))
			g.Expect(ex.Status.Reason).To(Equal(fnv1.ReasonSecretNotAllowed), ex.Status.Message)
			g.Expect(ex.Status.StatusCode).To(Equal(int32(500)))
			g.Expect(ex.Status.Message).To(ContainSubstring(secret.Name))
			g.Expect(ex.Status.JobName).To(BeEmpty(), "no Job runs")
			jobs := &batchv1.JobList{}
			g.Expect(k8s.List(bg, jobs, client.InNamespace(ns), client.MatchingLabels{kube.LabelExecution: execName})).To(Succeed())
			g.Expect(jobs.Items).To(BeEmpty(), "no Job runs")

			untouched := func(g Gomega) {
				now := &corev1.Secret{}
				g.Expect(k8s.Get(bg, client.ObjectKeyFromObject(secret), now)).To(Succeed())
				g.Expect(now.ResourceVersion).To(Equal(before.ResourceVersion))
				g.Expect(now.OwnerReferences).To(Equal(before.OwnerReferences))
				g.Expect(now.Labels).To(Equal(before.Labels))
				g.Expect(now.Data).To(Equal(before.Data))
				g.Expect(now.DeletionTimestamp).To(BeNil())
			}
			untouched(g)

			// Deleting the Execution leaves the Secret as it was.
			g.Expect(k8s.Delete(bg, ex)).To(Succeed())
			g.Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(bg, client.ObjectKeyFromObject(ex), &fnv1.Execution{}))
			}, eventually, poll).Should(BeTrue())
			g.Consistently(untouched, 3*time.Second, 500*time.Millisecond).Should(Succeed())
		})
	}
}

// TestSecurityEffectiveRBAC: what the manager's and the facade's service
// accounts may do, as the API server decides, is exactly what the generated
// roles say they need: nothing less, nothing more.
func TestSecurityEffectiveRBAC(t *testing.T) {
	t.Parallel()
	g := NewWithT(t)
	p := newProject(t)

	managerRules := readRoleRules(t, "../../config/rbac/role.yaml", "ClusterRole")
	leaderElection := readRoleRules(t, "../../config/rbac/leader_election_role.yaml", "Role")
	facadeRules := readRoleRules(t, "../../config/apiserver/rbac/role.yaml", "ClusterRole")
	// Bound by the operator in project namespaces only.
	facadeProjectRules := readRoleRules(t, "../../config/apiserver/project-rbac/role.yaml", "ClusterRole")
	// The chart grants the manager get, list and watch on the event sources
	// it was installed with (hack/e2e.sh: configmaps).
	eventSources := watchResourceRules(t)

	// The service accounts the chart runs them as.
	manager, facade := serviceAccountOf(t, "kfn-manager"), serviceAccountOf(t, "kfn-apiserver")
	g.Expect(manager).To(Equal("kfn-manager"))
	g.Expect(facade).To(Equal("kfn-apiserver"))
	as := func(sa string) string { return "system:serviceaccount:" + releaseNamespace + ":" + sa }

	for _, tc := range []struct {
		sa, namespace string
		rules         [][]rbacv1.PolicyRule
	}{
		{manager, p.namespace, [][]rbacv1.PolicyRule{managerRules, eventSources}},
		{manager, releaseNamespace, [][]rbacv1.PolicyRule{managerRules, eventSources, leaderElection}},
		{facade, p.namespace, [][]rbacv1.PolicyRule{facadeRules, facadeProjectRules}},
		{facade, releaseNamespace, [][]rbacv1.PolicyRule{facadeRules}},
	} {
		t.Run(tc.sa+" in "+tc.namespace, func(t *testing.T) {
			g := NewWithT(t)
			// The rules every authenticated service account has.
			builtin := canIList(t, "system:serviceaccount:default:nobody", tc.namespace)
			granted := canIList(t, as(tc.sa), tc.namespace)
			needed := map[string]bool{}
			for _, rules := range tc.rules {
				for _, rule := range rules {
					for _, r := range breakDown(rule) {
						needed[r] = true
					}
				}
			}
			var extra, missing []string
			for r := range granted {
				if !needed[r] && !builtin[r] {
					extra = append(extra, r)
				}
			}
			for r := range needed {
				if !granted[r] {
					missing = append(missing, r)
				}
			}
			sort.Strings(extra)
			sort.Strings(missing)
			g.Expect(extra).To(BeEmpty(), "granted but not needed")
			g.Expect(missing).To(BeEmpty(), "needed but not granted")
		})
	}

	// The facade reads no Secret but kfn's two, and those only in project
	// namespaces; it lists none, and creates nothing outside projects.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "secrets/kfn-api-keys", "-n", p.namespace}, "yes"},
		{[]string{"get", "secrets/kfn-jwt", "-n", p.namespace}, "yes"},
		{[]string{"create", "secrets", "-n", p.namespace}, "yes"},
		{[]string{"get", "secrets/foreign", "-n", p.namespace}, "no"},
		{[]string{"get", "secrets/kfn-manager-token", "-n", releaseNamespace}, "no"},
		{[]string{"get", "secrets/kfn-jwt", "-n", releaseNamespace}, "no"},
		{[]string{"get", "secrets/kfn-api-keys", "-n", "default"}, "no"},
		{[]string{"create", "secrets", "-n", releaseNamespace}, "no"},
		{[]string{"create", "executions.functions.kfn.dev", "-n", releaseNamespace}, "no"},
		{[]string{"create", "executions.functions.kfn.dev", "-n", p.namespace}, "yes"},
		{[]string{"get", "secrets", "-n", p.namespace}, "no"},
		{[]string{"list", "secrets", "-n", p.namespace}, "no"},
		{[]string{"list", "secrets", "-A"}, "no"},
		{[]string{"watch", "secrets", "-A"}, "no"},
		{[]string{"get", "secrets", "-A"}, "no"},
		{[]string{"update", "secrets/kfn-api-keys", "-n", p.namespace}, "no"},
		{[]string{"patch", "secrets/kfn-jwt", "-n", p.namespace}, "no"},
		{[]string{"delete", "secrets/kfn-jwt", "-n", p.namespace}, "no"},
		{[]string{"delete", "secrets", "-n", p.namespace}, "no"},
	} {
		g.Expect(canI(t, as(facade), tc.args...)).To(Equal(tc.want), "the facade: kubectl auth can-i %s", strings.Join(tc.args, " "))
	}
	// And the manager's Secret rights are its documented ones, no more.
	g.Expect(canI(t, as(manager), "list", "secrets", "-A")).To(Equal("yes"), "docs/security.md: cluster-wide, kept to the request Secret rule by the operator")
	g.Expect(canI(t, as(manager), "deletecollection", "secrets", "-A")).To(Equal("no"))
	// It changes or deletes no RoleBinding but the facade's.
	g.Expect(canI(t, as(manager), "delete", "rolebindings/kfn-apiserver", "-n", p.namespace)).To(Equal("yes"))
	g.Expect(canI(t, as(manager), "delete", "rolebindings/admin", "-n", p.namespace)).To(Equal("no"))
	g.Expect(canI(t, as(manager), "update", "rolebindings/admin", "-n", p.namespace)).To(Equal("no"))
}

// kubectl runs kubectl on the test cluster and returns its stdout.
func kubectl(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("kubectl", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), stderr.String())
	return out
}

// canI answers kubectl auth can-i for user: "yes" or "no".
func canI(t *testing.T, user string, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"auth", "can-i", "--as=" + user}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	answer := strings.TrimSpace(string(out))
	if exitErr, ok := err.(*exec.ExitError); ok && exitErr.ExitCode() == 1 && strings.HasPrefix(answer, "no") {
		err = nil
	}
	NewWithT(t).Expect(err).NotTo(HaveOccurred(), "kubectl auth can-i %s: %s", strings.Join(args, " "), stderr.String())
	answer, _, _ = strings.Cut(answer, " ")
	return answer
}

// canIRow is one row of `kubectl auth can-i --list`: resources, non-resource
// URLs, resource names, verbs.
var canIRow = regexp.MustCompile(`^(\S*)\s+\[([^\]]*)\]\s+\[([^\]]*)\]\s+\[([^\]]*)\]$`)

// canIList returns what user may do in namespace, as `kubectl auth can-i
// --list` prints it, broken down to single rights (see breakDown).
func canIList(t *testing.T, user, namespace string) map[string]bool {
	t.Helper()
	out := kubectl(t, "auth", "can-i", "--list", "--no-headers", "--as="+user, "-n", namespace)
	rights := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		line = strings.TrimRight(line, " \t")
		if line == "" {
			continue
		}
		m := canIRow.FindStringSubmatch(line)
		NewWithT(t).Expect(m).NotTo(BeNil(), "unexpected line of kubectl auth can-i --list: %q", line)
		resource, urls, names, verbs := m[1], strings.Fields(m[2]), strings.Fields(m[3]), strings.Fields(m[4])
		if len(names) == 0 {
			names = []string{""}
		}
		for _, verb := range verbs {
			for _, url := range urls {
				rights["url "+url+" "+verb] = true
			}
			if resource == "" {
				continue
			}
			for _, name := range names {
				rights[right(resource, name, verb)] = true
			}
		}
	}
	return rights
}

func right(resource, name, verb string) string {
	if name != "" {
		resource += "/" + name
	}
	return resource + " " + verb
}

// breakDown returns a rule's single rights, with resources named as
// kubectl names them: resource.group/subresource.
func breakDown(rule rbacv1.PolicyRule) []string {
	var rights []string
	names := rule.ResourceNames
	if len(names) == 0 {
		names = []string{""}
	}
	for _, verb := range rule.Verbs {
		for _, url := range rule.NonResourceURLs {
			rights = append(rights, "url "+url+" "+verb)
		}
		for _, group := range rule.APIGroups {
			for _, resource := range rule.Resources {
				base, sub, _ := strings.Cut(resource, "/")
				if group != "" {
					base += "." + group
				}
				if sub != "" {
					base += "/" + sub
				}
				for _, name := range names {
					rights = append(rights, right(base, name, verb))
				}
			}
		}
	}
	return rights
}

// readRoleRules reads the rules of the one object of kind in a generated
// role file.
func readRoleRules(t *testing.T, path, kind string) []rbacv1.PolicyRule {
	t.Helper()
	data, err := os.ReadFile(path)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	var found []rbacv1.PolicyRule
	for _, doc := range strings.Split(string(data), "\n---") {
		var obj struct {
			Kind  string              `json:"kind"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		NewWithT(t).Expect(yaml.Unmarshal([]byte(doc), &obj)).To(Succeed(), path)
		if obj.Kind == kind {
			NewWithT(t).Expect(found).To(BeNil(), "%s holds one %s", path, kind)
			found = obj.Rules
		}
	}
	NewWithT(t).Expect(found).NotTo(BeEmpty(), "%s holds a %s", path, kind)
	return found
}

// watchResourceRules are the rules the chart adds for the manager's
// --watch-resources (group/version/resource or version/resource).
func watchResourceRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	deploy := &appsv1.Deployment{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: "kfn-manager"}, deploy)).To(Succeed())
	var rules []rbacv1.PolicyRule
	for _, arg := range deploy.Spec.Template.Spec.Containers[0].Args {
		list, ok := strings.CutPrefix(arg, "--watch-resources=")
		if !ok {
			continue
		}
		for _, gvr := range strings.Split(list, ",") {
			parts := strings.Split(gvr, "/")
			group := ""
			if len(parts) == 3 {
				group = parts[0]
			}
			rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{parts[len(parts)-1]}, Verbs: []string{"get", "list", "watch"}})
		}
	}
	return rules
}

// serviceAccountOf returns the service account the Deployment name runs as,
// after checking that it exists.
func serviceAccountOf(t *testing.T, deployment string) string {
	t.Helper()
	g := NewWithT(t)
	deploy := &appsv1.Deployment{}
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: deployment}, deploy)).To(Succeed())
	sa := deploy.Spec.Template.Spec.ServiceAccountName
	g.Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: sa}, &corev1.ServiceAccount{})).To(Succeed())
	return sa
}

// TestSecurityGuestFlood: 20 guests send 10 MiB bodies at once, half of
// them to a function guests may not execute. Every one is answered (created,
// accepted, refused or told to wait), and neither the facade nor the
// manager restarts.
func TestSecurityGuestFlood(t *testing.T) {
	g := NewWithT(t)
	p := newProject(t)
	createFunction(t, p.namespace, "open", fnv1.FunctionSpec{
		Image: busybox, Timeout: 60, Execute: []string{"any"},
		Command: []string{"sh", "-c", `wc -c < "$KFN_REQUEST_FILE" | tr -d ' \n' > "$KFN_RESPONSE_FILE"`},
	})
	createFunction(t, p.namespace, "closed", fnv1.FunctionSpec{
		Image: busybox, Timeout: 60, Execute: []string{"users"},
		Command: []string{"sh", "-c", `echo should not run`},
	})
	endpoint := facadeEndpoint(t)
	// A client as the SDKs and browsers are: keep-alive connections, so
	// that a refusal answered while the body is still being sent reaches
	// it before the facade closes the connection.
	httpClient := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{MaxConnsPerHost: 0}}
	t.Cleanup(httpClient.CloseIdleConnections)

	// The facade knows both functions (its cache may lag): an invalid
	// parameter is answered once the function is found, before anything is
	// created.
	for _, fn := range []string{"open", "closed"} {
		g.Eventually(func() (int, error) {
			code, _, err := guestCreate(httpClient, endpoint, p.namespace, fn, []byte(`{"async":"not a boolean"}`))
			return code, err
		}, eventually, time.Second).Should(BeElementOf(http.StatusBadRequest, http.StatusUnauthorized), "the facade sees %s", fn)
	}

	before := kfnPods(t)
	const size = 10 << 20
	payload, err := json.Marshal(map[string]any{"body": strings.Repeat("0123456789abcdef", size/16), "async": true})
	g.Expect(err).NotTo(HaveOccurred())

	type answer struct {
		function string
		code     int
		body     string
		err      error
	}
	answers := make([]answer, 20)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range answers {
		fn := "open"
		if i%2 == 1 {
			fn = "closed"
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body, err := guestCreate(httpClient, endpoint, p.namespace, fn, payload)
			answers[i] = answer{fn, code, body, err}
		}()
	}
	wg.Wait()
	t.Logf("20 requests of %d bytes answered in %v", len(payload), time.Since(start))

	counts := map[string]int{}
	var accepted []string
	for i, a := range answers {
		g.Expect(a.err).NotTo(HaveOccurred(), "request %d (%s): no answer", i, a.function)
		counts[fmt.Sprintf("%s %d", a.function, a.code)]++
		switch a.function {
		case "open":
			g.Expect(a.code).To(BeElementOf(http.StatusCreated, http.StatusAccepted, http.StatusTooManyRequests), "request %d: %s", i, a.body)
		case "closed":
			g.Expect(a.code).To(BeElementOf(http.StatusUnauthorized, http.StatusTooManyRequests), "request %d: %s", i, a.body)
		}
		if a.code == http.StatusCreated || a.code == http.StatusAccepted {
			var rec struct {
				ID string `json:"$id"`
			}
			g.Expect(json.Unmarshal([]byte(a.body), &rec)).To(Succeed())
			accepted = append(accepted, rec.ID)
		}
	}
	t.Logf("answers: %v", counts)
	g.Expect(accepted).NotTo(BeEmpty(), "at least one large body fits the facade's budget")

	// The accepted ones run with their whole body; the manager handles them.
	for _, id := range accepted {
		ex := waitForWithin(t, p.namespace, id, 3*eventually, fnv1.PhaseCompleted, fnv1.PhaseFailed)
		g.Expect(ex.Status.Status).To(Equal(fnv1.PhaseCompleted), "%s: %s %s", id, ex.Status.Reason, ex.Status.Message)
		g.Expect(ex.Status.Response).To(Equal(strconv.Itoa(size)), "the function read the whole body")
	}

	// Neither component restarted, was replaced or was killed for memory.
	after := kfnPods(t)
	g.Expect(after).To(Equal(before), "the kfn pods and their restart counts")
	pods := &corev1.PodList{}
	g.Expect(k8s.List(bg, pods, client.InNamespace(releaseNamespace))).To(Succeed())
	for _, pod := range pods.Items {
		for _, c := range pod.Status.ContainerStatuses {
			if term := c.LastTerminationState.Terminated; term != nil {
				g.Expect(term.Reason).NotTo(Equal("OOMKilled"), "pod %s container %s", pod.Name, c.Name)
			}
			g.Expect(c.Ready).To(BeTrue(), "pod %s container %s", pod.Name, c.Name)
		}
	}
	resp, err := httpClient.Get(endpoint + "/v1/health")
	g.Expect(err).NotTo(HaveOccurred())
	health, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(health))
	g.Expect(string(health)).To(ContainSubstring(`"status":"pass"`))
}

// guestCreate creates an execution as a guest (no credentials) in the
// newest response format and returns the answer.
func guestCreate(c *http.Client, endpoint, project, function string, payload []byte) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint+"/v1/functions/"+function+"/executions", bytes.NewReader(payload))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Project", project)
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// kfnPods returns the manager's and the facade's pods with the restart
// count of each of their containers.
func kfnPods(t *testing.T) map[string]int32 {
	t.Helper()
	pods := &corev1.PodList{}
	NewWithT(t).Expect(k8s.List(bg, pods, client.InNamespace(releaseNamespace))).To(Succeed())
	found := map[string]int32{}
	components := map[string]int{}
	for _, pod := range pods.Items {
		component := pod.Labels["app.kubernetes.io/component"]
		if component != "manager" && component != "apiserver" {
			continue
		}
		components[component]++
		for _, c := range pod.Status.ContainerStatuses {
			found[pod.Name+"/"+c.Name] = c.RestartCount
		}
	}
	NewWithT(t).Expect(components).To(HaveKey("manager"))
	NewWithT(t).Expect(components).To(HaveKey("apiserver"))
	return found
}

// facadeEndpoint is the base URL of the facade: its Service's cluster IP,
// which the node reaches through kube-proxy, or else a port-forward.
func facadeEndpoint(t *testing.T) string {
	t.Helper()
	svc := &corev1.Service{}
	NewWithT(t).Expect(k8s.Get(bg, types.NamespacedName{Namespace: releaseNamespace, Name: "kfn-apiserver"}, svc)).To(Succeed())
	port := 80
	for _, p := range svc.Spec.Ports {
		if p.Name == "http" {
			port = int(p.Port)
		}
	}
	if ip := svc.Spec.ClusterIP; ip != "" && ip != corev1.ClusterIPNone {
		base := "http://" + net.JoinHostPort(ip, strconv.Itoa(port))
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(base + "/v1/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		t.Logf("the facade's cluster IP %s is not reachable from here (%v): port-forwarding", base, err)
	}
	return portForward(t, "svc/kfn-apiserver", port)
}
