package controllers

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/kube"
)

// Paths inside the function pod. The runner and the request/response files
// share one emptyDir; the code is mounted read-only beneath it.
const (
	runnerVolume   = "kfn"
	runnerMount    = "/kfn"
	runnerPath     = "/kfn/bin/kfn"
	ioDir          = "/kfn/io"
	installMount   = "/kfn-install"
	installedPath  = "/kfn-install/bin/kfn"
	imageVolume    = "kfn-image"
	imageMount     = "/kfn/image"
	imageRunner    = "/kfn/image/kfn"
	codeVolume     = "code"
	bodyVolume     = "request-body"
	bodyMount      = "/kfn/request-body"
	codeMount      = "/kfn/code"
	tmpVolume      = "tmp"
	tmpMount       = "/tmp"
	nonRootID      = 65532
	runnerImageBin = "/kfn"
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
}

// buildJob renders the Job that runs one Execution. It is a pure function of
// its inputs so it can be tested and compared without a cluster.
func buildJob(exec *fnv1.Execution, fn *fnv1.Function, rf resolvedFunction, opts JobOptions) *batchv1.Job {
	labels := map[string]string{
		labelExecution:      exec.Name,
		labelFunction:       fn.Name,
		kube.LabelManagedBy: kube.ManagedBy,
	}
	timeout := int64(fn.Spec.Timeout)
	if timeout == 0 {
		timeout = 15
	}
	deadline := timeout + int64(opts.StartupGrace/time.Second)

	pod := corev1.PodSpec{
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
			{Name: runnerVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		},
	}

	runner := runnerPath
	runnerMounts := []corev1.VolumeMount{{Name: runnerVolume, MountPath: runnerMount}}
	if opts.RunnerDelivery == DeliverByImageVolume {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: imageVolume, VolumeSource: corev1.VolumeSource{
			Image: &corev1.ImageVolumeSource{Reference: opts.RunnerImage, PullPolicy: corev1.PullIfNotPresent},
		}})
		runner = imageRunner
		runnerMounts = append(runnerMounts, corev1.VolumeMount{Name: imageVolume, MountPath: imageMount, ReadOnly: true})
	} else {
		pod.InitContainers = []corev1.Container{installRunner(opts.RunnerImage)}
	}

	container := corev1.Container{
		Name:                     functionContainer,
		Image:                    rf.Image,
		ImagePullPolicy:          corev1.PullIfNotPresent,
		Command:                  append([]string{runner, "run", "--"}, rf.Command...),
		Env:                      executionEnv(exec, fn, timeout),
		Resources:                fn.Spec.Resources,
		SecurityContext:          restrictedContainer(),
		VolumeMounts:             append(runnerMounts, corev1.VolumeMount{Name: tmpVolume, MountPath: tmpMount}),
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}
	if len(exec.Spec.BodySecrets) > 0 {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: bodyVolume, VolumeSource: bodyVolumeSource(exec.Spec.BodySecrets)})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: bodyVolume, MountPath: bodyMount, ReadOnly: true})
		container.Env = append(container.Env, corev1.EnvVar{Name: "KFN_REQUEST_BODY_DIR", Value: bodyMount})
	}
	if code := codeVolumeSource(fn); code != nil {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: codeVolume, VolumeSource: *code})
		container.VolumeMounts = append(container.VolumeMounts, corev1.VolumeMount{Name: codeVolume, MountPath: codeMount, ReadOnly: true})
		container.WorkingDir = codeMount
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

// installRunner is the init container that copies the kfn binary into the pod.
func installRunner(image string) corev1.Container {
	return corev1.Container{
		Name:            installContainer,
		Image:           image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{runnerImageBin, "copy-self", installedPath},
		VolumeMounts:    []corev1.VolumeMount{{Name: runnerVolume, MountPath: installMount}},
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
		return &corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: codeSecretName(fn.Name)}}
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
			Items:                []corev1.KeyToPath{{Key: bodySecretKey, Path: fmt.Sprintf("%03d", i)}},
		}})
	}
	return corev1.VolumeSource{Projected: projected}
}

// executionEnv is the Appwrite 1.0 function environment plus kfn's request
// details. The caller's JWT is only referenced, never copied.
func executionEnv(exec *fnv1.Execution, fn *fnv1.Function, timeout int64) []corev1.EnvVar {
	headers := "{}"
	if len(exec.Spec.Headers) > 0 {
		raw, _ := json.Marshal(exec.Spec.Headers) // a map of strings always marshals
		headers = string(raw)
	}
	method := exec.Spec.Method
	if method == "" {
		method = "POST"
	}
	path := exec.Spec.Path
	if path == "" {
		path = "/"
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
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_ID", Value: fn.Name},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_NAME", Value: fn.Name},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_EXECUTION_ID", Value: exec.Name},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_TRIGGER", Value: string(exec.Spec.Trigger)},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_RUNTIME_NAME", Value: fn.Spec.Runtime},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_DATA", Value: exec.RequestBody()},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_EVENT", Value: exec.Spec.Event},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_EVENT_DATA", Value: exec.Spec.EventData},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_USER_ID", Value: exec.Spec.UserID},
		corev1.EnvVar{Name: "APPWRITE_FUNCTION_PROJECT_ID", Value: exec.Namespace},
		corev1.EnvVar{Name: "KFN_REQUEST_METHOD", Value: method},
		corev1.EnvVar{Name: "KFN_REQUEST_PATH", Value: path},
		corev1.EnvVar{Name: "KFN_REQUEST_HEADERS", Value: headers},
		corev1.EnvVar{Name: "KFN_TIMEOUT", Value: strconv.FormatInt(timeout, 10)},
		corev1.EnvVar{Name: "KFN_IO_DIR", Value: ioDir},
		corev1.EnvVar{Name: "HOME", Value: tmpMount},
	)
	if exec.Spec.JWTSecretName != "" {
		env = append(env, corev1.EnvVar{Name: "APPWRITE_FUNCTION_JWT", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: exec.Spec.JWTSecretName},
				Key:                  jwtSecretKey,
			},
		}})
	}
	return env
}
