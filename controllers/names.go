package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/kfn-dev/kfn/internal/kube"
)

// Labels and names shared by the objects kfn creates.
const (
	labelExecution = kube.LabelExecution
	// labelFunction marks a Function's code Secret: the operator's cache
	// keeps the data of Secrets with it (kube.CacheOptions).
	labelFunction = kube.LabelFunction
	// functionContainer runs the user's code under the runner.
	functionContainer = "function"
	// installContainer copies the runner into the pod.
	installContainer = "install-runner"
)

// maxJobNameLength keeps the job-name label the Job controller sets on its
// pods within the 63 characters a label value may have.
const maxJobNameLength = 63

// jobName is the deterministic name of an Execution's Job, so that a retried
// reconcile finds the Job it created instead of making a second one.
func jobName(executionName string) string {
	return shortName(executionName, "", maxJobNameLength)
}

// codeSecretName is the Secret holding a Function's inline code.
func codeSecretName(functionName string) string {
	return shortName(functionName, "-code", 253)
}

// codeKey is the key of an inline code file in the Function's code Secret:
// its name when it has no folder, else a hash of its path, since Secret
// keys cannot hold '/'. The code volume maps each key back to its path.
func codeKey(path string) string {
	if !strings.Contains(path, "/") {
		return path
	}
	sum := sha256.Sum256([]byte(path))
	return "path-" + hex.EncodeToString(sum[:])[:32]
}

// shortName returns name+suffix, replacing the end of name with a hash of
// it when the result would exceed max, so distinct names stay distinct.
func shortName(name, suffix string, max int) string {
	if len(name)+len(suffix) <= max {
		return name + suffix
	}
	sum := sha256.Sum256([]byte(name))
	hash := hex.EncodeToString(sum[:])[:10]
	prefix := strings.TrimRight(name[:max-len(suffix)-len(hash)-1], "-.")
	return prefix + "-" + hash + suffix
}
