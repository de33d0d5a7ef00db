package controllers

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
	"github.com/kfn-dev/kfn/internal/runner"
)

// The execution rules are pure functions of an observed world: these tests
// need no API server (go test -short runs them alone).

var ruleNow = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

func ruleExec(jobName, podName string) *fnv1.Execution {
	return &fnv1.Execution{
		ObjectMeta: metav1.ObjectMeta{Name: "run", Namespace: "ns", Generation: 2, UID: "run-uid"},
		Spec:       fnv1.ExecutionSpec{FunctionName: "fn"},
		Status:     fnv1.ExecutionStatus{JobName: jobName, PodName: podName},
	}
}

func ruleFunction(mutate func(*fnv1.Function)) *fnv1.Function {
	fn := &fnv1.Function{ObjectMeta: metav1.ObjectMeta{Name: "fn", Namespace: "ns"}, Spec: fnv1.FunctionSpec{Image: "busybox", Timeout: 7}}
	if mutate != nil {
		mutate(fn)
	}
	return fn
}

func failedJob(reason string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run"},
		Spec:       batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](37)},
		Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{
			Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: "it failed",
		}}},
	}
}

// podWith is the Job's pod in phase, its containers in the given states.
func podWith(phase corev1.PodPhase, init, function *corev1.ContainerState) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "run-abcde"}, Status: corev1.PodStatus{Phase: phase}}
	if init != nil {
		pod.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: installContainer, State: *init}}
	}
	if function != nil {
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: functionContainer, State: *function}}
	}
	return pod
}

func waiting(reason string) *corev1.ContainerState {
	return &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "details"}}
}

func terminated(reason string, exitCode int32) *corev1.ContainerState {
	return &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: exitCode}}
}

func waitingWithMessage(reason, message string) *corev1.ContainerState {
	return &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}}
}

// startedJob started at at, with the deadline the rules' function's Job
// would have (7 s + 30 s).
func startedJob(at time.Time) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "run"},
		Spec:       batchv1.JobSpec{ActiveDeadlineSeconds: ptr.To[int64](37)},
		Status:     batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(at))},
	}
}

// interimFailedJob is a Job the Job controller is failing: the pods are
// being deleted, the Failed condition comes once they are gone.
func interimFailedJob(reason string) *batchv1.Job {
	job := failedJob(reason)
	job.Status.Conditions[0].Type = batchv1.JobFailureTarget
	return job
}

func deletingJob() *batchv1.Job {
	job := startedJob(ruleNow)
	job.DeletionTimestamp = ptr.To(metav1.NewTime(ruleNow))
	return job
}

// oomKilledPod's function container was OOM-killed; limit is its memory
// limit, "" for none.
func oomKilledPod(limit string) *corev1.Pod {
	pod := podWith(corev1.PodFailed, nil, terminated("OOMKilled", 137))
	pod.Spec.Containers = []corev1.Container{{Name: functionContainer}}
	if limit != "" {
		pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)}
	}
	return pod
}

func withImage(pod *corev1.Pod, image string) *corev1.Pod {
	pod.Spec.Containers = []corev1.Container{{Name: functionContainer, Image: image}}
	return pod
}

// unschedulable is pod as the scheduler leaves it when no node has room.
func unschedulable(pod *corev1.Pod) *corev1.Pod {
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/1 nodes are available: 1 Too many pods.",
	})
	return pod
}

// deleting is pod once someone (the Job controller, say) deleted it.
func deleting(pod *corev1.Pod) *corev1.Pod {
	pod.DeletionTimestamp = ptr.To(metav1.NewTime(ruleNow))
	return pod
}

// recordedWait is the Execution "run" whose status says it waited for why,
// its pod now gone.
func recordedWait(why string) *fnv1.Execution {
	e := ruleExec("run", "run-abcde")
	e.Status.Status, e.Status.Reason, e.Status.Message = fnv1.PhaseWaiting, fnv1.ReasonWaiting, why
	return e
}

// secretWith is a request Secret made for the Execution "run", as the
// facade makes them, holding data.
func secretWith(data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
		kube.LabelManagedBy: kube.ManagedBy, kube.LabelExecution: "run",
	}}, Data: data}
}

// foreign is secret changed so that it is not the Execution "run"'s.
func foreign(secret *corev1.Secret, change func(*corev1.Secret)) *corev1.Secret {
	s := secret.DeepCopy()
	change(s)
	return s
}

func TestFailureRules(t *testing.T) {
	noResult := &problem{fnv1.ReasonNoResult, "no result"}
	jwt := func(s *corev1.Secret) requestSecret {
		return requestSecret{what: "JWT", name: "run-jwt", key: contract.JWTSecretKey, secret: s}
	}
	body := func(s *corev1.Secret) requestSecret {
		return requestSecret{what: "body", name: "run-body-0", key: contract.BodySecretKey, secret: s}
	}
	withJWT := secretWith(map[string][]byte{"jwt": []byte("t")})
	ownedBy := func(uid types.UID) func(*corev1.Secret) {
		return func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{Kind: "Execution", Name: "run", UID: uid}}
		}
	}
	unlabelled := foreign(withJWT, func(s *corev1.Secret) { s.Labels = nil })
	forAnother := foreign(withJWT, func(s *corev1.Secret) { s.Labels[kube.LabelExecution] = "other" })
	notKfns := foreign(withJWT, func(s *corev1.Secret) { delete(s.Labels, kube.LabelManagedBy) })
	ownedElsewhere := foreign(withJWT, func(s *corev1.Secret) {
		s.OwnerReferences = []metav1.OwnerReference{{Kind: "ConfigMap", Name: "keeper", UID: "keeper-uid"}}
	})
	ownedByAnEarlierRun := foreign(withJWT, ownedBy("earlier-run-uid"))
	awaitingSecrets := func(secrets ...requestSecret) world {
		return world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: secrets, awaitSecrets: time.Second}
	}
	for name, tc := range map[string]struct {
		w             world
		reason, words string // "" reason: no failure
	}{
		"a runnable function":    {w: world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(withJWT)}}},
		"awaiting the function":  {w: world{exec: ruleExec("", ""), awaitFunction: time.Second}},
		"function still missing": {w: world{exec: ruleExec("", "")}, reason: fnv1.ReasonFunctionNotFound, words: `function "fn" not found in namespace ns`},
		"disabled before unrunnable": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(func(f *fnv1.Function) { f.Spec.Enabled = ptr.To(false) }), unrunnable: &problem{Message: "no command"}},
			reason: fnv1.ReasonFunctionDisabled,
		},
		"disabled, but allowed for this execution (an API key, Appwrite 1.4+)": {
			w: world{exec: func() *fnv1.Execution {
				e := ruleExec("", "")
				e.Annotations = map[string]string{fnv1.AnnotationAllowDisabled: "true"}
				return e
			}(), fn: ruleFunction(func(f *fnv1.Function) { f.Spec.Enabled = ptr.To(false) })},
		},
		"unrunnable before a missing secret": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), unrunnable: &problem{Message: "no command"}, secrets: []requestSecret{jwt(nil)}},
			reason: fnv1.ReasonFunctionNotReady, words: "cannot run: no command",
		},
		"the JWT secret before the body's": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(nil), body(nil)}},
			reason: fnv1.ReasonSecretNotFound, words: "JWT secret run-jwt not found",
		},
		"a secret the facade made, owned by the execution": {w: world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(foreign(withJWT, ownedBy("run-uid")))}}},
		"awaiting a missing secret":                        {w: awaitingSecrets(jwt(nil), body(nil))},
		"a missing secret once the grace is over": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(withJWT), body(nil)}},
			reason: fnv1.ReasonSecretNotFound, words: "body secret run-body-0 not found",
		},
		"an unlabelled secret": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(unlabelled)}},
			reason: fnv1.ReasonSecretNotAllowed, words: "JWT secret run-jwt is not allowed: it is not labelled app.kubernetes.io/managed-by=kfn; an execution uses only Secrets made for it",
		},
		"a secret not labelled as kfn's": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(notKfns)}},
			reason: fnv1.ReasonSecretNotAllowed, words: "not labelled app.kubernetes.io/managed-by=kfn",
		},
		"a secret made for another execution": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(forAnother)}},
			reason: fnv1.ReasonSecretNotAllowed, words: "not labelled functions.kfn.dev/execution=run",
		},
		"a secret owned by something else": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(ownedElsewhere)}},
			reason: fnv1.ReasonSecretNotAllowed, words: "owned by ConfigMap keeper, not by this execution",
		},
		"a secret owned by an earlier execution of the same name": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(ownedByAnEarlierRun)}},
			reason: fnv1.ReasonSecretNotAllowed, words: "owned by Execution run, not by this execution",
		},
		"a foreign secret fails while another is awaited": {
			w:      awaitingSecrets(jwt(nil), body(foreign(unlabelled, func(s *corev1.Secret) { s.Data = map[string][]byte{"body": nil} }))),
			reason: fnv1.ReasonSecretNotAllowed, words: "body secret run-body-0 is not allowed",
		},
		"a foreign secret's keys are not looked at": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(foreign(unlabelled, func(s *corev1.Secret) { s.Data = nil }))}},
			reason: fnv1.ReasonSecretNotAllowed,
		},
		"a body secret without its key": {
			w:      world{exec: ruleExec("", ""), fn: ruleFunction(nil), secrets: []requestSecret{jwt(withJWT), body(withJWT)}},
			reason: fnv1.ReasonSecretNotFound, words: `body secret run-body-0 has no "body" key`,
		},
		"a lost job, even without the function": {
			w:      world{exec: ruleExec("run", ""), secrets: nil},
			reason: fnv1.ReasonJobLost, words: "job run was deleted",
		},
		"secrets no longer matter once the job exists": {w: world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: &batchv1.Job{}, secrets: []requestSecret{jwt(nil)}}},
		"a job waiting for its pod":                    {w: world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: &batchv1.Job{}}},
		"a job being deleted": {
			w:      world{exec: ruleExec("run", "run-abcde"), job: deletingJob(), pod: podWith(corev1.PodRunning, nil, nil)},
			reason: fnv1.ReasonJobLost, words: "job run is being deleted before the function finished",
		},
		"a lost pod": {
			w:      world{exec: ruleExec("run", "run-abcde"), job: &batchv1.Job{}},
			reason: fnv1.ReasonPodLost, words: "pod run-abcde disappeared before the function finished (deleted or evicted)",
		},
		"a lost pod at the job's deadline is a timeout": {
			w:      world{exec: ruleExec("run", "run-abcde"), job: failedJob(batchv1.JobReasonDeadlineExceeded)},
			reason: fnv1.ReasonTimedOut, words: "Execution timed out after 15s. The function never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start).",
		},
		"no result before the pod's state": {
			w:      world{exec: ruleExec("run", ""), job: failedJob("BackoffLimitExceeded"), pod: podWith(corev1.PodFailed, waiting("InvalidImageName"), nil), noResult: noResult},
			reason: fnv1.ReasonNoResult,
		},
		"out of memory before no result": {
			w:      world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: oomKilledPod("16Mi"), noResult: noResult},
			reason: fnv1.ReasonOOMKilled, words: "the function ran out of memory: it went over its memory limit of 16Mi and was killed (OOMKilled)",
		},
		"out of memory without a limit of its own": {
			w:      world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: oomKilledPod("")},
			reason: fnv1.ReasonOOMKilled, words: "it went over its memory limit and",
		},
		"a container that ended otherwise without a result": {
			w:      world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodFailed, nil, terminated("Error", 2)), noResult: noResult},
			reason: fnv1.ReasonNoResult,
		},
		"an invalid image name before the failed job": {
			w:      world{exec: ruleExec("run", ""), job: failedJob(batchv1.JobReasonDeadlineExceeded), pod: podWith(corev1.PodPending, waiting("InvalidImageName"), nil)},
			reason: fnv1.ReasonImagePullFailed, words: "container install-runner cannot start: its image cannot be pulled: InvalidImageName: details",
		},
		"an image that cannot be pulled fails at the first attempt": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: withImage(podWith(corev1.PodPending, nil,
				waitingWithMessage("ErrImagePull", `failed to pull and unpack image "kfn.dev/does-not-exist:1": dial tcp: lookup kfn.dev: no such host`)), "kfn.dev/does-not-exist:1")},
			reason: fnv1.ReasonImagePullFailed, words: `container function cannot start: its image kfn.dev/does-not-exist:1 cannot be pulled: ErrImagePull: failed to pull and unpack image "kfn.dev/does-not-exist:1": dial tcp: lookup kfn.dev: no such host`,
		},
		"the back-off after a failed pull": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil,
				waitingWithMessage("ImagePullBackOff", `Back-off pulling image "x": ErrImagePull: manifest unknown`))},
			reason: fnv1.ReasonImagePullFailed, words: "ImagePullBackOff: Back-off pulling image",
		},
		"a pull the kubelet throttled waits": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil, waitingWithMessage("ErrImagePull", "pull QPS exceeded"))},
		},
		"the back-off after a throttled pull waits": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil,
				waitingWithMessage("ImagePullBackOff", `Back-off pulling image "x": ErrImagePull: pull QPS exceeded`))},
		},
		"a registry's rate limit waits": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil,
				waitingWithMessage("ErrImagePull", "429 Too Many Requests: toomanyrequests: You have reached your pull rate limit"))},
		},
		"a throttled pull still times out at the job's deadline": {
			w: world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: failedJob(batchv1.JobReasonDeadlineExceeded), pod: podWith(corev1.PodPending, nil,
				waitingWithMessage("ImagePullBackOff", `Back-off pulling image "x": ErrImagePull: pull QPS exceeded`))},
			reason: fnv1.ReasonTimedOut, words: `Execution timed out after 7s. The function never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start): ImagePullBackOff: Back-off pulling image "x": ErrImagePull: pull QPS exceeded`,
		},
		"an ordinary wait":         {w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil, waiting("ContainerCreating"))}},
		"an unscheduled pod waits": {w: world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: unschedulable(podWith(corev1.PodPending, nil, nil))}},
		"a failed pod before the failed job": {
			w:      world{exec: ruleExec("run", ""), job: failedJob("BackoffLimitExceeded"), pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "low memory"}}},
			reason: fnv1.ReasonPodFailed, words: "pod p failed before the function reported a result: Evicted: low memory",
		},
		"the job deadline, never scheduled": {
			w:      world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: failedJob(batchv1.JobReasonDeadlineExceeded), pod: unschedulable(podWith(corev1.PodPending, nil, nil))},
			reason: fnv1.ReasonTimedOut, words: "Execution timed out after 7s. The function never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start): Unschedulable: 0/1 nodes are available: 1 Too many pods.",
		},
		"the deadline's interim condition": {
			w:      world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: interimFailedJob(batchv1.JobReasonDeadlineExceeded), pod: deleting(unschedulable(podWith(corev1.PodPending, nil, nil)))},
			reason: fnv1.ReasonTimedOut, words: "never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start): Unschedulable:",
		},
		"a pod killed once the deadline passed, before the job's condition": {
			w: world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: startedJob(ruleNow.Add(-37 * time.Second)),
				pod: deleting(unschedulable(podWith(corev1.PodPending, nil, nil))), now: ruleNow},
			reason: fnv1.ReasonTimedOut, words: "never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start): Unschedulable: 0/1 nodes are available: 1 Too many pods.",
		},
		"a failed pod once the deadline passed, before the job's condition": {
			w: world{exec: ruleExec("run", ""), fn: ruleFunction(nil), job: startedJob(ruleNow.Add(-40 * time.Second)),
				pod: podWith(corev1.PodFailed, nil, waiting("ContainerCreating")), now: ruleNow},
			reason: fnv1.ReasonTimedOut, words: "its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start).",
		},
		"a pod killed before the deadline is not a timeout": {
			w: world{exec: ruleExec("run", "run-abcde"), fn: ruleFunction(nil), job: startedJob(ruleNow.Add(-36 * time.Second)),
				pod: deleting(unschedulable(podWith(corev1.PodPending, nil, nil))), now: ruleNow},
		},
		"a pod gone at the deadline: the reason recorded while it waited": {
			w: world{exec: recordedWait("Unschedulable: 0/1 nodes are available: 1 Too many pods."), fn: ruleFunction(nil),
				job: interimFailedJob(batchv1.JobReasonDeadlineExceeded)},
			reason: fnv1.ReasonTimedOut, words: "never started: its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start): Unschedulable: 0/1 nodes are available: 1 Too many pods.",
		},
		"a pod gone at the deadline: an ordinary wait recorded is no reason": {
			w:      world{exec: recordedWait("waiting for the function to start"), fn: ruleFunction(nil), job: failedJob(batchv1.JobReasonDeadlineExceeded)},
			reason: fnv1.ReasonTimedOut, words: "its pod was still waiting at the job's deadline (37s: the timeout plus the time allowed to start).",
		},
		"a function that started late": {
			w: world{exec: func() *fnv1.Execution {
				e := ruleExec("run", "run-abcde")
				e.Status.StartTime = ptr.To(metav1.NewTime(ruleNow))
				return e
			}(), fn: ruleFunction(nil), job: failedJob(batchv1.JobReasonDeadlineExceeded)},
			reason: fnv1.ReasonTimedOut, words: "Execution timed out after 7s. The function started late and was stopped at the job's deadline (37s: the timeout plus the time allowed to start).",
		},
		"the job deadline without the function": {
			w:      world{exec: ruleExec("run", ""), job: failedJob(batchv1.JobReasonDeadlineExceeded)},
			reason: fnv1.ReasonTimedOut, words: "after 15s.",
		},
		"a job failed otherwise": {
			w:      world{exec: ruleExec("run", ""), job: failedJob("BackoffLimitExceeded")},
			reason: fnv1.ReasonPodLost, words: "job run failed before the function reported a result: BackoffLimitExceeded: it failed",
		},
		"a job failing otherwise waits for the pod to report": {
			w: world{exec: ruleExec("run", "run-abcde"), job: interimFailedJob("BackoffLimitExceeded"),
				pod: deleting(podWith(corev1.PodRunning, nil, &corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}))},
		},
		"a function running at the job's deadline is left to report": {
			w: world{exec: ruleExec("run", "run-abcde"), job: interimFailedJob(batchv1.JobReasonDeadlineExceeded),
				pod: deleting(podWith(corev1.PodRunning, nil, &corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}))},
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := firstFailure(tc.w)
			switch {
			case tc.reason == "" && p != nil:
				t.Errorf("failure %+v, want none", p)
			case tc.reason == "":
			case p == nil:
				t.Errorf("no failure, want %s", tc.reason)
			case p.Reason != tc.reason || !strings.Contains(p.Message, tc.words):
				t.Errorf("failure %s: %q, want %s mentioning %q", p.Reason, p.Message, tc.reason, tc.words)
			}
		})
	}
}

func TestDesiredStatus(t *testing.T) {
	started := metav1.NewTime(ruleNow.Add(-2 * time.Second))
	res := func(code int, mutate func(*runner.Result)) *runner.Result {
		r := result(code, "answer", "out", "err")
		if mutate != nil {
			mutate(&r)
		}
		return &r
	}
	runningPod := podWith(corev1.PodRunning, nil, &corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}})
	for name, tc := range map[string]struct {
		w       world
		failure *problem
		// maxRecordBytes is 60 unless set: small enough to show truncation.
		maxRecordBytes int
		check          func(g Gomega, st fnv1.ExecutionStatus)
	}{
		"a result wins over a failure": {
			w: world{exec: ruleExec("run", "p"), result: res(201, nil)}, failure: &problem{fnv1.ReasonPodFailed, "evicted"},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseCompleted), HaveField("StatusCode", int32(201)),
					HaveField("Response", "answer"), HaveField("Stdout", "out"), HaveField("Duration", 0.25)))
				g.Expect(st.Conditions).To(ConsistOf(And(HaveField("Status", metav1.ConditionTrue), HaveField("ObservedGeneration", int64(2)))))
			},
		},
		"a failed result": {
			w: world{exec: ruleExec("run", "p"), result: res(503, func(r *runner.Result) { r.ExitCode = 3 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonFunctionFailed),
					HaveField("Message", "the function answered 503 (exit code 3)"), HaveField("ExitCode", ptr.To[int32](3))))
			},
		},
		"a timed out result": {
			w: world{exec: ruleExec("run", "p"), result: res(500, func(r *runner.Result) { r.TimedOut = true })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonTimedOut)))
			},
		},
		"logging disabled drops the logs and their truncation": {
			w: world{exec: ruleExec("run", "p"), fn: ruleFunction(func(f *fnv1.Function) { f.Spec.Logging = ptr.To(false) }),
				result: res(200, func(r *runner.Result) { r.Truncated = []string{"response", "stdout"} })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Stdout", ""), HaveField("Stderr", ""), HaveField("Truncated", []string{"response"})))
			},
		},
		"what the runner cut is listed with what the record cut, once": {
			w: world{exec: ruleExec("run", "p"), result: res(200, func(r *runner.Result) {
				r.Stdout = strings.Repeat("o", 100)
				r.Truncated = []string{"response", "stdout"}
			})},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st.Truncated).To(Equal([]string{"response", "stdout"}))
				g.Expect(st.Stdout).To(HavePrefix("[WARNING] Logs truncated."))
			},
		},
		"a command not found is explained": {
			maxRecordBytes: 4096,
			w: world{exec: ruleExec("run", "p"), result: res(500, func(r *runner.Result) {
				r.ExitCode, r.Stderr = 127, "kfn: cannot start the command: exec: \"nope\": executable file not found in $PATH\n"
			})},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonFunctionFailed), HaveField("StatusCode", int32(500)),
					HaveField("Message", "the function answered 500 (exit code 127: a command was not found or could not be started)"),
					HaveField("Stderr", "kfn: cannot start the command: exec: \"nope\": executable file not found in $PATH\n")))
			},
		},
		"an OOM-killed function that still reported": {
			maxRecordBytes: 4096,
			w:              world{exec: ruleExec("run", "p"), job: &batchv1.Job{}, pod: oomKilledPod("16Mi"), result: res(500, func(r *runner.Result) { r.ExitCode = 137 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				msg := "the function ran out of memory: it went over its memory limit of 16Mi and was killed (OOMKilled); raise the function's resources.limits.memory if it needs more"
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonOOMKilled), HaveField("Message", msg),
					HaveField("StatusCode", int32(500)), HaveField("ExitCode", ptr.To[int32](137)), HaveField("Stdout", "out"), HaveField("Stderr", "err\n"+msg+"\n")))
			},
		},
		"an OOM-killed function that logs nothing still says why": {
			maxRecordBytes: 4096,
			w: world{exec: ruleExec("run", "p"), fn: ruleFunction(func(f *fnv1.Function) { f.Spec.Logging = ptr.To(false) }), job: &batchv1.Job{}, pod: oomKilledPod("16Mi"),
				result: res(500, func(r *runner.Result) { r.ExitCode = 137 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Reason", fnv1.ReasonOOMKilled), HaveField("Stdout", ""), HaveField("Stderr", HavePrefix("the function ran out of memory"))))
			},
		},
		"a success in an OOM-killed container stands": {
			w: world{exec: ruleExec("run", "p"), job: &batchv1.Job{}, pod: oomKilledPod("16Mi"), result: res(200, nil)},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseCompleted), HaveField("Stderr", "err")))
			},
		},
		"a function stopped because its pod was deleted": {
			maxRecordBytes: 4096,
			w: world{exec: ruleExec("run", "p"), job: &batchv1.Job{}, pod: deleting(podWith(corev1.PodFailed, nil, terminated("Error", 143))),
				result: res(500, func(r *runner.Result) { r.ExitCode, r.Stderr = 143, "Execution was terminated by signal SIGTERM.\n" })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				msg := "pod run-abcde was deleted (by hand, an eviction or a node drain) while the function ran: the function was stopped (exit code 143: stopped by SIGTERM)"
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonPodLost), HaveField("Message", msg),
					HaveField("Stderr", "Execution was terminated by signal SIGTERM.\n"+msg+"\n")))
			},
		},
		"a function stopped because its job was deleted": {
			maxRecordBytes: 4096,
			w: world{exec: ruleExec("run", "p"), job: deletingJob(), pod: deleting(podWith(corev1.PodFailed, nil, terminated("Error", 143))),
				result: res(500, func(r *runner.Result) { r.ExitCode = 143 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Reason", fnv1.ReasonJobLost), HaveField("Message", "job run was deleted while the function ran: the function was stopped (exit code 143: stopped by SIGTERM)")))
			},
		},
		"a function stopped at the job's deadline": {
			maxRecordBytes: 4096,
			w: world{exec: ruleExec("run", "p"), job: interimFailedJob(batchv1.JobReasonDeadlineExceeded), pod: deleting(podWith(corev1.PodFailed, nil, terminated("Error", 143))),
				result: res(500, func(r *runner.Result) { r.ExitCode = 143 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Reason", fnv1.ReasonTimedOut), HaveField("Message", ContainSubstring("The function started late and was stopped at the job's deadline (37s")),
					HaveField("Stderr", ContainSubstring("started late"))))
			},
		},
		"a function that failed on its own while its pod was deleted": {
			w: world{exec: ruleExec("run", "p"), job: &batchv1.Job{}, pod: deleting(podWith(corev1.PodFailed, nil, terminated("Error", 3))),
				result: res(500, func(r *runner.Result) { r.ExitCode = 3 })},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Reason", fnv1.ReasonFunctionFailed), HaveField("Message", "the function answered 500 (exit code 3)"), HaveField("Stderr", "err")))
			},
		},
		"a failure reads as a 500": {
			w:       world{exec: func() *fnv1.Execution { e := ruleExec("run", "p"); e.Status.StartTime = &started; return e }()},
			failure: &problem{fnv1.ReasonPodLost, "gone"},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseFailed), HaveField("Reason", fnv1.ReasonPodLost),
					HaveField("StatusCode", int32(500)), HaveField("Stderr", "gone"), HaveField("Duration", 2.0),
					HaveField("JobName", "run"), HaveField("PodName", "p")))
				g.Expect(st.CompletionTime.Time).To(Equal(ruleNow))
				g.Expect(st.Conditions).To(ConsistOf(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", fnv1.ReasonPodLost))))
			},
		},
		"a running function": {
			w: world{exec: ruleExec("run", ""), job: &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "run"}}, pod: runningPod},
			check: func(g Gomega, st fnv1.ExecutionStatus) {
				g.Expect(st).To(And(HaveField("Status", fnv1.PhaseProcessing), HaveField("StartTime", &started), HaveField("PodName", "run-abcde")))
				g.Expect(st.Conditions).To(ConsistOf(HaveField("Status", metav1.ConditionUnknown)))
			},
		},
		"waiting for the function": {
			w:     world{exec: ruleExec("", ""), awaitFunction: time.Second},
			check: waitingWith("waiting for the function to be created"),
		},
		"waiting for the job": {w: world{exec: ruleExec("", ""), fn: ruleFunction(nil)}, check: waitingWith("creating the job")},
		"waiting for the request's secrets": {
			w:     world{exec: ruleExec("", ""), fn: ruleFunction(nil), awaitSecrets: time.Second},
			check: waitingWith("waiting for the request's secrets to be created"),
		},
		"waiting for the pod": {w: world{exec: ruleExec("", ""), job: &batchv1.Job{}}, check: waitingWith("waiting for the function to start")},
		"waiting for an image": {
			w:     world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, nil, waiting("ErrImagePull"))},
			check: waitingWith("ErrImagePull: details"),
		},
		"waiting for a node": {
			w:     world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: unschedulable(podWith(corev1.PodPending, nil, nil))},
			check: waitingWith("Unschedulable: 0/1 nodes are available: 1 Too many pods."),
		},
		"waiting for the start": {
			w:     world{exec: ruleExec("run", ""), job: &batchv1.Job{}, pod: podWith(corev1.PodPending, waiting("PodInitializing"), nil)},
			check: waitingWith("waiting for the function to start"),
		},
	} {
		t.Run(name, func(t *testing.T) {
			if tc.maxRecordBytes == 0 {
				tc.maxRecordBytes = 60
			}
			tc.check(NewWithT(t), desiredStatus(tc.w, tc.failure, ruleNow, tc.maxRecordBytes))
		})
	}
}

func waitingWith(message string) func(Gomega, fnv1.ExecutionStatus) {
	return func(g Gomega, st fnv1.ExecutionStatus) {
		g.Expect(st).To(And(HaveField("Status", fnv1.PhaseWaiting), HaveField("Message", message), HaveField("CompletionTime", BeNil())))
	}
}

func TestBuildJob(t *testing.T) {
	rf := resolvedFunction{Image: "node:20", Command: []string{"node", "index.js"}}
	opts := JobOptions{RunnerImage: testRunnerImage, StartupGrace: 30 * time.Second}
	for name, tc := range map[string]struct {
		fn       func(*fnv1.Function)
		exec     func(*fnv1.Execution)
		opts     func(*JobOptions)
		resolved func(*resolvedFunction)
		check    func(g Gomega, job *batchv1.Job)
	}{
		"restricted and run once": {check: func(g Gomega, job *batchv1.Job) {
			g.Expect(job.ObjectMeta).To(And(HaveField("Name", "run"), HaveField("Namespace", "ns"), HaveField("OwnerReferences", BeEmpty())))
			g.Expect(job.Labels).To(Equal(map[string]string{labelExecution: "run", labelFunction: "fn", "app.kubernetes.io/managed-by": "kfn"}))
			g.Expect(job.Spec.Template.Labels).To(Equal(job.Labels))
			g.Expect(job.Spec.BackoffLimit).To(Equal(ptr.To[int32](0)))
			pod := job.Spec.Template.Spec
			g.Expect(pod).To(And(HaveField("RestartPolicy", corev1.RestartPolicyNever),
				HaveField("AutomountServiceAccountToken", ptr.To(false)), HaveField("EnableServiceLinks", ptr.To(false))))
			g.Expect(*pod.SecurityContext).To(And(HaveField("RunAsNonRoot", ptr.To(true)), HaveField("RunAsUser", ptr.To[int64](nonRootID)),
				HaveField("SeccompProfile.Type", corev1.SeccompProfileTypeRuntimeDefault)))
			for _, c := range append(pod.InitContainers, pod.Containers...) {
				g.Expect(*c.SecurityContext).To(And(HaveField("AllowPrivilegeEscalation", ptr.To(false)),
					HaveField("ReadOnlyRootFilesystem", ptr.To(true)), HaveField("Capabilities.Drop", []corev1.Capability{"ALL"})), c.Name)
			}
			g.Expect(pod.Containers).To(ConsistOf(And(HaveField("Name", functionContainer), HaveField("Image", "node:20"),
				HaveField("Command", []string{contract.Runner, "run", "--", "node", "index.js"}),
				HaveField("TerminationMessagePolicy", corev1.TerminationMessageReadFile))))
		}},
		"the pod sees the Appwrite IDs of its function and project, else their names": {check: func(g Gomega, job *batchv1.Job) {
			env := job.Spec.Template.Spec.Containers[0].Env
			g.Expect(envValue(env, contract.EnvFunctionID)).To(HaveField("Value", "fn"))
			g.Expect(envValue(env, contract.EnvProjectID)).To(HaveField("Value", "ns"))
		}},
		"Appwrite IDs from the labels": {
			fn:       func(f *fnv1.Function) { f.Labels = map[string]string{kube.LabelFunctionID: "My_Func.1"} },
			resolved: func(r *resolvedFunction) { r.ProjectID = "MyProject" },
			check: func(g Gomega, job *batchv1.Job) {
				env := job.Spec.Template.Spec.Containers[0].Env
				g.Expect(envValue(env, contract.EnvFunctionID)).To(HaveField("Value", "My_Func.1"))
				g.Expect(envValue(env, contract.EnvProjectID)).To(HaveField("Value", "MyProject"))
				g.Expect(envValue(env, contract.EnvFunctionName)).To(HaveField("Value", "fn"))
			},
		},
		"the deadline is the timeout plus the startup grace": {check: func(g Gomega, job *batchv1.Job) {
			g.Expect(job.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To[int64](37)))
		}},
		"the default timeout": {
			fn: func(f *fnv1.Function) { f.Spec.Timeout = 0 },
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.ActiveDeadlineSeconds).To(Equal(ptr.To[int64](45)))
				g.Expect(envValue(job.Spec.Template.Spec.Containers[0].Env, contract.EnvTimeout)).To(HaveField("Value", "15"))
			},
		},
		"the environment": {
			fn: func(f *fnv1.Function) {
				f.Spec.Runtime, f.Spec.Contract = "node-20", "v2"
				f.Spec.Variables = []fnv1.Variable{{Name: "GREETING", Value: ptr.To("hi")}}
			},
			exec: func(e *fnv1.Execution) {
				e.Spec.Data, e.Spec.UserID, e.Spec.Trigger = "payload", "u1", fnv1.TriggerHTTP
				e.Spec.Headers = map[string]string{"x-a": "b"}
			},
			check: func(g Gomega, job *batchv1.Job) {
				env := map[string]string{}
				for _, v := range job.Spec.Template.Spec.Containers[0].Env {
					env[v.Name] = v.Value
				}
				g.Expect(env).To(Equal(map[string]string{
					"GREETING": "hi", contract.EnvFunctionID: "fn", contract.EnvFunctionName: "fn", contract.EnvExecutionID: "run",
					contract.EnvTrigger: "http", contract.EnvRuntimeName: "node-20", contract.EnvData: "payload",
					contract.EnvEvent: "", contract.EnvEventData: "", contract.EnvUserID: "u1", contract.EnvProjectID: "ns",
					contract.EnvRequestMethod: "POST", contract.EnvRequestPath: "/", contract.EnvRequestHeaders: `{"x-a":"b"}`,
					contract.EnvTimeout: "7", contract.EnvIODir: contract.IODir, "HOME": contract.HomeDir,
					contract.EnvFunctionContract: "v2", contract.EnvFunctionVariables: "GREETING",
				}))
			},
		},
		"the caller's JWT is referenced": {
			exec: func(e *fnv1.Execution) { e.Spec.JWTSecretName = "run-jwt" },
			check: func(g Gomega, job *batchv1.Job) {
				jwt := envValue(job.Spec.Template.Spec.Containers[0].Env, contract.EnvJWT)
				g.Expect(jwt).To(HaveField("ValueFrom.SecretKeyRef", And(HaveField("Name", "run-jwt"), HaveField("Key", contract.JWTSecretKey))))
			},
		},
		"a large body is projected": {
			exec: func(e *fnv1.Execution) { e.Spec.BodySecrets = []string{"b-0", "b-1"} },
			check: func(g Gomega, job *batchv1.Job) {
				c := job.Spec.Template.Spec.Containers[0]
				g.Expect(envValue(c.Env, contract.EnvRequestBodyDir)).To(HaveField("Value", contract.RequestBodyDir))
				g.Expect(c.VolumeMounts).To(ContainElement(And(HaveField("Name", bodyVolume), HaveField("ReadOnly", true))))
				g.Expect(job.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("VolumeSource.Projected.Sources", HaveLen(2))))
			},
		},
		"the runner comes from an init container": {check: func(g Gomega, job *batchv1.Job) {
			pod := job.Spec.Template.Spec
			g.Expect(pod.InitContainers).To(ConsistOf(And(HaveField("Image", testRunnerImage),
				HaveField("Command", []string{contract.RunnerImageBinary, "copy-self", contract.InstalledRunner}))))
			g.Expect(volumeNames(pod.Volumes)).To(Equal([]string{runnerVolume, tmpVolume}))
		}},
		"the runner comes from an image volume": {
			opts: func(o *JobOptions) { o.RunnerDelivery = DeliverByImageVolume },
			check: func(g Gomega, job *batchv1.Job) {
				pod := job.Spec.Template.Spec
				g.Expect(pod.InitContainers).To(BeEmpty())
				g.Expect(volumeNames(pod.Volumes)).To(Equal([]string{runnerVolume, tmpVolume, imageVolume}))
				g.Expect(pod.Containers[0].Command[0]).To(Equal(contract.ImageRunner))
			},
		},
		"a runtime image that holds the runner needs no init container": {
			resolved: func(r *resolvedFunction) { r.Runner = "/opt/kfn/bin/kfn" },
			check: func(g Gomega, job *batchv1.Job) {
				pod := job.Spec.Template.Spec
				g.Expect(pod.InitContainers).To(BeEmpty())
				g.Expect(volumeNames(pod.Volumes)).To(Equal([]string{runnerVolume, tmpVolume}))
				g.Expect(pod.Containers[0].Command).To(Equal([]string{"/opt/kfn/bin/kfn", "run", "--", "node", "index.js"}))
				g.Expect(pod.Containers[0].VolumeMounts).To(ContainElement(HaveField("MountPath", contract.RunnerDir)))
			},
		},
		"without defaults, the function's resources as they are": {
			fn: func(f *fnv1.Function) { f.Spec.Resources = resources("cpu=1", "") },
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources("cpu=1", "")))
			},
		},
		"an unconfigured function gets the defaults": {
			opts: withDefaults,
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources("cpu=50m,memory=64Mi", "memory=256Mi")))
				g.Expect(job.Spec.Template.Spec.InitContainers[0].Resources).To(Equal(installRunner(testRunnerImage).Resources), "the init container keeps its own")
			},
		},
		"the function's own resources win, per resource name": {
			fn:   func(f *fnv1.Function) { f.Spec.Resources = resources("cpu=2", "cpu=4,ephemeral-storage=1Gi") },
			opts: withDefaults,
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources("cpu=2,memory=64Mi", "cpu=4,ephemeral-storage=1Gi,memory=256Mi")))
			},
		},
		"a function's own limit is also its request": {
			fn:   func(f *fnv1.Function) { f.Spec.Resources = resources("", "memory=32Mi") },
			opts: withDefaults,
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources("cpu=50m", "memory=32Mi")),
					"no default memory request above the function's limit: Kubernetes makes the limit the request")
			},
		},
		"a default limit below the function's request is raised to it": {
			fn:   func(f *fnv1.Function) { f.Spec.Resources = resources("memory=1Gi", "") },
			opts: withDefaults,
			check: func(g Gomega, job *batchv1.Job) {
				g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(resources("cpu=50m,memory=1Gi", "memory=1Gi")))
			},
		},
		"the scratch volumes are bounded": {
			opts: withDefaults,
			check: func(g Gomega, job *batchv1.Job) {
				pod := job.Spec.Template.Spec
				g.Expect(pod.Volumes).To(ContainElements(
					And(HaveField("Name", runnerVolume), HaveField("EmptyDir.SizeLimit", HaveValue(Equal(resource.MustParse("128Mi"))))),
					And(HaveField("Name", tmpVolume), HaveField("EmptyDir.SizeLimit", HaveValue(Equal(resource.MustParse("256Mi")))))))
				g.Expect(pod.Containers[0].VolumeMounts).To(ContainElements(
					And(HaveField("Name", runnerVolume), HaveField("MountPath", contract.RunnerDir)),
					And(HaveField("Name", tmpVolume), HaveField("MountPath", contract.HomeDir))))
			},
		},
		"without size limits the scratch volumes are unbounded": {check: func(g Gomega, job *batchv1.Job) {
			for _, v := range job.Spec.Template.Spec.Volumes {
				g.Expect(v.EmptyDir.SizeLimit).To(BeNil(), v.Name)
			}
		}},
		"inline code is mounted from its secret, folders included": {
			fn: func(f *fnv1.Function) {
				f.Spec.Code = &fnv1.CodeSource{Inline: map[string]string{"index.js": "", "node_modules/pad/index.js": ""}}
			},
			check: func(g Gomega, job *batchv1.Job) {
				pod := job.Spec.Template.Spec
				g.Expect(pod.Volumes).To(ContainElement(HaveField("VolumeSource.Secret", And(HaveField("SecretName", "fn-code"),
					HaveField("Items", Equal([]corev1.KeyToPath{{Key: "index.js", Path: "index.js"},
						{Key: codeKey("node_modules/pad/index.js"), Path: "node_modules/pad/index.js"}}))))))
				g.Expect(codeKey("node_modules/pad/index.js")).To(MatchRegexp(`^[-._a-zA-Z0-9]+$`))
				g.Expect(pod.Containers[0].WorkingDir).To(Equal(contract.CodeDir))
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			fn := ruleFunction(tc.fn)
			exec := ruleExec("", "")
			if tc.exec != nil {
				tc.exec(exec)
			}
			o := opts
			if tc.opts != nil {
				tc.opts(&o)
			}
			r := rf
			if tc.resolved != nil {
				tc.resolved(&r)
			}
			tc.check(NewWithT(t), buildJob(exec, fn, r, o))
		})
	}
}

// withDefaults sets the manager's default function bounds.
func withDefaults(o *JobOptions) {
	res, err := ParseResourceDefaults(DefaultFunctionResources)
	if err != nil {
		panic(err)
	}
	tmp, _ := ParseSizeLimit(DefaultTmpSizeLimit)
	runnerDir, _ := ParseSizeLimit(DefaultRunnerDirSizeLimit)
	o.Defaults = FunctionDefaults{Resources: res, TmpSizeLimit: tmp, RunnerDirSizeLimit: runnerDir}
}

// resources reads requests and limits written as name=quantity,…
func resources(requests, limits string) corev1.ResourceRequirements {
	list := func(text string) corev1.ResourceList {
		if text == "" {
			return nil
		}
		out := corev1.ResourceList{}
		for _, pair := range strings.Split(text, ",") {
			name, q, _ := strings.Cut(pair, "=")
			out[corev1.ResourceName(name)] = resource.MustParse(q)
		}
		return out
	}
	return corev1.ResourceRequirements{Requests: list(requests), Limits: list(limits)}
}

func volumeNames(volumes []corev1.Volume) []string {
	var names []string
	for _, v := range volumes {
		names = append(names, v.Name)
	}
	return names
}
