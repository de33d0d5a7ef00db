package controllers

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fnv1 "github.com/kfn-dev/kfn/api/v1alpha1"
	"github.com/kfn-dev/kfn/internal/contract"
)

// The record must fit in etcd whatever the function printed. Sizes here are
// of the JSON the API server stores, which escapes <, >, & and control
// characters in 6 bytes each: 1 MB of HTML or NULs is up to 6 MB stored.

const (
	// maxObjectBytes is etcd's default request limit (--max-request-bytes),
	// which bounds a whole stored Execution.
	maxObjectBytes = 1536 << 10
	// maxAnnotationsBytes is Kubernetes' cap on an object's annotations:
	// the cached copy recordBudget measures lacks kubectl's last-applied
	// annotation (and managed fields), which the stored object has.
	maxAnnotationsBytes = 256 << 10
	// objectMargin is left for those, for the status besides outputs and
	// headers (conditions, messages, times) and for etcd's framing.
	objectMargin = maxAnnotationsBytes + 64<<10
)

type record struct {
	response, stdout, stderr string
	truncated                []string
}

// recordBudget is how much JSON the outputs and response headers may take
// in exec's status: maxRecordBytes, or less when the rest of the object (a
// large request body or event payload) leaves less of etcd's limit.
func recordBudget(exec *fnv1.Execution, maxRecordBytes int) int {
	rest := *exec
	rest.Status = fnv1.ExecutionStatus{}
	raw, _ := json.Marshal(&rest) // an Execution always encodes
	return max(0, min(maxRecordBytes, maxObjectBytes-objectMargin-len(raw)))
}

// fitRecord keeps response, stdout and stderr within budget bytes of JSON in
// total. Each field gets an equal share and a share a field does not use
// goes to the others. The response keeps its head (as Appwrite 1.0 does);
// logs keep their tail, behind a warning.
func fitRecord(response, stdout, stderr string, budget int) record {
	sizes := []int{jsonLen(response), jsonLen(stdout), jsonLen(stderr)}
	shares := fairShares(sizes, budget)
	rec := record{response: response, stdout: stdout, stderr: stderr}
	if shares[0] < sizes[0] {
		rec.response = keepHead(response, shares[0])
		rec.truncated = append(rec.truncated, contract.OutputResponse)
	}
	if shares[1] < sizes[1] {
		rec.stdout = keepTail(stdout, shares[1], contract.LogsTruncated)
		rec.truncated = append(rec.truncated, contract.OutputStdout)
	}
	if shares[2] < sizes[2] {
		rec.stderr = keepTail(stderr, shares[2], contract.ErrorsTruncated)
		rec.truncated = append(rec.truncated, contract.OutputStderr)
	}
	return rec
}

// fairShares splits budget among wants: small wants are met in full and the
// rest is shared equally among the larger ones.
func fairShares(wants []int, budget int) []int {
	order := make([]int, len(wants))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return wants[order[a]] < wants[order[b]] })
	shares := make([]int, len(wants))
	for n, i := range order {
		share := budget / (len(wants) - n)
		shares[i] = min(wants[i], share)
		budget -= shares[i]
	}
	return shares
}

// keepHead returns the longest beginning of s that takes at most n bytes of
// JSON, cut between characters.
func keepHead(s string, n int) string {
	end := 0
	for end < len(s) {
		r, size := utf8.DecodeRuneInString(s[end:])
		if n -= runeJSONLen(r, size); n < 0 {
			break
		}
		end += size
	}
	return s[:end]
}

// keepTail returns the longest end of s that takes, behind the warning
// marker(n), at most n bytes of JSON.
func keepTail(s string, n int, marker func(limit int) string) string {
	prefix := marker(n)
	keep := n - jsonLen(prefix)
	if keep <= 0 {
		return keepHead(prefix, n)
	}
	start := len(s)
	for start > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:start])
		if keep -= runeJSONLen(r, size); keep < 0 {
			break
		}
		start -= size
	}
	return prefix + s[start:]
}

// jsonLen is the length of s inside the quotes of a JSON string, as the API
// server's encoding/json writes it.
func jsonLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		n += runeJSONLen(r, size)
		i += size
	}
	return n
}

// runeJSONLen is the JSON length of the rune r, size bytes of UTF-8 (a
// RuneError of size 1 is an invalid byte, written as \ufffd). Go writes \b
// and \f in 2 bytes, older versions in 6: 6 is counted.
func runeJSONLen(r rune, size int) int {
	switch {
	case r == '"' || r == '\\' || r == '\n' || r == '\r' || r == '\t':
		return 2
	case r < ' ' || r == '<' || r == '>' || r == '&' || r == '\u2028' || r == '\u2029' || r == utf8.RuneError && size == 1:
		return 6
	}
	return size
}

// headersJSONLen is the JSON length of the response headers as an object.
func headersJSONLen(headers map[string]string) int {
	n := 2
	for name, value := range headers {
		n += jsonLen(name) + jsonLen(value) + 6 // quotes, colon, comma
	}
	return n
}

// writeRecord writes status. When the API server refuses a finished record
// for its size (its spec, annotations and managed fields count too), it
// writes the record again without outputs and headers: the Execution
// finishes, and its Job goes, instead of being retried forever.
func (r *ExecutionReconciler) writeRecord(ctx context.Context, exec *fnv1.Execution, status fnv1.ExecutionStatus) error {
	recorded := exec.Status
	err := r.writeStatus(ctx, exec, status)
	if !status.Status.IsFinished() || !refusedAsTooLarge(err) {
		return err
	}
	log.FromContext(ctx).Info("the record is too large to store; writing it without its outputs", "error", err.Error())
	exec.Status = recorded
	return r.writeStatus(ctx, exec, withoutOutputs(status))
}

// refusedAsTooLarge reports whether the API server refused a write for its
// size: its own request limit (413), or etcd's, which it passes on as an
// internal error carrying etcd's message.
func refusedAsTooLarge(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return apierrors.IsRequestEntityTooLargeError(err) ||
		strings.Contains(msg, "etcdserver: request is too large") ||
		strings.Contains(msg, "trying to send message larger than max")
}

// withoutOutputs is st with its outputs and response headers dropped and
// listed as truncated, and a message that says so.
func withoutOutputs(st fnv1.ExecutionStatus) fnv1.ExecutionStatus {
	truncated := st.Truncated
	st.Truncated = nil
	for _, out := range []struct{ name, text string }{
		{contract.OutputResponse, st.Response}, {contract.OutputStdout, st.Stdout}, {contract.OutputStderr, st.Stderr},
	} {
		if out.text != "" || slices.Contains(truncated, out.name) {
			st.Truncated = append(st.Truncated, out.name)
		}
	}
	st.Response, st.Stdout, st.Stderr, st.ResponseHeaders = "", "", "", nil
	st.Message += "; its outputs and headers were dropped: the record was too large to store"
	st.Conditions = append([]metav1.Condition(nil), st.Conditions...)
	setSucceeded(&st, st.ObservedGeneration)
	return st
}
