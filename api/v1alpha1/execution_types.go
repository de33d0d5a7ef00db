package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Trigger says what started an execution.
// +kubebuilder:validation:Enum=http;schedule;event
type Trigger string

const (
	TriggerHTTP     Trigger = "http"
	TriggerSchedule Trigger = "schedule"
	TriggerEvent    Trigger = "event"
)

// ExecutionPhase is the Appwrite execution status.
// +kubebuilder:validation:Enum=scheduled;waiting;processing;completed;failed
type ExecutionPhase string

const (
	PhaseScheduled  ExecutionPhase = "scheduled"
	PhaseWaiting    ExecutionPhase = "waiting"
	PhaseProcessing ExecutionPhase = "processing"
	PhaseCompleted  ExecutionPhase = "completed"
	PhaseFailed     ExecutionPhase = "failed"
)

// IsFinished reports whether the phase is final.
func (p ExecutionPhase) IsFinished() bool { return p == PhaseCompleted || p == PhaseFailed }

// MaxBodySecretBytes is the most of a large body one body Secret holds,
// well under the 1 MiB a Secret may hold.
const MaxBodySecretBytes = 900 << 10

// MaxBodySecrets is how many body Secrets an Execution may name: enough for
// Appwrite's 10 MiB bodies.
const MaxBodySecrets = 12

// MaxBodyBytes bounds the request body: it travels to the function in an
// environment variable, and Linux caps one at 128 KiB.
const MaxBodyBytes = 102400

// ExecutionSpec is one request to run a function. It cannot change once created.
// +kubebuilder:validation:XValidation:rule="!(has(self.data) && has(self.body))",message="data (Appwrite 1.0) and body (Appwrite 1.4+) are alternatives: set one"
// +kubebuilder:validation:XValidation:rule="!has(self.bodySecrets) || (!has(self.data) && !has(self.body))",message="bodySecrets carry a body too large for body: set no data or body with them"
// +kubebuilder:validation:XValidation:rule="!has(self.scheduledAt) || (has(self.async) && self.async)",message="scheduled executions must run asynchronously: set async to true"
type ExecutionSpec struct {
	// FunctionName is the Function, in the same namespace, to run.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	FunctionName string `json:"functionName"`

	// Trigger says what started the execution.
	// +kubebuilder:default=http
	// +optional
	Trigger Trigger `json:"trigger,omitempty"`

	// Data is the request payload in Appwrite 1.0 form.
	// +kubebuilder:validation:MaxLength=8192
	// +optional
	Data string `json:"data,omitempty"`

	// Body is the request body in Appwrite 1.4+ form.
	// +kubebuilder:validation:MaxLength=102400
	// +optional
	Body string `json:"body,omitempty"`

	// BodySecrets name Secrets (key "body") whose contents, in order, are
	// a request body too large for Body, up to Appwrite's 10 MiB. Like the
	// JWT Secret, each must be made for this Execution (see JWTSecretName).
	// Such a body reaches the function as the request file and stdin only.
	// +kubebuilder:validation:MaxItems=12
	// +kubebuilder:validation:items:MaxLength=253
	// +listType=atomic
	// +optional
	BodySecrets []string `json:"bodySecrets,omitempty"`

	// Method is the HTTP method of the request (Appwrite 1.4+).
	// +kubebuilder:validation:Enum=GET;POST;PUT;PATCH;DELETE;OPTIONS;HEAD
	// +optional
	Method string `json:"method,omitempty"`

	// Path is the request path, with its query string (Appwrite 1.4+).
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	Path string `json:"path,omitempty"`

	// Headers of the request (Appwrite 1.4+): at most 100 from the caller,
	// and the x-appwrite-client-ip the facade adds.
	// +kubebuilder:validation:MaxProperties=101
	// +optional
	Headers map[string]string `json:"headers,omitempty"`

	// Async executions are answered at once; the caller polls for the result.
	// +optional
	Async bool `json:"async,omitempty"`

	// ScheduledAt delays the execution (Appwrite 1.6+): its status is
	// "scheduled" until then, and it runs at that time. Only with async.
	// Delete the Execution to cancel it.
	// +optional
	ScheduledAt *metav1.Time `json:"scheduledAt,omitempty"`

	// Event is the name of the system event that triggered the execution.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Event string `json:"event,omitempty"`

	// EventData is the event's payload, usually JSON.
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	EventData string `json:"eventData,omitempty"`

	// UserID is the Appwrite user the execution runs for; empty for guests and API keys.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	UserID string `json:"userId,omitempty"`

	// JWTSecretName names a Secret holding the caller's JWT under the key
	// "jwt"; the token never appears in the Execution or the Job. The
	// Secret must be made for this Execution: labelled
	// app.kubernetes.io/managed-by=kfn and functions.kfn.dev/execution=<this
	// Execution's name>, and owned by this Execution or by nothing. The
	// Execution then owns it, and it is deleted once the record is written;
	// any other Secret fails the Execution (SecretNotAllowed), untouched.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	JWTSecretName string `json:"jwtSecretName,omitempty"`
}

// AnnotationAllowDisabled lets an Execution run although its Function is
// disabled: Appwrite 1.4+ lets API keys execute disabled functions, so the
// facade sets it on such Executions. Whoever may create Executions may set
// it, as they may run any Function of the namespace.
const AnnotationAllowDisabled = "functions.kfn.dev/allow-disabled"

// Execution condition types and reasons.
const (
	// ExecutionSucceeded is Unknown while the execution runs, True when it
	// completed and False when it failed.
	ExecutionSucceeded = "Succeeded"

	ReasonScheduled        = "Scheduled"
	ReasonWaiting          = "Waiting"
	ReasonProcessing       = "Processing"
	ReasonCompleted        = "Completed"
	ReasonFunctionFailed   = "FunctionFailed"
	ReasonTimedOut         = "TimedOut"
	ReasonFunctionNotFound = "FunctionNotFound"
	ReasonFunctionDisabled = "FunctionDisabled"
	ReasonFunctionNotReady = "FunctionNotReady"
	ReasonPodLost          = "PodLost"
	ReasonJobLost          = "JobLost"
	ReasonNoResult         = "NoResult"
	ReasonPodFailed        = "PodFailed"
	ReasonSecretNotFound   = "SecretNotFound"
	// ReasonSecretNotAllowed: a request Secret the Execution names was not
	// made for it, so it is neither used nor adopted nor deleted.
	ReasonSecretNotAllowed = "SecretNotAllowed"
	// ReasonOOMKilled: the function container went over its memory limit
	// and the kernel killed a process in it (the function's, or the runner).
	ReasonOOMKilled = "OOMKilled"
	// ReasonImagePullFailed: an image of the pod cannot be pulled: it does
	// not exist, the registry refused or cannot be reached, the name is
	// invalid, or the pull policy forbids pulling an image not present.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonWaitingForSlot: the execution waits, in creation order, until
	// its Function's maxConcurrency or the namespace's cap lets it start.
	ReasonWaitingForSlot = "WaitingForSlot"
)

// ExecutionStatus is the Appwrite execution record.
type ExecutionStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Status is the Appwrite execution status.
	// +optional
	Status ExecutionPhase `json:"status,omitempty"`

	// StatusCode is the HTTP status of the function's response.
	// +optional
	StatusCode int32 `json:"statusCode,omitempty"`

	// Response is the function's response body.
	// +optional
	Response string `json:"response,omitempty"`

	// ResponseHeaders are the headers the function set on its response.
	// +kubebuilder:validation:MaxProperties=100
	// +optional
	ResponseHeaders map[string]string `json:"responseHeaders,omitempty"`

	// Stdout is what the function printed on standard output.
	// +optional
	Stdout string `json:"stdout,omitempty"`

	// Stderr is what the function printed on standard error.
	// +optional
	Stderr string `json:"stderr,omitempty"`

	// Truncated lists the fields (response, stdout, stderr) that were cut
	// to keep the object small.
	// +optional
	Truncated []string `json:"truncated,omitempty"`

	// Duration of the function's run, in seconds.
	// +optional
	Duration float64 `json:"duration,omitempty"`

	// StartTime is when the function started running.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime is when the execution finished.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// JobName is the Job that runs the execution.
	// +optional
	JobName string `json:"jobName,omitempty"`

	// PodName is the pod the function ran in.
	// +optional
	PodName string `json:"podName,omitempty"`

	// ExitCode of the function's process.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`

	// Reason is a CamelCase word for why the execution is in its status.
	// +optional
	Reason string `json:"reason,omitempty"`

	// Message explains the reason to a person.
	// +optional
	Message string `json:"message,omitempty"`

	// Conditions: Succeeded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=exec;execs,categories=kfn
// +kubebuilder:validation:XValidation:rule="self.spec == oldSelf.spec",message="spec is immutable"
// +kubebuilder:printcolumn:name="Function",type=string,JSONPath=`.spec.functionName`
// +kubebuilder:printcolumn:name="Trigger",type=string,JSONPath=`.spec.trigger`,priority=1
// +kubebuilder:printcolumn:name="Scheduled",type=string,JSONPath=`.spec.scheduledAt`,priority=1
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.status`
// +kubebuilder:printcolumn:name="Code",type=integer,JSONPath=`.status.statusCode`
// +kubebuilder:printcolumn:name="Duration",type=number,JSONPath=`.status.duration`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Execution is one run of a Function and its record.
type Execution struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ExecutionSpec   `json:"spec"`
	Status ExecutionStatus `json:"status,omitempty"`
}

// RequestBody is the payload handed to the function, whichever API shape set it.
func (e *Execution) RequestBody() string {
	if e.Spec.Body != "" {
		return e.Spec.Body
	}
	return e.Spec.Data
}

// Method is the request's HTTP method; POST when none was given, as in Appwrite.
func (e *Execution) Method() string {
	if e.Spec.Method == "" {
		return "POST"
	}
	return e.Spec.Method
}

// Path is the request's path; "/" when none was given, as in Appwrite.
func (e *Execution) Path() string {
	if e.Spec.Path == "" {
		return "/"
	}
	return e.Spec.Path
}

// +kubebuilder:object:root=true

// ExecutionList contains a list of Execution.
type ExecutionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Execution `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Execution{}, &ExecutionList{})
}
