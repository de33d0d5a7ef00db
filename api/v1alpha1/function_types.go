package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// FunctionSpec describes the code to run and how executions of it behave.
// +kubebuilder:validation:XValidation:rule="has(self.runtime) != has(self.image)",message="exactly one of runtime or image must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.timeZone) || has(self.schedule)",message="timeZone needs a schedule"
type FunctionSpec struct {
	// Runtime names an entry of the runtime catalog the operator is
	// configured with (for example "node-20"); the catalog supplies the
	// image and the command the entrypoint is appended to.
	// +optional
	Runtime string `json:"runtime,omitempty"`

	// Contract is the Appwrite function contract a catalog runtime's
	// wrapper gives the code: v2 (Appwrite 1.0-1.3: module.exports =
	// async (req, res), def main(req, res)) or v4 (Appwrite 1.4+: export
	// default async ({req, res, log, error}), def main(context)). Empty
	// means v4. Images without a kfn wrapper ignore it.
	// +kubebuilder:validation:Enum=v2;v4
	// +optional
	Contract string `json:"contract,omitempty"`

	// Image is the container image the code runs in, when no runtime is used.
	// +optional
	Image string `json:"image,omitempty"`

	// Command overrides the command the function runs. With a runtime it
	// replaces the catalog command and entrypoint; with an image and no
	// command, the command is the entrypoint alone.
	// +optional
	Command []string `json:"command,omitempty"`

	// Entrypoint is the file that starts the function, relative to the code
	// folder (/kfn/code), for example "index.js".
	// +optional
	Entrypoint string `json:"entrypoint,omitempty"`

	// Code is where the function's source comes from. Without it the code
	// is expected to be baked into the image.
	// +optional
	Code *CodeSource `json:"code,omitempty"`

	// Timeout is the longest an execution may run, in seconds.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=900
	// +kubebuilder:default=15
	// +optional
	Timeout int32 `json:"timeout,omitempty"`

	// MaxConcurrency is how many executions of the function run at once;
	// more wait in "waiting" and start in creation order as runs finish.
	// The operator's --max-running-per-namespace caps all functions of a
	// namespace together.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=50
	// +optional
	MaxConcurrency int32 `json:"maxConcurrency,omitempty"`

	// Variables are passed to the function as environment variables.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Variables []Variable `json:"variables,omitempty"`

	// Execute lists the Appwrite roles allowed to execute the function over
	// HTTP: any, guests, users, user:ID, team:ID, team:ID/ROLE, member:ID,
	// label:NAME (user and users may end in /verified or /unverified).
	// Empty means only API keys may execute it.
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:items:Pattern=`^(any|guests|users(/(verified|unverified))?|user:[A-Za-z0-9._-]{1,36}(/(verified|unverified))?|team:[A-Za-z0-9._-]{1,36}(/[A-Za-z0-9._-]{1,36})?|member:[A-Za-z0-9._-]{1,36}|label:[A-Za-z0-9]{1,36})$`
	// +optional
	Execute []string `json:"execute,omitempty"`

	// Events are the system events that trigger an execution, in Appwrite
	// form such as "functions.*.executions.*.create".
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MaxLength=256
	// +optional
	Events []string `json:"events,omitempty"`

	// Schedule is a cron expression (five fields) that triggers executions.
	// +kubebuilder:validation:MaxLength=256
	// +optional
	Schedule string `json:"schedule,omitempty"`

	// TimeZone is the IANA time zone the schedule is read in; UTC if empty.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	TimeZone string `json:"timeZone,omitempty"`

	// ConcurrencyPolicy says what a schedule tick does while an execution
	// started by an earlier tick is unfinished: Allow runs it anyway,
	// Forbid skips the tick, Replace deletes the unfinished execution and
	// runs the new one.
	// +kubebuilder:default=Allow
	// +optional
	ConcurrencyPolicy ConcurrencyPolicy `json:"concurrencyPolicy,omitempty"`

	// StartingDeadlineSeconds is how late a missed schedule tick may still
	// run, for example after the operator was down. Without it the most
	// recent missed tick always runs, once; older missed ticks never do.
	// +kubebuilder:validation:Minimum=0
	// +optional
	StartingDeadlineSeconds *int64 `json:"startingDeadlineSeconds,omitempty"`

	// Suspend stops the schedule from firing; executions requested over
	// HTTP or by events still run.
	// +optional
	Suspend *bool `json:"suspend,omitempty"`

	// Enabled functions accept executions; disabled ones fail new ones.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// Logging keeps stdout and stderr in the execution records.
	// +kubebuilder:default=true
	// +optional
	Logging *bool `json:"logging,omitempty"`

	// Resources of the function container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// ServiceAccountName runs the pod under this service account. Its token
	// is only mounted when AutomountServiceAccountToken is true.
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`

	// AutomountServiceAccountToken mounts the service account token into
	// the function pod. Off by default: functions do not talk to the
	// Kubernetes API unless asked to.
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`

	// SuccessfulExecutionsHistoryLimit caps how many completed executions
	// are kept; older ones are deleted. Age is the operator's primary rule
	// (--execution-retention, 14 days by default, as Appwrite); this cap
	// keeps a busy function's history from filling etcd within that time.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=10000
	// +optional
	SuccessfulExecutionsHistoryLimit *int32 `json:"successfulExecutionsHistoryLimit,omitempty"`

	// FailedExecutionsHistoryLimit caps how many failed executions are
	// kept, as SuccessfulExecutionsHistoryLimit does completed ones.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=10000
	// +optional
	FailedExecutionsHistoryLimit *int32 `json:"failedExecutionsHistoryLimit,omitempty"`
}

// ConcurrencyPolicy is what a schedule tick does while an earlier scheduled
// execution is unfinished.
// +kubebuilder:validation:Enum=Allow;Forbid;Replace
type ConcurrencyPolicy string

const (
	AllowConcurrent   ConcurrencyPolicy = "Allow"
	ForbidConcurrent  ConcurrencyPolicy = "Forbid"
	ReplaceConcurrent ConcurrencyPolicy = "Replace"
)

// CodeSource names where the function's files come from; at most one field is set.
// +kubebuilder:validation:XValidation:rule="(has(self.inline) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) == 1",message="exactly one of inline, secretRef or configMapRef must be set"
type CodeSource struct {
	// Inline maps file paths, relative to the code folder (for example
	// index.js or node_modules/left-pad/index.js), to their contents. The
	// operator stores them in a Secret the Function owns, so together they
	// must stay under 1 MiB; larger code belongs in the image.
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+(/[-._a-zA-Z0-9]+)*$') && !k.matches('(^|/)[.][.]?(/|$)'))",message="file paths are relative: folders and names of letters, digits, '-', '_' and '.', separated by '/', without '.' or '..'"
	// +optional
	Inline map[string]string `json:"inline,omitempty"`

	// SecretRef mounts the keys of an existing Secret as the code files.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// ConfigMapRef mounts the keys of an existing ConfigMap as the code files.
	// +optional
	ConfigMapRef *corev1.LocalObjectReference `json:"configMapRef,omitempty"`
}

// Variable is one environment variable of the function.
// +kubebuilder:validation:XValidation:rule="has(self.value) != has(self.valueFrom)",message="exactly one of value or valueFrom must be set"
type Variable struct {
	// Name of the environment variable. Names starting with
	// APPWRITE_FUNCTION_ or KFN_ are reserved for the execution's own.
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('APPWRITE_FUNCTION_') && !self.startsWith('KFN_')",message="names starting with APPWRITE_FUNCTION_ or KFN_ are reserved"
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Value is a plain value.
	// +optional
	Value *string `json:"value,omitempty"`

	// ValueFrom takes the value from a key of a Secret.
	// +optional
	ValueFrom *VariableSource `json:"valueFrom,omitempty"`
}

// VariableSource selects where a variable's value comes from.
type VariableSource struct {
	// SecretKeyRef selects a key of a Secret in the Function's namespace.
	SecretKeyRef corev1.SecretKeySelector `json:"secretKeyRef"`
}

// Function condition types and reasons.
const (
	// FunctionReady tells whether new executions of the function can run.
	FunctionReady = "Ready"

	ReasonReady           = "Ready"
	ReasonDisabled        = "Disabled"
	ReasonRuntimeUnknown  = "RuntimeUnknown"
	ReasonCodeNotFound    = "CodeNotFound"
	ReasonCodeSyncFailed  = "CodeSyncFailed"
	ReasonInvalidSchedule = "InvalidSchedule"
	ReasonNoCommand       = "NoCommand"
)

// FunctionStatus is the observed state of a Function.
type FunctionStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Image is the image executions run, resolved from the runtime catalog.
	// +optional
	Image string `json:"image,omitempty"`

	// SchedulePrevious is the most recent schedule tick the operator acted
	// on: it ran, or was skipped by the concurrency policy or the starting
	// deadline (the Function's events say which).
	// +optional
	SchedulePrevious *metav1.Time `json:"schedulePrevious,omitempty"`

	// ScheduleNext is the next schedule tick; empty when the function has no
	// schedule, or it is suspended, disabled or invalid.
	// +optional
	ScheduleNext *metav1.Time `json:"scheduleNext,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=fn;fns,categories=kfn
// +kubebuilder:printcolumn:name="Runtime",type=string,JSONPath=`.spec.runtime`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.status.image`,priority=1
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.scheduleNext`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Function is code that runs on demand, on a schedule or on events.
type Function struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FunctionSpec   `json:"spec,omitempty"`
	Status FunctionStatus `json:"status,omitempty"`
}

// IsSuspended reports whether the schedule is suspended.
func (f *Function) IsSuspended() bool { return f.Spec.Suspend != nil && *f.Spec.Suspend }

// IsEnabled reports whether the function accepts executions.
func (f *Function) IsEnabled() bool { return f.Spec.Enabled == nil || *f.Spec.Enabled }

// LoggingEnabled reports whether stdout and stderr are kept.
func (f *Function) LoggingEnabled() bool { return f.Spec.Logging == nil || *f.Spec.Logging }

// DefaultTimeoutSeconds is Appwrite's default function timeout.
const DefaultTimeoutSeconds = 15

// TimeoutSeconds is the longest an execution may run: the spec's timeout,
// or the default for an object the API server has not defaulted.
func (f *Function) TimeoutSeconds() int32 {
	if f.Spec.Timeout > 0 {
		return f.Spec.Timeout
	}
	return DefaultTimeoutSeconds
}

// DefaultMaxConcurrency is how many executions of a function run at once
// unless its spec says otherwise: enough for a busy function, few enough
// that a burst does not fill a node; the CRD's default marker spells it too.
const DefaultMaxConcurrency = 50

// ConcurrencyLimit is how many executions of the function may run at
// once: the spec's limit, or the default for an object the API server has
// not defaulted.
func (f *Function) ConcurrencyLimit() int {
	if f.Spec.MaxConcurrency > 0 {
		return int(f.Spec.MaxConcurrency)
	}
	return DefaultMaxConcurrency
}

// DefaultExecutionsHistoryLimit is the default of both history limits; the
// CRD's default markers spell the same number.
const DefaultExecutionsHistoryLimit = 10000

// HistoryLimits are how many completed and how many failed executions are
// kept: the spec's limits, or the default for an object the API server has
// not defaulted, so the cap is never off.
func (f *Function) HistoryLimits() (completed, failed int) {
	limit := func(l *int32) int {
		if l == nil {
			return DefaultExecutionsHistoryLimit
		}
		return int(*l)
	}
	return limit(f.Spec.SuccessfulExecutionsHistoryLimit), limit(f.Spec.FailedExecutionsHistoryLimit)
}

// +kubebuilder:object:root=true

// FunctionList contains a list of Function.
type FunctionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Function `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Function{}, &FunctionList{})
}
