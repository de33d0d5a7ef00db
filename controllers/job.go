package controllers

import (
	"cmp"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Volumes of the function pod; where they are mounted is the pod contract.
const (
	runnerVolume = "kfn"
	imageVolume  = "kfn-image"
	codeVolume   = "code"
	bodyVolume   = "request-body"
	tmpVolume    = "tmp"
	// nonRootID is the user and group of every container, whatever its image says.
	nonRootID = 65532
)

// RunnerDelivery is how the runner binary gets into a function pod.
type RunnerDelivery string

const (
	// DeliverByInitContainer copies the runner into an emptyDir from an
	// init container. It works on every runtime, but the kubelet starts the
	// function container only after noticing the init container ended
	// (up to its 1 s relist period with the generic PLEG).
	DeliverByInitContainer RunnerDelivery = "init-container"
	// DeliverByImageVolume mounts the runner image as a read-only volume:
	// no extra container. It needs a runtime with image volume support
	// (containerd 2.1+, CRI-O 1.31+).
	DeliverByImageVolume RunnerDelivery = "image-volume"
)

// JobOptions are the operator-wide settings that shape every Job.
type JobOptions struct {
	// RunnerImage holds the kfn binary that runs the function's command.
	RunnerImage string
	// RunnerDelivery says how the runner reaches the pod; the zero value
	// means DeliverByInitContainer.
	RunnerDelivery RunnerDelivery
	// StartupGrace is added to the function timeout for the Job's deadline:
	// the runner enforces the timeout itself, and the Job deadline (which
	// counts from the Job's start, pulls and init containers included) is
	// the backstop when the pod never gets to run.
	StartupGrace time.Duration
	// Defaults bound the resources and scratch space of function pods.
	Defaults FunctionDefaults
}

// buildJob renders the Job that runs one Execution. It is a pure function of
// its inputs so it can be tested and compared without a cluster.
func buildJob(exec *fnv1.Execution, fn *fnv1.Function, rf resolvedFunction, opts JobOptions) *batchv1.Job {
	labels := map[string]string{
		labelExecution:      exec.Name,
		labelFunction:       fn.Name,
		kube.LabelManagedBy: kube.ManagedBy,
	}
	deadline := int64(fn.TimeoutSeconds()) + int64(opts.StartupGrace/time.Second)
	pod := podSpec(fn, opts.Defaults)
	runner, runnerMounts := deliverRunner(&pod, rf, opts)
	container := functionContainerSpec(exec, fn, rf, runner, runnerMounts)
	container.Resources = functionResources(fn.Spec.Resources, opts.Defaults.Resources)
	if len(exec.Spec.BodySecrets) > 0 {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: bodyVolume, VolumeSource: bodyVolumeSource(exec.Spec.BodySecrets)})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: bodyVolume, MountPath: contract.RequestBodyDir, ReadOnly: true})
		container.Env = append(container.Env, corev1.EnvVar{Name: contract.EnvRequestBodyDir, Value: contract.RequestBodyDir})
	}
	if code := codeVolumeSource(fn); code != nil {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: codeVolume, VolumeSource: *code})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: codeVolume, MountPath: contract.CodeDir, ReadOnly: true})
		container.WorkingDir = contract.CodeDir
	}
	pod.Containers = []corev1.Container{container}

	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      jobName(exec.Name),
			Namespace: exec.Namespace,
			Labels:    labels,
		},
		Spec: batchv1.JobSpec{
			// One attempt: a function run is not retried behind the caller's back.
			BackoffLimit:          ptr.To[int32](0),
			ActiveDeadlineSeconds: ptr.To(deadline),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       pod,
			},
		},
	}
}

// podSpec is the function pod without its containers: restricted, and with
// the volumes every pod has, bounded by the defaults.
func podSpec(fn *fnv1.Function, defaults FunctionDefaults) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy:                corev1.RestartPolicyNever,
		ServiceAccountName:           fn.Spec.ServiceAccountName,
		AutomountServiceAccountToken: ptr.To(ptr.Deref(fn.Spec.AutomountServiceAccountToken, false)),
		// Service links would add an env var per Service of the namespace.
		EnableServiceLinks: ptr.To(false),
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			RunAsUser:      ptr.To[int64](nonRootID),
			RunAsGroup:     ptr.To[int64](nonRootID),
			FSGroup:        ptr.To[int64](nonRootID),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{
			{Name: runnerVolume, VolumeSource: boundedEmptyDir(defaults.RunnerDirSizeLimit)},
			{Name: tmpVolume, VolumeSource: boundedEmptyDir(defaults.TmpSizeLimit)},
		},
	}
}

// deliverRunner adds to pod what brings the runner in, and returns the
// runner's path and the mounts the function container needs for it. The
// runner's directory also holds the IO files, so it is mounted either way.
func deliverRunner(pod *corev1.PodSpec, rf resolvedFunction, opts JobOptions) (runner string, mounts []corev1.VolumeMount) {
	mounts = []corev1.VolumeMount{{Name: runnerVolume, MountPath: contract.RunnerDir}}
	if rf.Runner != "" {
		return rf.Runner, mounts
	}
	if opts.RunnerDelivery != DeliverByImageVolume {
		pod.InitContainers = []corev1.Container{installRunner(opts.RunnerImage)}
		return contract.Runner, mounts
	}
	pod.Volumes = append(pod.Volumes, corev1.Volume{Name: imageVolume, VolumeSource: corev1.VolumeSource{
		Image: &corev1.ImageVolumeSource{Reference: opts.RunnerImage, PullPolicy: corev1.PullIfNotPresent},
	}})
	return contract.ImageRunner, append(mounts, corev1.VolumeMount{Name: imageVolume, MountPath: contract.ImageRunnerDir, ReadOnly: true})
}

// functionContainerSpec runs the function's command under the runner.
func functionContainerSpec(exec *fnv1.Execution, fn *fnv1.Function, rf resolvedFunction, runner string, runnerMounts []corev1.VolumeMount) corev1.Container {
	return corev1.Container{
		Name:                     functionContainer,
		Image:                    rf.Image,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Command:                  append([]string{runner, "run", "--"}, rf.Command...),
		Env:                      executionEnv(exec, fn, rf.ProjectID),
		SecurityContext:          restrictedContainer(),
		VolumeMounts:             append(runnerMounts, corev1.VolumeMount{Name: tmpVolume, MountPath: contract.HomeDir}),
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
}

// installRunner is the init container that copies the kfn binary into the pod.
func installRunner(image string) corev1.Container {
	return corev1.Container{
		Name:            installContainer,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{contract.RunnerImageBinary, "copy-self", contract.InstalledRunner},
		VolumeMounts:    []corev1.VolumeMount{{Name: runnerVolume, MountPath: contract.InstallDir}},
		SecurityContext: restrictedContainer(),
		// No CPU limit: throttling the copy would delay every execution.
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("10m"),
				corev1.ResourceMemory: resource.MustParse("16Mi"),
			},
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	}
}

func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func codeVolumeSource(fn *fnv1.Function) *corev1.VolumeSource {
	code := fn.Spec.Code
	switch {
	case code == nil:
		return nil
	case code.Inline != nil:
		return &corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: codeSecretName(fn.Name), Items: inlineCodeItems(code.Inline)}}
	case code.SecretRef != nil:
		return &corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: code.SecretRef.Name}}
	case code.ConfigMapRef != nil:
		return &corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: *code.ConfigMapRef}}
	}
	return nil
}

// bodyVolumeSource projects the parts of a large body as files named in
// order (000, 001, …), which the runner joins into the request file.
func bodyVolumeSource(secrets []string) corev1.VolumeSource {
	projected := &corev1.ProjectedVolumeSource{}
	for i, name := range secrets {
		projected.Sources = append(projected.Sources, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: name},
			Items:                []corev1.KeyToPath{{Key: contract.BodySecretKey, Path: fmt.Sprintf("%03d", i)}},
		}})
	}
	return corev1.VolumeSource{Projected: projected}
}

// executionEnv is the Appwrite 1.0 function environment plus kfn's request
// details, with the Appwrite IDs of the Function and its project. The
// caller's JWT is only referenced, never copied.
func executionEnv(exec *fnv1.Execution, fn *fnv1.Function, projectID string) []corev1.EnvVar {
	headers := "{}"
	if len(exec.Spec.Headers) > 0 {
		raw, _ := json.Marshal(exec.Spec.Headers) // a map of strings always marshals
		headers = string(raw)
	}
	// The CRD keeps the function's variables out of the reserved
	// APPWRITE_FUNCTION_ and KFN_ names, so none of these collide.
	env := make([]corev1.EnvVar, 0, len(fn.Spec.Variables)+17)
	for _, v := range fn.Spec.Variables {
		ev := corev1.EnvVar{Name: v.Name}
		if v.Value != nil {
			ev.Value = *v.Value
		} else if v.ValueFrom != nil {
			ev.ValueFrom = &corev1.EnvVarSource{SecretKeyRef: v.ValueFrom.SecretKeyRef.DeepCopy()}
		}
		env = append(env, ev)
	}
	env = append(env,
		corev1.EnvVar{Name: contract.EnvFunctionID, Value: kube.AppwriteID(fn, kube.LabelFunctionID)},
		corev1.EnvVar{Name: contract.EnvFunctionName, Value: fn.Name},
		corev1.EnvVar{Name: contract.EnvExecutionID, Value: exec.Name},
		corev1.EnvVar{Name: contract.EnvTrigger, Value: string(exec.Spec.Trigger)},
		corev1.EnvVar{Name: contract.EnvRuntimeName, Value: fn.Spec.Runtime},
		corev1.EnvVar{Name: contract.EnvData, Value: exec.RequestBody()},
		corev1.EnvVar{Name: contract.EnvEvent, Value: exec.Spec.Event},
		corev1.EnvVar{Name: contract.EnvEventData, Value: exec.Spec.EventData},
		corev1.EnvVar{Name: contract.EnvUserID, Value: exec.Spec.UserID},
		corev1.EnvVar{Name: contract.EnvProjectID, Value: cmp.Or(projectID, exec.Namespace)},
		corev1.EnvVar{Name: contract.EnvRequestMethod, Value: exec.Method()},
		corev1.EnvVar{Name: contract.EnvRequestPath, Value: exec.Path()},
		corev1.EnvVar{Name: contract.EnvRequestHeaders, Value: headers},
		corev1.EnvVar{Name: contract.EnvTimeout, Value: strconv.Itoa(int(fn.TimeoutSeconds()))},
		corev1.EnvVar{Name: contract.EnvIODir, Value: contract.IODir},
		corev1.EnvVar{Name: contract.EnvFunctionContract, Value: fn.Spec.Contract},
		corev1.EnvVar{Name: contract.EnvFunctionVariables, Value: variableNames(fn)},
		corev1.EnvVar{Name: "HOME", Value: contract.HomeDir},
	)
	if exec.Spec.JWTSecretName != "" {
		env = append(env, corev1.EnvVar{Name: contract.EnvJWT, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: exec.Spec.JWTSecretName},
				Key:                  contract.JWTSecretKey,
			},
		}})
	}
	return env
}

// variableNames lists the function's own variables for the v2 contract's
// req.variables, which must not include the platform's.
func variableNames(fn *fnv1.Function) string {
	names := make([]string, len(fn.Spec.Variables))
	for i, v := range fn.Spec.Variables {
		names[i] = v.Name
	}
	return strings.Join(names, ",")
}

// inlineCodeItems places each inline file at its path; a path with folders
// is stored under a key a Secret accepts (see codeKey).
func inlineCodeItems(files map[string]string) []corev1.KeyToPath {
	items := make([]corev1.KeyToPath, 0, len(files))
	for path := range files {
		items = append(items, corev1.KeyToPath{Key: codeKey(path), Path: path})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Path < items[j].Path })
	return items
}
