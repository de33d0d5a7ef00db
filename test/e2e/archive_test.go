//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/archive/pgtest"
)

const (
	// archiveKeepLive is short so that records leave etcd within the test.
	archiveKeepLive   = 3 * time.Second
	archiveSecretName = "kfn-archive"
)

// The PostgreSQL archive on the real node (docs/archive.md): a throwaway
// server on the host that the pods reach at the cluster bridge's address,
// kfn upgraded to use it, then restored as it was. Retention's exact expiry
// is proven against real PostgreSQL in internal/archive (TestArchive).
func TestArchiveOnTheNode(t *testing.T) {
	pg := archiveServer(t)
	enableArchive(t, pg.clusterDSN)
	pods := settledKfnPods(t)

	p := newProject(t)
	echoFunction(t, p.namespace)
	f := facade{endpoint: portForward(t, "svc/kfn-apiserver", 80), project: p.namespace, key: p.apiKey}

	var ids []string
	t.Run("records survive their objects", func(t *testing.T) {
		ids = append(ids, runAndArchive(t, f, p.namespace, "before", 3)...)
		f.expectRecords(t, "echo", ids)
	})
	t.Run("an archive outage loses nothing", func(t *testing.T) {
		ids = append(ids, outage(t, f, pg, p.namespace, ids)...)
		f.expectRecords(t, "echo", ids)
		pg.expectRows(t, p.namespace, "echo", len(ids))
	})
	t.Run("the official SDKs with the archive", func(t *testing.T) {
		sdkAgainstTheArchive(t, f.endpoint, pg)
	})
	NewWithT(t).Expect(settledKfnPods(t)).To(Equal(pods), "the manager and the facade ran throughout, never restarted")
}

// runAndArchive runs n executions of echo through the facade, then waits
// until they are archived and their objects deleted; it returns their IDs.
func runAndArchive(t *testing.T, f facade, ns, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		code, record := f.do(t, http.MethodPost, "/functions/echo/executions", "", map[string]any{"body": fmt.Sprintf("%s-%d", prefix, i)})
		NewWithT(t).Expect(code).To(Equal(http.StatusCreated), "%v", record)
		NewWithT(t).Expect(record).To(HaveKeyWithValue("status", "completed"))
		ids = append(ids, record["$id"].(string))
	}
	expectObjects(t, ns, 0)
	return ids
}

// outage stops the archive, runs executions meanwhile, and starts it again.
func outage(t *testing.T, f facade, pg *archiveDB, ns string, archived []string) []string {
	g := NewWithT(t)
	pg.Stop()
	restarted := false
	defer func() {
		if !restarted {
			pg.Restart()
		}
	}()
	var ids []string
	for i := range 3 {
		code, record := f.do(t, http.MethodPost, "/functions/echo/executions", "", map[string]any{"body": fmt.Sprintf("outage-%d", i)})
		g.Expect(code).To(Equal(http.StatusCreated), "executions run without the archive: %v", record)
		ids = append(ids, record["$id"].(string))
	}
	// What the facade cannot read is an error, never a 404 or a short list.
	code, body := f.do(t, http.MethodGet, "/functions/echo/executions/"+archived[0], "", nil)
	g.Expect(code).To(Equal(http.StatusInternalServerError), "%v", body)
	code, body = f.do(t, http.MethodGet, "/functions/echo/executions", "", nil)
	g.Expect(code).To(Equal(http.StatusInternalServerError), "%v", body)
	// Well past their keep-live, the finished records stay objects.
	g.Consistently(func() int { return len(executionObjects(t, ns)) }, 3*archiveKeepLive, poll).Should(Equal(len(ids)))

	pg.Restart()
	restarted = true
	expectObjects(t, ns, 0)
	return ids
}

// sdkAgainstTheArchive runs the SDK suite on a function whose earlier
// records are archived; with the short keep-live most of the suite's own
// records are read back from the archive too. Once all are archived, the
// facade's total counts each row once.
func sdkAgainstTheArchive(t *testing.T, endpoint string, pg *archiveDB) {
	p := newProject(t)
	echoFunction(t, p.namespace)
	f := facade{endpoint: endpoint, project: p.namespace, key: p.apiKey}
	earlier := runAndArchive(t, f, p.namespace, "earlier", 2)

	runSDKSuite(t, p, endpoint, "echo")

	expectObjects(t, p.namespace, 0)
	f.expectSome(t, "echo", earlier)
	rows := pg.rows(t, p.namespace, "echo")
	_, list := f.do(t, http.MethodGet, "/functions/echo/executions", "", nil)
	NewWithT(t).Expect(list).To(HaveKeyWithValue("total", BeEquivalentTo(rows)), "each archived record counted once")
}

// echoFunction creates the Function echo, which answers as the SDK suite
// expects and anyone may execute.
func echoFunction(t *testing.T, ns string) {
	t.Helper()
	createFunction(t, ns, "echo", fnv1.FunctionSpec{
		Image: busybox, Command: []string{"sh"}, Entrypoint: "main.sh", Timeout: 30, Execute: []string{"any"},
		Code: &fnv1.CodeSource{Inline: map[string]string{"main.sh": sdkFunction}},
	})
}

// expectObjects waits until ns holds n Execution objects.
func expectObjects(t *testing.T, ns string, n int) {
	t.Helper()
	NewWithT(t).Eventually(func() int { return len(executionObjects(t, ns)) }, eventually, poll).Should(Equal(n))
}

func executionObjects(t *testing.T, ns string) []fnv1.Execution {
	t.Helper()
	list := &fnv1.ExecutionList{}
	NewWithT(t).Expect(k8s.List(bg, list, client.InNamespace(ns))).To(Succeed())
	return list.Items
}

// facade calls the facade's REST API with a project's API key.
type facade struct{ endpoint, project, key string }

// do sends a request in the given response format ("" for the newest) and
// returns the status code and the decoded answer.
func (f facade) do(t *testing.T, method, path, format string, body any) (int, map[string]any) {
	t.Helper()
	g := NewWithT(t)
	var payload bytes.Buffer
	if body != nil {
		g.Expect(json.NewEncoder(&payload).Encode(body)).To(Succeed())
	}
	req, err := http.NewRequest(method, f.endpoint+"/v1"+path, &payload)
	g.Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Appwrite-Project", f.project)
	req.Header.Set("X-Appwrite-Key", f.key)
	if format != "" {
		req.Header.Set("X-Appwrite-Response-Format", format)
	}
	resp, err := http.DefaultClient.Do(req)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	answer := map[string]any{}
	g.Expect(json.NewDecoder(resp.Body).Decode(&answer)).To(Succeed())
	return resp.StatusCode, answer
}

// expectRecords checks that the function's list holds exactly ids, each
// once, and that a get of each returns its outputs (the 1.0 format shows
// the response a get does not show in newer formats).
func (f facade) expectRecords(t *testing.T, function string, ids []string) {
	t.Helper()
	g := NewWithT(t)
	code, list := f.do(t, http.MethodGet, "/functions/"+function+"/executions", "", nil)
	g.Expect(code).To(Equal(http.StatusOK), "%v", list)
	g.Expect(list).To(HaveKeyWithValue("total", BeEquivalentTo(len(ids))))
	var listed []string
	for _, e := range list["executions"].([]any) {
		listed = append(listed, e.(map[string]any)["$id"].(string))
	}
	g.Expect(listed).To(ConsistOf(ids), "every record once")
	f.expectSome(t, function, ids)
}

// expectSome checks that a get of each of ids returns its outputs.
func (f facade) expectSome(t *testing.T, function string, ids []string) {
	t.Helper()
	g := NewWithT(t)
	for _, id := range ids {
		code, record := f.do(t, http.MethodGet, "/functions/"+function+"/executions/"+id, "1.0.0", nil)
		g.Expect(code).To(Equal(http.StatusOK), "%v", record)
		g.Expect(record).To(HaveKeyWithValue("status", "completed"))
		g.Expect(record["response"]).To(HavePrefix("echo:"), "%v", record)
		g.Expect(record["stdout"]).To(HavePrefix("log:"), "%v", record)
		g.Expect(record["stderr"]).To(HavePrefix("warn:"), "%v", record)
	}
}

// archiveDB is the throwaway PostgreSQL server and its database kfn.
type archiveDB struct {
	*pgtest.Server
	clusterDSN string // as the pods reach it
}

// archiveServer starts PostgreSQL where the pods reach it (see
// pgtest.StartForCluster) on the bridge hack/cluster made.
func archiveServer(t *testing.T) *archiveDB {
	t.Helper()
	bridge := os.Getenv("KFN_BRIDGE")
	if bridge == "" {
		bridge = "kfn0"
	}
	db := &archiveDB{}
	db.Server, db.clusterDSN = pgtest.StartForCluster(t, bridge)
	return db
}

// rows counts the function's archived rows, failing on an ID stored twice.
func (db *archiveDB) rows(t *testing.T, namespace, function string) int {
	t.Helper()
	conn, err := db.Connect(bg, "kfn")
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	defer conn.Close(bg)
	var rows, ids int
	NewWithT(t).Expect(conn.QueryRow(bg, `SELECT count(*), count(DISTINCT id) FROM executions WHERE namespace = $1 AND function_id = $2`,
		namespace, function).Scan(&rows, &ids)).To(Succeed())
	NewWithT(t).Expect(ids).To(Equal(rows), "an execution archived twice")
	return rows
}

func (db *archiveDB) expectRows(t *testing.T, namespace, function string, n int) {
	t.Helper()
	NewWithT(t).Expect(db.rows(t, namespace, function)).To(Equal(n))
}

// enableArchive points kfn at the archive with a short keep-live, and
// restores the release's values when the test ends.
func enableArchive(t *testing.T, dsn string) {
	t.Helper()
	g := NewWithT(t)
	values := filepath.Join(t.TempDir(), "values.yaml")
	g.Expect(os.WriteFile(values, []byte(helm(t, "get", "values", "kfn", "--output", "yaml")), 0o600)).To(Succeed())
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: archiveSecretName, Namespace: releaseNamespace},
		StringData: map[string]string{"dsn": dsn},
	}
	g.Expect(k8s.Create(bg, secret)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(bg, secret) })
	t.Cleanup(func() {
		helm(t, "upgrade", "kfn", "../../charts/kfn", "--reset-values", "--values", values, "--wait", "--timeout", "180s")
		settledKfnPods(t)
	})
	helm(t, "upgrade", "kfn", "../../charts/kfn", "--reuse-values", "--set", "archive.enabled=true",
		"--set", "archive.secretName="+archiveSecretName, "--set", "archive.keepLive="+archiveKeepLive.String(),
		"--wait", "--timeout", "180s")
}

// settledKfnPods waits until each kfn Deployment runs just its rolled-out, ready
// pods, and returns their restart counts by pod name.
func settledKfnPods(t *testing.T) map[string]int32 {
	t.Helper()
	var pods map[string]int32
	NewWithT(t).Eventually(func() error {
		var err error
		pods, err = settledPods()
		return err
	}, eventually, poll).Should(Succeed())
	return pods
}

func settledPods() (map[string]int32, error) {
	deploys := &appsv1.DeploymentList{}
	if err := k8s.List(bg, deploys, client.InNamespace(releaseNamespace), client.MatchingLabels{"app.kubernetes.io/instance": "kfn"}); err != nil {
		return nil, err
	}
	pods := map[string]int32{}
	for _, d := range deploys.Items {
		list := &corev1.PodList{}
		if err := k8s.List(bg, list, client.InNamespace(releaseNamespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
			return nil, err
		}
		if d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != *d.Spec.Replicas || len(list.Items) != int(*d.Spec.Replicas) {
			return nil, fmt.Errorf("deployment %s is rolling out: %d pods", d.Name, len(list.Items))
		}
		for _, p := range list.Items {
			if p.DeletionTimestamp != nil || !podReady(&p) {
				return nil, fmt.Errorf("pod %s is not ready", p.Name)
			}
			for _, c := range p.Status.ContainerStatuses {
				pods[p.Name+"/"+c.Name] = c.RestartCount
			}
		}
	}
	return pods, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
