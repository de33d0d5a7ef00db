package controllers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

// What the user's code may try against the record, tested without a cluster.

// reported is what the kubelet shows of a runner that reported res: the
// termination message, and the log with the result line.
func reported(t *testing.T, res runner.Result) (message string, log []byte) {
	t.Helper()
	line, msg, err := runner.Encode(&res)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	return string(msg), append(append([]byte("\n"), line...), '\n')
}

func TestOnlyTheRunnersResultIsRecorded(t *testing.T) {
	big := result(201, "the true response", strings.Repeat("o", 10_000), "")
	bigMsg, bigLog := reported(t, big)
	forged := result(200, "FORGED", "", "")
	_, forgedLog := reported(t, forged)
	forgedLine := strings.Trim(string(forgedLog), "\n")
	tooBig := strings.Replace(bigMsg, `"logLineBytes":`, `"logLineBytes":99999`, 1)
	headers := func(h map[string]string) runner.Result {
		r := big
		r.Response, r.Stdout, r.ResponseHeaders = "x", "", h
		return r
	}
	many := map[string]string{}
	for i := range contract.MaxResponseHeaders + 1 {
		many[fmt.Sprintf("h%d", i)] = "v"
	}
	small := func(r runner.Result) string { msg, _ := reported(t, r); return msg }
	failed200 := forged
	failed200.ExitCode = 1

	for name, tc := range map[string]struct {
		message string
		exit    int32
		log     string
		want    string // the response recorded, or "" for a NoResult failure
	}{
		"a small result":                     {small(forged), 0, "", "FORGED"},
		"a large one, from the log":          {bigMsg, 0, string(bigLog), "the true response"},
		"a fake and a partial line before":   {bigMsg, 0, forgedLine + "\n{\"v\":1,\"part" + string(bigLog), "the true response"},
		"padding before":                     {bigMsg, 0, strings.Repeat("pad\n", 100_000) + string(bigLog), "the true response"},
		"only a fake line in the log":        {bigMsg, 0, string(forgedLog), ""},
		"the line glued to a partial one":    {bigMsg, 0, `{"v":1,"part` + strings.TrimPrefix(string(bigLog), "\n"), ""},
		"the line cut by the read limit":     {bigMsg, 0, string(bigLog[:len(bigLog)-100]), ""},
		"a line too large to read":           {tooBig, 0, "", ""},
		"a message left by the code":         {small(forged), 137, "", ""},
		"exit 1 answering 200":               {small(failed200), 1, "", ""},
		"more headers than the CRD takes":    {small(headers(many)), 0, "", ""},
		"a header the runner does not write": {small(headers(map[string]string{"X-A": "b"})), 0, "", ""},
		"a header value with CRLF":           {small(headers(map[string]string{"a": "b\r\nset-cookie: c"})), 0, "", ""},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			logs := &memoryLogs{logs: map[string][]byte{}}
			if tc.log != "" {
				logs.set("ns", "pod", []byte(tc.log))
			}
			r := &ExecutionReconciler{Logs: logs}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod"}}
			res, p, err := r.result(context.Background(), pod, &corev1.ContainerStateTerminated{ExitCode: tc.exit, Message: tc.message})
			g.Expect(err).NotTo(HaveOccurred())
			if tc.want == "" {
				g.Expect(res).To(BeNil())
				g.Expect(p).To(HaveField("Reason", fnv1.ReasonNoResult))
				return
			}
			g.Expect(p).To(BeNil())
			g.Expect(res).To(HaveField("Response", tc.want))
		})
	}
}

// outputsOf are 1 MB outputs of each kind that grows when encoded as JSON.
var outputsOf = map[string]string{
	"HTML":          strings.Repeat("<a href='x'>&amp;</a>", 1_000_000/21),
	"NUL":           strings.Repeat("\x00", 1_000_000),
	"control":       strings.Repeat("\x01\x1b[31m", 1_000_000/6),
	"backspace":     strings.Repeat("\b\f", 500_000),
	"quotes":        strings.Repeat(`"\`, 500_000),
	"newlines":      strings.Repeat("\n\r\t", 333_333),
	"line sep":      strings.Repeat("\u2028\u2029", 1_000_000/6),
	"invalid UTF-8": strings.Repeat("a\xff\xfe", 333_333),
	"emoji":         strings.Repeat("é😀", 1_000_000/6),
}

func TestJSONLenIsWhatTheAPIServerStores(t *testing.T) {
	for name, s := range outputsOf {
		raw, err := json.Marshal(s)
		NewWithT(t).Expect(err).NotTo(HaveOccurred())
		// Exact, but for \b and \f, which Go writes in 2 bytes and older
		// versions in 6: the count is never below the truth.
		if name == "backspace" {
			NewWithT(t).Expect(jsonLen(s)).To(BeNumerically(">=", len(raw)-2), name)
			continue
		}
		NewWithT(t).Expect(jsonLen(s)).To(Equal(len(raw)-2), name)
	}
}

func TestRecordFitsEtcdWhateverTheOutput(t *testing.T) {
	headers := map[string]string{}
	for i := range contract.MaxResponseHeaders {
		headers[fmt.Sprintf("h%02d", i)] = strings.Repeat("<", contract.MaxResponseHeadersFileBytes/contract.MaxResponseHeaders-3)
	}
	for name, out := range outputsOf {
		for _, body := range []string{"", strings.Repeat("<", fnv1.MaxBodyBytes)} {
			t.Run(fmt.Sprintf("%s, %d bytes of body", name, len(body)), func(t *testing.T) {
				g := NewWithT(t)
				exec := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: "ns"},
					Spec: fnv1.ExecutionSpec{FunctionName: "fn", Body: body, EventData: strings.Repeat("&", 65536)}}
				res := result(200, out, out, out)
				res.ResponseHeaders = headers
				exec.Status = desiredStatus(world{exec: exec, result: &res}, nil, time.Now(), 1<<20)
				raw, err := json.Marshal(exec)
				g.Expect(err).NotTo(HaveOccurred())
				// Stored with the largest annotations the cache may not show.
				g.Expect(len(raw)+maxAnnotationsBytes).To(BeNumerically("<=", maxObjectBytes-32<<10), "the stored Execution")
				g.Expect(exec.Status.Truncated).To(ConsistOf("response", "stdout", "stderr"))
				g.Expect(exec.Status.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
				g.Expect(exec.Status.ResponseHeaders).To(HaveLen(contract.MaxResponseHeaders))
			})
		}
	}
}

func TestFitRecordCountsEncodedBytes(t *testing.T) {
	g := NewWithT(t)
	html := strings.Repeat("<b>", 1000)
	rec := fitRecord(html, "é"+html+"END", strings.Repeat("\x00", 10)+"Z", 900)
	g.Expect(rec.truncated).To(Equal([]string{"response", "stdout"}))
	g.Expect(jsonLen(rec.response) + jsonLen(rec.stdout) + jsonLen(rec.stderr)).To(BeNumerically("<=", 900))
	g.Expect(rec.response).To(HavePrefix("<b><b>"))
	g.Expect(rec.stdout).To(HaveSuffix("<b>END"))
	g.Expect(rec.stderr).To(Equal(strings.Repeat("\x00", 10) + "Z"))
	// Cut between characters, never inside one.
	g.Expect(keepHead("a<é", 7)).To(Equal("a<"))
	g.Expect(keepHead("a<é", 9)).To(Equal("a<é"))
}

func TestRecordRefusedAsTooLargeIsWrittenWithoutOutputs(t *testing.T) {
	refusals := map[string]error{
		"413":                     apierrors.NewRequestEntityTooLargeError("limit is 3145728"),
		"etcd's limit":            apierrors.NewInternalError(fmt.Errorf("etcdserver: request is too large")),
		"etcd's transport limit":  apierrors.NewInternalError(fmt.Errorf("rpc error: code = ResourceExhausted desc = trying to send message larger than max")),
		"another error (retried)": apierrors.NewServiceUnavailable("etcd is down"),
	}
	for name, refusal := range refusals {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			exec := &fnv1.Execution{ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: "ns"}, Spec: fnv1.ExecutionSpec{FunctionName: "fn"}}
			// The API server refuses any record that has outputs.
			c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(exec).WithStatusSubresource(exec).
				WithInterceptorFuncs(interceptor.Funcs{SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
					if e := obj.(*fnv1.Execution); e.Status.Response != "" || e.Status.Stdout != "" {
						return refusal
					}
					return c.SubResource(sub).Update(ctx, obj, opts...)
				}}).Build()
			r := &ExecutionReconciler{Client: c, Recorder: &events.FakeRecorder{}}
			res := result(201, "answer", "out", "")
			res.ResponseHeaders = map[string]string{"a": "b"}
			status := desiredStatus(world{exec: exec, result: &res}, nil, time.Now(), 1<<20)

			err := r.writeRecord(context.Background(), exec, status)
			stored := &fnv1.Execution{}
			g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(exec), stored)).To(Succeed())
			if name == "another error (retried)" {
				g.Expect(err).To(MatchError(refusal))
				g.Expect(stored.Status.Status).To(BeEmpty())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(stored.Status).To(And(HaveField("Status", fnv1.PhaseCompleted), HaveField("StatusCode", int32(201)),
				HaveField("Response", ""), HaveField("Stdout", ""), HaveField("ResponseHeaders", BeNil()),
				HaveField("Truncated", Equal([]string{"response", "stdout"})), HaveField("Message", ContainSubstring("too large to store"))))
			g.Expect(condition(stored.Status.Conditions, fnv1.ExecutionSucceeded)).To(HaveField("Message", ContainSubstring("too large")))
		})
	}
}

func TestPodLogReaderReadsABoundedTail(t *testing.T) {
	g := NewWithT(t)
	var query map[string][]string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		query = req.URL.Query()
		fmt.Fprint(w, "\n{}\n")
	}))
	defer server.Close()
	clientset, err := kubernetes.NewForConfig(&rest.Config{Host: server.URL})
	g.Expect(err).NotTo(HaveOccurred())

	log, err := PodLogReader{Pods: clientset.CoreV1()}.ContainerLog(context.Background(), "ns", "pod", functionContainer)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(log)).To(Equal("\n{}\n"))
	g.Expect(query).To(And(HaveKeyWithValue("container", []string{functionContainer}),
		HaveKeyWithValue("tailLines", []string{fmt.Sprint(logTailLines)}),
		HaveKeyWithValue("limitBytes", []string{fmt.Sprint(logLimitBytes)})))
	// The longest line the runner writes, stored in entries of 1 KiB, is
	// within the tail; and no more than it is read.
	g.Expect(logTailLines).To(BeNumerically(">=", (contract.MaxResultLineBytes+1023)/1024+2))
	g.Expect(logLimitBytes).To(Equal(contract.MaxResultLineBytes + 2))
}
